"""Harvest timing as a distribution: week shares integrated over an ensemble of the past seasons'
weather, bloom predictions corrected by this season's recorded blooms, the synthetic scaling inputs."""

from __future__ import annotations

from datetime import date

import numpy as np

from orchard_models.forecast import Forecaster, Observations, _season_bias_corrected
from orchard_models.grading import week_share_distribution, week_shares
from orchard_models.synthetic import make_scaled_target, make_season, make_world
from orchard_models.weather import season_start


def test_identical_members_give_the_point_shares_and_spread_members_widen_them() -> None:
    weeks = np.arange(240.0, 320.0, 7.0)
    cen = np.array([270.0, 285.0, np.nan])
    same = np.tile(cen, (5, 1))
    s, lo, hi = week_share_distribution(same, cen, 4.0, 2.0, weeks, 0.0)
    assert np.allclose(s, week_shares(cen, float(np.hypot(4.0, 2.0)), weeks, 0.0))   # every member the same
    assert np.allclose(s[:2].sum(axis=1), 1.0) and np.all(s[2] == 0)
    assert np.all(lo <= s + 1e-12) and np.all(hi >= s - 1e-12)
    spread = cen[None, :] + np.array([-6.0, -3.0, 0.0, 3.0, 6.0])[:, None]
    s2, lo2, hi2 = week_share_distribution(spread, cen, 4.0, 2.0, weeks, 0.0)
    assert np.allclose(s2[:2].sum(axis=1), 1.0)
    # a mixture over the members: flatter peak, more weight in the tails, a wider envelope
    assert s2[0].max() < s[0].max()
    assert (hi2 - lo2)[0].sum() > (hi - lo)[0].sum()


def test_bloom_bias_correction_uses_the_median_residual_of_recorded_orchards() -> None:
    pred = np.array([100, 102, 98, 101, 99, 100, 103, 97, 100, 101, 100, 104, -1])
    obs = np.full(pred.shape, -1)
    assert np.array_equal(_season_bias_corrected(pred, obs), pred)   # no records: unchanged
    obs[:11] = pred[:11] + 5
    out = _season_bias_corrected(pred, obs)
    assert np.array_equal(out[11:], np.array([109, -1]))            # shifted by 5, unknown stays unknown


def test_timing_members_narrow_as_the_harvest_comes_closer() -> None:
    world = make_world(n=150, seasons=(2020, 2021, 2022, 2023), seed=3, frost_season=None, drought_season=None)
    fcr = Forecaster(world.orchards, world.seasons)
    target = make_season(world.orchards, 2024, np.random.default_rng(5))
    s0 = season_start(2024)
    spreads = []
    for d in (date(2024, 5, 20), date(2024, 6, 25)):
        fc = fcr.forecast(target.weather, (d - s0).days, target.observations)
        assert np.allclose(fc.week_share.sum(axis=1)[fc.week_share.sum(axis=1) > 0], 1.0)
        p = fcr._forecast_chunk(target.weather, (d - s0).days, target.observations, np.arange(world.orchards.n),
                                (d - s0).days + 1, None, None)
        m = p["timing_members"]
        assert m.shape == (4, world.orchards.n)
        spreads.append(float(np.nanmean(np.nanstd(m, axis=0))))
    assert spreads[1] <= spreads[0] + 1e-9


def test_scaled_target_is_float32_tiled_and_forecastable() -> None:
    world = make_world(n=60, seasons=(2021, 2022, 2023), seed=4, frost_season=None, drought_season=None)
    tab, rec, ref = make_scaled_target(world.orchards, 250, 2024, chunk=100)
    assert tab.n == 250 and rec.weather.tmin_c.dtype == np.float32 and np.array_equal(ref, np.arange(250) % 60)
    fcr = Forecaster(world.orchards, world.seasons)
    fc = fcr.forecast(rec.weather, (date(2024, 6, 10) - season_start(2024)).days, rec.observations,
                      orchards=tab, ref_idx=ref, chunk=100)
    assert fc.total_p50_kg.shape == (250,) and np.isfinite(fc.total_p50_kg).all()


def test_recorded_bloom_moves_the_timing_not_the_yield_model() -> None:
    """The yield model's windows were fitted with predicted blooms: recorded blooms of the target season
    move the harvest weeks (the timing model was fitted on recorded blooms), not the totals."""
    world = make_world(n=120, seasons=(2020, 2021, 2022, 2023), seed=6, frost_season=None, drought_season=None)
    fcr = Forecaster(world.orchards, world.seasons)
    target = make_season(world.orchards, 2024, np.random.default_rng(9))
    as_of = (date(2024, 6, 1) - season_start(2024)).days
    obs = target.observations
    assert obs is not None and target.bloom_day is not None
    without = Observations(obs.flower_density, obs.flower_density_day, obs.fruit_set, obs.fruit_set_day, None)
    with_b = Observations(obs.flower_density, obs.flower_density_day, obs.fruit_set, obs.fruit_set_day,
                          target.bloom_day + 10)
    a = fcr.forecast(target.weather, as_of, without)
    b = fcr.forecast(target.weather, as_of, with_b)
    assert np.array_equal(a.total_p50_kg, b.total_p50_kg) and a.county_kg == b.county_kg
    assert np.nanmean(b.centroid_day - a.centroid_day) > 5
