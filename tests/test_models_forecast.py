"""The numpy forecaster: bounds, consistency, information cut-off, pooling, calibration."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchard_models.forecast import Forecaster, Observations
from orchard_models.grading import week_shares
from orchard_models.phenology import BloomParams, calibrate_bloom, predict_bloom
from orchard_models.risk import kill_fraction
from orchard_models.synthetic import make_world
from orchard_models.weather import fill_gaps, season_start
from orchard_models.yield_model import FEATURES, PRIOR_MEAN, fit_yield, predict_yield


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return make_world(n=160, seasons=(2021, 2022, 2023, 2024, 2025), seed=3, frost_season=2025, drought_season=2023)


@pytest.fixture(scope="module")
def forecaster(world):  # type: ignore[no-untyped-def]
    return Forecaster(world.orchards, world.seasons[:-1])


def _as_of(world, days_before: int) -> int:  # type: ignore[no-untyped-def]
    t = world.seasons[-1]
    return int(np.nanmedian(t.bloom_day) + 120 - days_before)


def test_quantiles_ordered_and_cells_add_up(world, forecaster) -> None:  # type: ignore[no-untyped-def]
    t = world.seasons[-1]
    fc = forecaster.forecast(t.weather, _as_of(world, 60), t.observations)
    assert np.all(fc.total_p10_kg >= 0)
    assert np.all(fc.total_p10_kg <= fc.total_p50_kg) and np.all(fc.total_p50_kg <= fc.total_p90_kg)
    p10, p50, p90 = fc.cells()
    assert np.all((p10 <= p50) & (p50 <= p90) & (p10 >= 0))
    np.testing.assert_allclose(p50.sum(axis=(1, 2)), fc.total_p50_kg, rtol=1e-9)
    np.testing.assert_allclose(fc.grade_share.sum(axis=1), 1.0)
    assert all(w.weekday() == 0 for w in fc.week_starts)
    s0 = season_start(t.season)
    hs = [d for d in fc.day_to_date(fc.harvest_start_day) if d]
    assert all(date(t.season, 5, 1) <= d <= date(t.season, 9, 30) for d in hs)
    assert np.all(fc.harvest_start_day <= fc.harvest_end_day)
    # young orchards (age <= 2) had no crop in the history, so they get none
    young = (t.season - world.orchards.planting_year) <= 2
    assert young.any() and np.all(fc.total_p90_kg[young] == 0)
    assert fc.week_starts[0] >= s0


def test_data_after_the_as_of_day_are_ignored(world, forecaster) -> None:  # type: ignore[no-untyped-def]
    t = world.seasons[-1]
    as_of = _as_of(world, 90)
    obs = t.observations
    assert obs is not None
    later = np.full_like(obs.flower_density_day, as_of + 5)
    a = forecaster.forecast(t.weather, as_of, Observations(obs.flower_density, later, obs.fruit_set,
                                                            obs.fruit_set_day))
    w = t.weather
    changed = replace(w, tmin_c=w.tmin_c.copy(), tmax_c=w.tmax_c.copy(), soil_vwc=w.soil_vwc.copy())
    changed.tmin_c[:, as_of + 1:] -= 15.0
    changed.soil_vwc[:, as_of + 1:] = 0.05
    late_obs = Observations(obs.flower_density * 0.1, later, obs.fruit_set, obs.fruit_set_day)
    b = forecaster.forecast(changed, as_of, late_obs)
    np.testing.assert_allclose(a.total_p50_kg, b.total_p50_kg)
    np.testing.assert_array_equal(a.bloom_day, b.bloom_day)


def test_chunked_processing_gives_the_same_forecast(world, forecaster) -> None:  # type: ignore[no-untyped-def]
    t = world.seasons[-1]
    as_of = _as_of(world, 30)
    a = forecaster.forecast(t.weather, as_of, t.observations, chunk=10_000)
    b = forecaster.forecast(t.weather, as_of, t.observations, chunk=37)
    np.testing.assert_allclose(a.total_p10_kg, b.total_p10_kg)
    np.testing.assert_allclose(a.total_p90_kg, b.total_p90_kg)
    np.testing.assert_allclose(a.week_share, b.week_share)


def test_forecast_beats_naive_baseline_and_frost_lowers_it(world, forecaster) -> None:  # type: ignore[no-untyped-def]
    """In the frost season the model (frost kill from sensor data) beats last season x area."""
    t = world.seasons[-1]
    as_of = _as_of(world, 60)
    fc = forecaster.forecast(t.weather, as_of, t.observations)
    act = t.total_kg
    prev = world.seasons[-2].total_kg
    assert act is not None and prev is not None
    ok = act > 0
    mape = np.mean(np.abs(fc.total_p50_kg[ok] - act[ok]) / act[ok])
    naive = np.mean(np.abs(prev[ok] - act[ok]) / act[ok])
    assert mape < naive
    assert np.mean(fc.risk.frost_kill[ok]) > 0.05
    # an as-of day before the frost does not know it
    before = forecaster.forecast(t.weather, int(np.nanmin(t.bloom_day)) - 10, t.observations)
    assert np.mean(before.risk.frost_kill) < 0.01


def test_gaps_are_filled_from_neighbours_keeping_each_orchards_offset() -> None:
    rng = np.random.default_rng(0)
    base = 10 + rng.normal(0, 2, 50)
    v = base[None, :] + np.array([0.0, -2.0, 1.0, 3.0])[:, None]
    gappy = v.copy()
    gappy[1, 10:20] = np.nan
    gappy[:, 30] = np.nan
    out = fill_gaps(gappy)
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out[1, 10:20], v[1, 10:20], atol=0.02)
    assert np.all(np.abs(out[:, 30] - v[:, 30]) < 4.0)


def test_bloom_calibration_recovers_known_requirements() -> None:
    world = make_world(n=60, seasons=(2022, 2023, 2024), seed=5, frost_season=None, drought_season=None)
    from orchard_models.thermal import daily_thermal
    from orchard_models.weather import chill_start_day, day_of_year

    truth = BloomParams(45.0, 6000.0)
    cps, gds, blooms = [], [], []
    for r in world.seasons:
        th = daily_thermal(r.weather.tmin_c, r.weather.tmax_c, world.orchards.latitude_deg,
                           day_of_year(r.season, r.weather.n_days), chill_days=(chill_start_day(r.season), 245))
        b, _ = predict_bloom(th.chill_portions, th.gdh, truth)
        cps.append(th.chill_portions)
        gds.append(th.gdh)
        blooms.append(b.astype(float))
    fit = calibrate_bloom(cps, gds, blooms)
    assert fit.rmse_days <= 2.0
    assert abs(fit.chill_req_cp - 45.0) <= 10.0


def test_empirical_bayes_shrinks_orchards_with_little_history() -> None:
    J = FEATURES.index("d_heat_kdh")
    rng = np.random.default_rng(1)
    n, seasons = 300, 5
    area = rng.uniform(5, 100, n)
    u_true = rng.normal(0, 0.3, n)
    xs, kgs, ages = [], [], []
    for _s in range(seasons):
        x = np.zeros((n, len(FEATURES)))
        x[:, 0] = 1.0
        x[:, FEATURES.index("flower_missing")] = 1.0
        x[:, FEATURES.index("fruit_set_missing")] = 1.0
        x[:, J] = rng.uniform(0, 1.0, n)
        y = np.log(1000.0) - 0.8 * x[:, J] + u_true + rng.normal(0, 0.15, n)
        kg = area * np.exp(y)
        xs.append(x)
        kgs.append(kg)
        ages.append(np.full(n, 8))
    # half of the orchards have only the last season recorded
    few = np.arange(n) < n // 2
    for k in range(seasons - 1):
        kgs[k] = np.where(few, np.nan, kgs[k])
    fit = fit_yield(xs, kgs, ages, area)
    assert fit.beta[0] == pytest.approx(np.log(1000.0), abs=0.1)
    assert fit.beta[J] == pytest.approx(-0.8, abs=0.25)
    # slope of the estimated on the true orchard effect = the shrinkage factor n τ² / (n τ² + σ²):
    # about 0.8 with one season (τ = 0.3, σ = 0.15), about 0.95 with five
    def slope(m: np.ndarray) -> float:
        return float(np.cov(fit.u[m], u_true[m])[0, 1] / np.var(u_true[m], ddof=1))

    assert 0.6 < slope(few) < 0.92 < slope(~few) < 1.1
    assert np.corrcoef(fit.u[~few], u_true[~few])[0, 1] > 0.9
    # a new season from the same process: the P10-P90 interval covers about 80 %
    x = xs[0].copy()
    x[:, J] = rng.uniform(0, 1.0, n)
    act = area * np.exp(np.log(1000.0) - 0.8 * x[:, J] + u_true + rng.normal(0, 0.15, n))
    p10, _p50, p90 = predict_yield(fit, x, np.full(n, 8), area, orch_idx=np.arange(n))
    cov = np.mean((act >= p10) & (act <= p90))
    assert 0.65 <= cov <= 0.97


def test_sign_constraints_hold_against_confounded_data() -> None:
    """A frost index that happens to go with higher yields must not make frost raise the forecast."""
    rng = np.random.default_rng(2)
    n = 400
    x = np.zeros((n, len(FEATURES)))
    x[:, 0] = 1
    j = FEATURES.index("d_log_frost_survival")
    x[:, j] = np.log(1 - rng.uniform(0, 0.3, n))
    kg = np.exp(7.0 - 0.5 * x[:, j] + rng.normal(0, 0.1, n))  # "more frost, more fruit" (confounded)
    fit = fit_yield([x], [kg], [np.full(n, 8)], np.ones(n))
    assert fit.beta[j] >= 0


def test_no_history_falls_back_to_priors() -> None:
    n = 10
    fit = fit_yield([], [], [], np.ones(n))
    x = np.zeros((n, len(FEATURES)))
    x[:, 0] = 1
    p10, p50, p90 = predict_yield(fit, x, np.full(n, 6), np.full(n, 2.0))
    assert p50[0] == pytest.approx(2.0 * np.exp(PRIOR_MEAN[0]))
    assert np.all(p10 < p50) and np.all(p50 < p90)


@settings(max_examples=50, deadline=None)
@given(st.floats(-10, 5), st.floats(-8, -1), st.floats(1, 8))
def test_frost_kill_fraction_bounded_and_monotone(tmin: float, t10: float, span: float) -> None:
    t90 = t10 - span
    k1 = kill_fraction(np.array([tmin]), t10, t90)[0]
    k2 = kill_fraction(np.array([tmin - 0.5]), t10, t90)[0]
    assert 0 <= k1 <= 1 and k2 >= k1
    assert kill_fraction(np.array([t10]), t10, t90)[0] == pytest.approx(0.1)
    assert kill_fraction(np.array([t90]), t10, t90)[0] == pytest.approx(0.9)


@settings(max_examples=50, deadline=None)
@given(st.floats(150, 320), st.floats(2, 20))
def test_week_shares_sum_to_one(centroid: float, sd: float) -> None:
    weeks = np.arange(100, 360, 7, dtype=float)
    w = week_shares(np.array([centroid]), sd, weeks)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w >= 0)


def test_models_never_import_the_simulator() -> None:
    """The backtest is honest only if the models cannot see the simulator's yield process."""
    import ast
    from pathlib import Path

    import orchard_models

    for path in Path(orchard_models.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "sim_sensors" for n in names), f"{path.name} imports sim_sensors"


def test_forecast_before_the_season_starts_uses_climatology(world, forecaster) -> None:  # type: ignore[no-untyped-def]
    t = world.seasons[-1]
    a = forecaster.forecast(t.weather, -40, t.observations)
    b = forecaster.forecast(t.weather, -1, t.observations)
    np.testing.assert_allclose(a.total_p50_kg, b.total_p50_kg)
    assert np.all(a.bloom_day >= 0) and np.all(a.risk.frost_kill == 0)
