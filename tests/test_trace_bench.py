"""The recall benchmark runs end to end on a small season and reports what it found."""

from __future__ import annotations

from bench import trace


def test_trace_benchmark_small_season_finds_shipments_both_ways(db_server_url, mqtt_url, monkeypatch):
    monkeypatch.setenv("YUNCANG_DATABASE_URL", db_server_url)
    monkeypatch.setenv("YUNCANG_MQTT_URL", mqtt_url)
    out = trace.run(trace.parser().parse_args(["--days", "2", "--kg-per-mu", "40", "--queries", "5"]))
    assert out["shipments"] > 0 and out["harvest_kg"] > 0
    assert out["recall_shipments_found_median"] >= 1
    assert set(out["goals"]) == {"recall_p95_ms", "trace_back_p95_ms"} and isinstance(out["meets_goals"], bool)
