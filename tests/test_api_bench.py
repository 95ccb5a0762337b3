"""Smoke test: the API benchmark runs end to end at a tiny size (so it cannot rot)."""

from __future__ import annotations

import os

import pytest

from bench.api import run


@pytest.mark.slow
def test_bench_api_tiny(db_server_url: str) -> None:
    out = run(
        orchards=2,
        days=1,
        clients=4,
        seconds=0.5,
        runs=1,
        only=["conditions", "series_7d"],
        database_url=os.environ.get("YUNCANG_DATABASE_URL") or db_server_url,
    )
    for name in ("conditions", "series_7d"):
        s = out["scenarios"][name]
        assert s["requests"] > 0 and s["errors"] == 0 and s["p99_ms"] >= s["p50_ms"] > 0
    assert isinstance(out["meets_goals"], bool) and out["readings"] == 2 * 96 * 10
