"""Chill and heat models against hand-worked values, the chillR reference algorithm, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from orchard_models.hourly import daylength, hourly_from_daily
from orchard_models.thermal import (
    A0,
    A1,
    E0,
    E1,
    daily_thermal,
    daily_thermal_reference,
    dynamic_model,
    gdh_asymcur,
    utah_model,
)


def chillr_dynamic_model(temps: list[float]) -> list[float]:
    """Line-by-line transcription of chillR's ``Dynamic_Model`` R source (Luedeling; temp_models.R),
    plain Python loops, as the reference the vectorised implementation must reproduce."""
    e0, e1, a0, a1, slp, tetmlt = 4153.5, 12888.8, 139500.0, 2567000000000000000.0, 1.6, 277.0
    aa = a0 / a1
    ee = e1 - e0
    tk = [t + 273 for t in temps]
    ftmprt = [slp * tetmlt * (x - tetmlt) / x for x in tk]
    sr = [math.exp(f) for f in ftmprt]
    xi = [s / (1 + s) for s in sr]
    xs = [aa * math.exp(ee / x) for x in tk]
    ak1 = [a1 * math.exp(-e1 / x) for x in tk]
    big_s = list(ak1)
    big_s[0] = 0.0
    big_e = list(big_s)
    for l_ in range(1, len(temps)):
        if big_e[l_ - 1] < 1:
            big_s[l_] = big_e[l_ - 1]
        else:
            big_s[l_] = big_e[l_ - 1] - big_e[l_ - 1] * xi[l_ - 1]
        big_e[l_] = xs[l_] - (xs[l_] - big_s[l_]) * math.exp(-ak1[l_])
    delt = [big_e[i] * xi[i] if big_e[i] >= 1 else 0.0 for i in range(len(temps))]
    out, acc = [], 0.0
    for d in delt:
        acc += d
        out.append(acc)
    return out


# -- hand-worked values --------------------------------------------------------------------------

@pytest.mark.parametrize(("t", "w"), [(-5, 0), (1.4, 0), (1.5, 0.5), (2.4, 0.5), (2.5, 1), (9.1, 1), (9.2, 0.5),
                                      (12.4, 0.5), (12.5, 0), (15.9, 0), (16.0, -0.5), (18.0, -0.5), (18.1, -1),
                                      (30, -1)])
def test_utah_weights_at_interval_bounds(t: float, w: float) -> None:
    """Richardson et al. (1974) weights, interval bounds as chillR (lower < T <= upper)."""
    assert utah_model(np.array([t]), cumulative=False)[0] == w


@pytest.mark.parametrize(("t", "gdh"), [(3.9, 0.0), (4.0, 0.0), (14.5, 10.5), (25.0, 21.0),
                                        (30.5, 21.0 * (1 - math.sqrt(0.5))), (36.0, 0.0), (40.0, 0.0)])
def test_gdh_asymcur_hand_worked(t: float, gdh: float) -> None:
    """ASYMCUR (Anderson et al. 1986): half of (Tu - Tb) at the midpoint 14.5 °C, full 21 at Tu = 25 °C,
    cos(3pi/4) at 30.5 °C, zero at Tc = 36 °C."""
    assert gdh_asymcur(np.array([t]), cumulative=False)[0] == pytest.approx(gdh, abs=1e-9)


def test_dynamic_model_first_portion_at_constant_temperature_matches_closed_form() -> None:
    """At constant T the intermediate follows E_n = xs (1 - exp(-k1 (n - 1))) until it reaches 1, so the
    first chill portion completes at the first hour with E >= 1 and equals E * xi (Fishman et al. 1987)."""
    t = 6.0
    tk = t + 273.0
    xs = A0 / A1 * math.exp((E1 - E0) / tk)
    k1 = A1 * math.exp(-E1 / tk)
    xi = 1 / (1 + math.exp(-1.6 * 277 * (tk - 277) / tk))
    n_first = 1 + math.ceil(-math.log(1 - 1 / xs) / k1)       # 1-based hour index where E >= 1
    e_first = xs * (1 - math.exp(-k1 * (n_first - 1)))
    cp, _ = dynamic_model(np.full(200, t))
    first = int(np.argmax(cp > 0))
    assert first + 1 == n_first
    assert cp[first] == pytest.approx(e_first * xi, rel=1e-12)
    # about one portion per day and a half at the optimum (6 °C): 28-29 hours for the first one
    assert 20 <= n_first <= 40


def test_dynamic_model_no_chill_when_constantly_warm() -> None:
    """xs < 1 above about 13 °C (K = °C + 273): a constant warm temperature never completes a portion."""
    assert dynamic_model(np.full(2000, 14.0))[0][-1] == 0.0
    assert dynamic_model(np.full(2000, 12.0))[0][-1] > 0.0


def test_dynamic_model_reproduces_chillr_reference() -> None:
    rng = np.random.default_rng(11)
    hours = np.arange(24 * 120)
    temps = 7 + 7 * np.sin(hours / 24 * 2 * np.pi) + rng.normal(0, 3, hours.size)
    temps[500:560] = 20.0  # a warm spell that destroys intermediate
    ours, _ = dynamic_model(temps)
    ref = np.array(chillr_dynamic_model(temps.tolist()))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert ref[-1] > 30


def test_daylength_published_values() -> None:
    """Sunrise-to-sunset day length at 31.07 °N (Wushan): about 14 h 10 min at the June solstice and
    10 h 08 min at the December solstice (astronomical tables, refraction included); 12.1 h at the equator."""
    _, _, dl = daylength(np.array([31.07]), np.array([172, 355]))
    assert dl[0] == pytest.approx(14.17, abs=0.06)
    assert dl[1] == pytest.approx(10.13, abs=0.06)
    assert daylength(0.0, 80)[2] == pytest.approx(12.1, abs=0.05)


def test_hourly_reconstruction_stays_within_daily_extremes() -> None:
    n_d = 20
    tmin = np.full((2, n_d), 4.0)
    tmax = np.full((2, n_d), 16.0)
    h = hourly_from_daily(tmin, tmax, np.array([31.0, 45.0]), np.arange(60, 60 + n_d))
    assert h.shape == (2, n_d, 24)
    # the night-time log decay of chillR's formula (``ln(h - sunset + 1)`` over ``ln(night length)``) slightly
    # overshoots Tmin in the hour before sunrise; never by more than half a degree for a 12 °C range
    assert np.all(h >= 4.0 - 0.5) and np.all(h <= 16.0 + 1e-9)
    # coldest near sunrise, warmest in the afternoon (Linvill 1990)
    mid = h[0, 10]
    assert 4 <= int(np.argmin(mid)) <= 7 and mid.min() < 4.0 + 0.1
    assert 13 <= int(np.argmax(mid)) <= 16
    assert mid.max() > 15.0


def test_compiled_kernel_equals_numpy_reference_with_gaps_and_hourly_observations() -> None:
    rng = np.random.default_rng(5)
    n_o, n_d = 7, 90
    base = 8 + 6 * np.sin(np.arange(n_d) / 30)
    tmin = base + rng.normal(0, 3, (n_o, n_d)) - 4
    tmax = tmin + rng.uniform(3, 14, (n_o, n_d))
    tmin[2, 10:14] = np.nan
    tmax[3, 0] = np.nan
    obs = np.full((n_o, n_d, 24), np.nan)
    obs[1, 20:25, :] = rng.normal(2, 4, (5, 24))
    obs[4, 30, 3:9] = -3.0
    doy = np.arange(300, 300 + n_d) % 365 + 1
    lat = np.linspace(30.8, 31.3, n_o)
    a = daily_thermal(tmin, tmax, lat, doy, hourly_obs_c=obs, chill_days=(5, 80))
    b = daily_thermal_reference(tmin, tmax, lat, doy, hourly_obs_c=obs, chill_days=(5, 80))
    for f in ("chill_portions", "utah_units", "gdh", "frost_hours", "heat_degree_hours", "tmin_hourly"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-5, atol=1e-4, err_msg=f)
    assert a.chill_portions[:, :5].sum() == 0 and a.chill_portions[:, 80:].sum() == 0
    assert a.frost_hours[4, 30, 0] == 0 and a.frost_hours[4, 30, -1] >= 6  # six hours at -3 °C are below 0 °C


# -- properties --------------------------------------------------------------------------------------

temps_strategy = arrays(np.float64, st.integers(2, 400), elements=st.floats(-20, 40, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(temps_strategy)
def test_chill_portions_accumulate_monotonically_and_bounded(temps: np.ndarray) -> None:
    cp, _ = dynamic_model(temps)
    assert np.all(np.diff(cp) >= 0) and cp[0] >= 0
    # at most about one portion per 20 hours even at the optimum
    assert cp[-1] <= temps.size / 20 + 1


@settings(max_examples=60, deadline=None)
@given(temps_strategy, st.integers(1, 399))
def test_dynamic_model_state_carries_over_blocks(temps: np.ndarray, cut: int) -> None:
    cut = min(cut, temps.size - 1)
    whole, _ = dynamic_model(temps, cumulative=False)
    a, state = dynamic_model(temps[:cut], cumulative=False)
    b, _ = dynamic_model(temps[cut:], state, cumulative=False)
    np.testing.assert_allclose(np.concatenate([a, b]), whole, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(temps_strategy)
def test_utah_and_gdh_bounds(temps: np.ndarray) -> None:
    u = utah_model(temps, cumulative=False)
    g = gdh_asymcur(temps, cumulative=False)
    assert np.all((u >= -1) & (u <= 1))
    assert np.all((g >= 0) & (g <= 21 + 1e-9))
    assert np.all(np.diff(gdh_asymcur(temps)) >= -1e-9)


@settings(max_examples=40, deadline=None)
@given(st.floats(4.0, 24.9), st.floats(0.01, 0.1))
def test_gdh_increases_with_temperature_below_optimum(t: float, dt: float) -> None:
    a, b = gdh_asymcur(np.array([t, min(t + dt, 25.0)]), cumulative=False)
    assert b >= a
