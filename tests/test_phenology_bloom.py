"""The bloom model's calibration (``orchard_models.phenology``) on synthetic records with known parameters.

Each test builds seasons of daily temperature, makes "observed" bloom dates from a model with known
parameters and checks that :func:`calibrate_bloom` finds them again (or predicts the same days)."""

from __future__ import annotations

import numpy as np
import pytest

from orchard_models.phenology import BloomParams, calibrate_bloom, predict_bloom, uniforc_rate


def _seasons(n_seasons: int = 8, n_sites: int = 6, n_days: int = 240, seed: int = 3
             ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per season (n_sites x n_days): daily chill (CP), daily heat (°C·h, 24 h at the daily mean above
    4 °C, a crude stand-in for ASYMCUR) and the daily mean temperature, from a seasonal cycle with
    season- and site-specific anomalies (spring warms from day ~90 on)."""
    rng = np.random.default_rng(seed)
    days = np.arange(n_days)
    chill, heat, tmean = [], [], []
    for _ in range(n_seasons):
        base = 2.0 + 14.0 * np.clip((days - 90) / 120.0, 0, None) + rng.normal(0, 1.5)
        t = base[None, :] + rng.normal(0, 2.5, (n_sites, n_days)) + rng.normal(0, 1.0, (n_sites, 1))
        chill.append(np.where((t > 0) & (t < 10), 0.8, 0.1))
        heat.append(24.0 * np.clip(t - 4.0, 0, None))
        tmean.append(t)
    return chill, heat, tmean


def test_default_params_keep_the_old_sequential_model() -> None:
    """Positional ``BloomParams(CR, HR)`` and no t1: heat from the day after chill fulfilment, as before."""
    chill, heat, _ = _seasons(n_seasons=1)
    p = BloomParams(40.0, 3000.0)
    bloom, cd = predict_bloom(chill[0], heat[0], p)
    cum_c, cum_h = np.cumsum(chill[0], axis=1), np.cumsum(heat[0], axis=1)
    for i in range(bloom.size):
        c = int(np.argmax(cum_c[i] >= 40.0))
        assert cd[i] == c
        assert bloom[i] == c + 1 + int(np.argmax(cum_h[i, c + 1:] - cum_h[i, c] >= 3000.0))


def test_sequential_requirements_recovered() -> None:
    chill, heat, _ = _seasons()
    truth = BloomParams(60.0, 2500.0)
    obs = [predict_bloom(c, h, truth)[0].astype(float) for c, h in zip(chill, heat, strict=True)]
    assert all((o > 0).all() for o in obs)
    fit = calibrate_bloom(chill, heat, obs)
    assert fit.model == "sequential"          # the simplest structure that fits wins the inner CV
    assert fit.rmse_days <= 1.0
    assert fit.chill_req_cp == pytest.approx(60.0, abs=3.0)
    assert fit.heat_req_gdh == pytest.approx(2500.0, rel=0.1)


def test_forcing_start_recovered_when_heat_starts_on_a_fixed_day() -> None:
    """Thermal time from a fixed day t1 (Cannell & Smith 1983): t1 and HR found, days reproduced."""
    chill, heat, _ = _seasons()
    truth = BloomParams(0.0, 3000.0, forcing_start_day=100, model="thermal_t1")
    obs = [predict_bloom(c, h, truth)[0].astype(float) for c, h in zip(chill, heat, strict=True)]
    fit = calibrate_bloom(chill, heat, obs)
    assert fit.model in ("thermal_t1", "sequential_t1")
    assert fit.rmse_days <= 1.0
    assert fit.forcing_start_day == pytest.approx(100, abs=4)
    # the old structure (heat from chill fulfilment) cannot do this as well
    assert fit.cv_rmse_by_model["sequential"] > fit.cv_rmse_days


def test_uniforc_parameters_recovered_from_daily_mean_temperature() -> None:
    chill, heat, tmean = _seasons()
    truth = BloomParams(0.0, 20.0, forcing_start_day=60, model="uniforc", forcing="uniforc",
                        uniforc_b=-0.3, uniforc_c=10.0)
    obs = [predict_bloom(c, h, truth, t)[0].astype(float) for c, h, t in zip(chill, heat, tmean, strict=True)]
    assert all((o > 0).all() for o in obs)
    fit = calibrate_bloom(chill, heat, obs, tmean_daily=tmean, models=("uniforc",))
    assert fit.forcing == "uniforc"
    assert fit.rmse_days <= 1.0
    pred = np.concatenate([predict_bloom(c, h, fit, t)[0] for c, h, t in zip(chill, heat, tmean, strict=True)])
    assert np.mean(np.abs(pred - np.concatenate(obs))) <= 0.5
    assert fit.forcing_start_day == pytest.approx(60, abs=15)


def test_uniforc_rate_is_chuines_sigmoid() -> None:
    r = uniforc_rate(np.array([10.0, 20.0, np.nan]), -0.3, 10.0)
    assert r[0] == pytest.approx(0.5)
    assert r[1] == pytest.approx(1.0 / (1.0 + np.exp(-3.0)))
    assert r[2] == 0.0
    with pytest.raises(ValueError):
        predict_bloom(np.zeros((1, 5)), np.zeros((1, 5)), BloomParams(forcing="uniforc", uniforc_b=-0.3,
                                                                      uniforc_c=10.0))


def test_few_records_or_seasons_keep_defaults_or_the_sequential_model() -> None:
    chill, heat, _ = _seasons(n_seasons=2)
    truth = BloomParams(0.0, 3000.0, forcing_start_day=100)
    obs = [predict_bloom(c, h, truth)[0].astype(float) for c, h in zip(chill, heat, strict=True)]
    default = BloomParams(33.0, 4444.0)
    assert calibrate_bloom(chill, heat, [o[:1] * np.nan for o in obs], default=default) is default
    fit = calibrate_bloom(chill, heat, obs)   # two seasons: no inner CV, the production sequential model
    assert fit.model == "sequential" and fit.forcing_start_day == -1
    again = calibrate_bloom(chill, heat, obs)
    assert (again.chill_req_cp, again.heat_req_gdh) == (fit.chill_req_cp, fit.heat_req_gdh)   # deterministic
