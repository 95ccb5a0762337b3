"""Smoke test of ``python -m bench forecast`` at a tiny size, so the benchmark cannot rot."""

from __future__ import annotations

import json

import pytest


def test_bench_forecast_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sim_sensors.history", reason="the simulator's history generator is not merged yet")
    from bench.forecast import main

    assert main(["--orchards", "60", "--seasons", "2021-2025", "--targets", "2024-2025", "--big", "400",
                 "--repeats", "1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["benchmark"] == "forecast" and isinstance(out["meets_goals"], bool)
    for hz in ("90d", "60d", "30d"):
        h = out["horizons"][hz]
        assert 0 <= h["p10_p90_coverage"] <= 1
        assert h["model_wmape"] >= 0 and h["last_season_wmape"] >= 0 and h["mean_per_mu_wmape"] >= 0
        # per-season coverage is reported, so a pooled figure cannot hide a season
        assert set(h["p10_p90_coverage_by_season"]) == {"2024", "2025"}
        assert h["p10_p90_coverage_min_season"] <= h["p10_p90_coverage"] <= h["p10_p90_coverage_max_season"]
        assert 0 <= h["county_p10_p90_covered_seasons"] <= h["county_p10_p90_seasons"] == 2
        for row in out["per_season"][hz]:
            lo, mid, hi = row["county_p10_p50_p90_t"]
            assert 0 <= lo <= mid <= hi
            # per-week calibration of the cells: share of each week's harvested kg inside its P10-P90
            assert all(0 <= share <= 1 and t > 0 for share, t in row["cell_kg_in_p10_p90_by_week"].values())
        assert 0 <= h["cell_kg_in_p10_p90"] <= 1 and h["week_wmape"] >= 0 and h["grade_wmape"] >= 0
        counted = h["fruit_counts"]
        if counted is not None:   # simulated sample-tree counts narrow the counted orchards' intervals
            assert counted["with"]["rel_width"] < counted["without"]["rel_width"]
    assert out["speed"]["big_orchards"] == 400 and out["compute_100k_s"] > 0
    assert set(out["goals"]) >= {"p10_p90_coverage_range", "compute_1546_s_max", "compute_100k_s_max",
                                 "shock_seasons_30d_beat_last_season_and_held", "week_grade_wmape_max"}
    assert set(out["goal_checks"]) == {"beats_baselines", "coverage_in_range", "shock_seasons_30d", "county_held_30d",
                                       "week_grade"}
