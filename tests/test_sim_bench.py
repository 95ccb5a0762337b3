"""Smoke test of ``python -m bench sim`` at a tiny size, so the benchmark cannot rot."""

from __future__ import annotations

import json

import pytest

from bench import sim


def test_bench_sim_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(["--gateways", "6", "--repeat", "1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["gateways"] == 6
    for key in ("native_batched", "chirpstack_batched", "thingsboard_batched", "native_single", "chirpstack_single"):
        assert out[f"{key}_readings_per_s"] > 0
        assert out[f"{key}_readings_sent"] >= 6 * 288 * 10 * 0.98
    assert out["native_single_messages"] > 6 * 288 * 0.98
    assert isinstance(out["meets_goals"], bool) and "goals" in out and out["peak_rss_mb"] > 0
