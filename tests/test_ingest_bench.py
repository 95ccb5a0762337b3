"""Smoke test of ``python -m bench ingest`` at a tiny size (so the benchmark cannot rot)."""

from __future__ import annotations

import pytest

from bench import ingest as bench_ingest

pytestmark = pytest.mark.timeout(300)


def test_bench_ingest_tiny_run_counts_exactly(mqtt_url: str, db_server_url: str, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setenv("YUNCANG_DATABASE_URL", db_server_url)
    monkeypatch.setenv("YUNCANG_MQTT_URL", mqtt_url)
    a = bench_ingest.parser().parse_args(["--orchards", "12", "--single", "200", "--chirpstack", "120", "--runs", "1"])
    out = bench_ingest.run(a)
    run = out["per_run"][0]
    assert out["count_exact"] is True
    assert run["stored"] == run["expected_stored"] > 12 * 200  # a day of 12 gateways, minus faults
    assert run["single_stored"] == 200
    # ChirpStack uplinks through a vendor profile: 4 readings each, exactly
    assert run["chirpstack_stored"] == 4 * 120 and run["chirpstack_profile_messages_per_s"] > 0
    assert run["readings_per_s"] > 0 and run["raw_copy_readings_per_s"] > 0 and 0 < run["peak_rss_mb"] < 1000
    assert set(out["goals"]) >= {"readings_per_s_min", "ratio_to_db_ceiling_min", "peak_rss_mb_max",
                                 "single_reading_messages_per_s_min", "chirpstack_profile_messages_per_s_min"}
    assert out["goals"]["readings_per_s_min"] == 400_000 and out["goals"]["single_reading_messages_per_s_min"] == 8_000
    assert out["storage_path"] in out["by_path"] and run["storage_path"] == out["storage_path"]
    assert isinstance(out["meets_goals"], bool)
