"""``python -m bench compression`` at a tiny size on real TimescaleDB: every layout compresses and reads back
every value, the figures and goals are reported (skipped on the plain path: nothing to compress there)."""

from __future__ import annotations

import psycopg
import pytest

from bench import compression


def test_compression_bench_measures_layouts_and_keeps_every_value(db_server_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(db_server_url) as c:
        if c.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is None:
            pytest.skip("TimescaleDB path only: the plain path has no compression to measure")
    monkeypatch.setenv("YUNCANG_DATABASE_URL", db_server_url)
    out = compression.run(compression.parser().parse_args(
        ["--orchards", "3", "--days", "2", "--layouts", "dev_timedesc_1d", compression.PRODUCT_LAYOUT]))
    assert set(out["layouts"]) == {"dev_timedesc_1d", compression.PRODUCT_LAYOUT}
    assert out["values"] > 3 * 2 * 288 * 8          # two days of three gateways, minus the simulated faults
    for lay in out["layouts"].values():
        assert lay["after_bytes"] < lay["before_bytes"] and lay["ratio"] > 1
        assert set(lay["per_metric_bytes_per_value"]) == set(compression.COLUMNS)
    # the product layout rolls the 1-day chunks up into weekly compressed chunks
    lays = out["layouts"]
    assert lays[compression.PRODUCT_LAYOUT]["compressed_chunks"] < lays["dev_timedesc_1d"]["compressed_chunks"]
    assert out["goals"] == compression.GOALS and isinstance(out["meets_goals"], bool)
