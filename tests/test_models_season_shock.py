"""Season-level (common) shocks in the yield model: county terms, shock-dependent dispersion,
Student-t season quantile and the county total's own interval."""

from __future__ import annotations

import numpy as np
import pytest

from orchard_models.yield_model import FEATURES, _t90, county_quantiles, design, fit_yield, predict_yield

C_FS = FEATURES.index("c_log_fruit_set")
C_FROST = FEATURES.index("c_log_frost_survival")
D_FS = FEATURES.index("d_log_fruit_set")


def _design(n: int, rng: np.random.Generator, *, frost: float = 0.0, fruit_set: np.ndarray | None = None
            ) -> np.ndarray:
    nan = np.full(n, np.nan)
    fs = nan if fruit_set is None else fruit_set
    return design(np.full(n, 8), np.full(n, 45.0), np.full(n, 600.0), np.full(n, frost), np.zeros(n), np.zeros(n),
                  np.zeros(n), nan, fs, 10.0, prev_season_dev=rng.normal(0, 0.2, n))


@pytest.mark.parametrize(("dof", "table"), [(5, 1.476), (10, 1.372), (30, 1.310)])
def test_t_quantile_matches_tables(dof: int, table: float) -> None:
    assert _t90(dof) == pytest.approx(table, abs=0.004)


def test_county_fruit_set_supersedes_the_frost_index_and_is_not_counted_twice() -> None:
    rng = np.random.default_rng(0)
    n = 50
    only_frost = _design(n, rng, frost=0.5)
    assert only_frost[0, C_FROST] == pytest.approx(np.log(0.5)) and only_frost[0, C_FS] == 0
    counted = _design(n, rng, frost=0.5, fruit_set=np.where(np.arange(n) < 20, 5.0, np.nan))
    assert counted[0, C_FROST] == 0.0, "a counted fruit set is the measure of what frost left"
    assert counted[0, C_FS] == pytest.approx(np.log(0.5))
    assert np.all(counted[:, D_FS] == 0.0)   # everyone at the county mean (observers) or unknown
    # alternate bearing is within the season only: a county-wide rebound shows in the counts
    assert abs(counted[:, FEATURES.index("prev_season_dev")].mean()) < 1e-12


def _world(shock_sd_scale: float, rng: np.random.Generator) -> tuple[list, list, list, np.ndarray]:
    """6 seasons, one with a county fruit set 0.3 of normal (log -1.2) whose orchards' losses vary."""
    n = 400
    area = rng.uniform(5, 50, n)
    xs, kgs, ages = [], [], []
    for s in range(6):
        c = -1.2 if s == 4 else rng.normal(0, 0.05)
        fs = 10.0 * np.exp(c + rng.normal(0, 0.1, n))
        x = _design(n, rng, fruit_set=fs)
        sens = 1.0 + shock_sd_scale * rng.normal(0, 1, n)      # orchards' sensitivity to the shock
        y = np.log(1100.0) + 0.9 * sens * x[:, C_FS] + rng.normal(0, 0.12, n)
        xs.append(x)
        kgs.append(area * np.exp(y))
        ages.append(np.full(n, 8))
    return xs, kgs, ages, area


def test_shock_seasons_get_wider_orchard_intervals_than_ordinary_ones() -> None:
    rng = np.random.default_rng(4)
    xs, kgs, ages, area = _world(0.5, rng)
    fit = fit_yield(xs, kgs, ages, area)
    assert fit.sigma2_base is not None and np.sqrt(fit.sigma2_base) < 0.2, "ordinary seasons are not widened"
    assert 0.25 < np.sqrt(fit.omega2) < 0.8
    n = area.shape[0]
    normal = _design(n, rng, fruit_set=np.full(n, 10.0))
    shock = _design(n, rng, fruit_set=np.full(n, 10.0 * np.exp(-1.2)))
    w_normal = np.log(np.divide(*predict_yield(fit, normal, np.full(n, 8), area, np.arange(n))[::-2]))
    w_shock = np.log(np.divide(*predict_yield(fit, shock, np.full(n, 8), area, np.arange(n))[::-2]))
    assert np.median(w_shock) > 1.5 * np.median(w_normal)


def test_county_interval_keeps_the_common_shock_but_not_the_orchard_noise() -> None:
    rng = np.random.default_rng(5)
    xs, kgs, ages, area = _world(0.3, rng)
    fit = fit_yield(xs, kgs, ages, area)
    n = area.shape[0]
    x = _design(n, rng, fruit_set=np.full(n, 10.0))
    age = np.full(n, 8)
    p10, p50, p90 = predict_yield(fit, x, age, area, np.arange(n))
    c10, c50, c90 = county_quantiles(fit, x, age, area, np.arange(n))
    assert p10.sum() < c10 < c50 < c90 < p90.sum()
    assert c50 == pytest.approx(p50.sum(), rel=0.05)
    # the season term alone (t quantile of its SD) is a floor for the county's relative half-width
    floor = _t90(fit.seasons + 2) * np.sqrt(fit.sigma2_season)
    assert np.log(c90 / c50) >= floor * 0.999
    # with orchard noise only (no season variance), 400 orchards average it out almost entirely
    fit.sigma2_season = 0.0
    fit.cov_beta[:] = 0.0
    c10, c50, c90 = county_quantiles(fit, x, age, area, np.arange(n))
    assert np.log(c90 / c10) < 0.1 * np.median(np.log(p90 / p10))
