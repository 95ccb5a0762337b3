"""Chill and heat accumulation models on hourly temperature (°C), vectorised over orchards.

* Dynamic model, chill portions (CP): Fishman, Erez & Couvillon (1987a,b, J. Theor. Biol. 124:473-483
  and 126:309-321); Erez et al. (1990, Acta Hortic. 276:165-174). Parameters and the hourly
  recursion are those extracted by Luedeling et al. (2009) from Erez & Fishman's spreadsheet and used
  by chillR's ``Dynamic_Model`` (temperature in K = °C + 273, as there).
* Utah model, chill units (CU): Richardson, Seeley & Walker (1974, HortScience 9:331-332); the
  weights and interval bounds (lower < T <= upper) of chillR's ``Utah_Model``.
* Chilling hours (CH): hours with 0 < T <= 7.2 °C (Weinberger 1950, Proc. Amer. Soc. Hort. Sci.
  56:122-128; chillR's ``Chilling_Hours``).
* Growing degree hours (GDH), ASYMCUR: Anderson, Richardson & Kesner (1986, Acta Hortic.
  184:71-78), base Tb = 4 °C, optimum Tu = 25 °C, critical Tc = 36 °C, as chillR's ``GDH``.

Every function takes arrays whose LAST axis is time in hours and broadcasts over the others
(typically orchards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DailyThermal", "DynamicState", "chilling_hours", "daily_thermal", "daily_thermal_reference",
           "dynamic_model", "gdh_asymcur", "utah_model"]

# Dynamic model constants (Fishman et al. 1987; chillR Dynamic_Model)
E0 = 4153.5          #: activation energy of formation of the precursor, K
E1 = 12888.8         #: activation energy of its destruction, K
A0 = 139500.0        #: pre-exponential factor, formation, 1/h
A1 = 2.567e18        #: pre-exponential factor, destruction, 1/h
SLP = 1.6            #: slope of the sigmoid of the conversion to a portion
TETMLT = 277.0       #: temperature of the sigmoid's midpoint, K

_UTAH_BOUNDS = np.array([1.4, 2.4, 9.1, 12.4, 15.9, 18.0])
_UTAH_WEIGHTS = np.array([0.0, 0.5, 1.0, 0.5, 0.0, -0.5, -1.0])


@dataclass
class DynamicState:
    """State carried between calls of :func:`dynamic_model` (per orchard)."""

    intermediate: np.ndarray  #: the precursor level E of the last hour (dimensionless)
    xi: np.ndarray            #: the conversion fraction of the last hour


def _dynamic_coefficients(temp_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tk = temp_c + 273.0
    ftmprt = SLP * TETMLT * (tk - TETMLT) / tk
    # xi = sr / (1 + sr) with sr = exp(ftmprt), written stably (logistic)
    xi = 0.5 * (1.0 + np.tanh(0.5 * ftmprt))
    xs = (A0 / A1) * np.exp((E1 - E0) / tk)
    eak1 = np.exp(-A1 * np.exp(-E1 / tk))
    return xs, eak1, xi


def dynamic_model(temp_c: np.ndarray, state: DynamicState | None = None,
                  *, cumulative: bool = True) -> tuple[np.ndarray, DynamicState]:
    """Chill portions (Dynamic model) for hourly temperatures ``temp_c`` (°C, time on the last axis).

    Returns (portions, state): cumulative chill portions per hour when ``cumulative`` (else the
    portions completed in each hour), and the state to continue with the next block of hours.
    Without ``state`` the first hour starts from zero intermediate (chillR: E[1] = 0). A NaN hour
    leaves the state unchanged and adds nothing (fill gaps before for a faithful count).

    Hourly recursion (Erez & Fishman; chillR): ``S = E_prev`` if ``E_prev < 1`` else
    ``E_prev * (1 - xi_prev)``; ``E = xs - (xs - S) * exp(-k1)``; a portion ``E * xi`` completes
    when ``E >= 1``, with ``xs = A0/A1 * exp((E1 - E0)/T)``, ``k1 = A1 * exp(-E1/T)``,
    ``xi = logistic(SLP * TETMLT * (T - TETMLT) / T)``, T in K.
    """
    t = np.asarray(temp_c, dtype=np.float64)
    xs, eak1, xi = _dynamic_coefficients(t)
    n = t.shape[-1]
    lead = t.shape[:-1]
    out = np.zeros(t.shape, dtype=np.float64)
    if state is None:
        e_prev = np.zeros(lead)
        xi_prev = np.zeros(lead)
        start = 1
        if n:
            # chillR: hour 1 has E = 0 (no accumulation in the first hour); its xi feeds hour 2
            xi_prev = np.where(np.isnan(t[..., 0]), 0.0, xi[..., 0])
    else:
        e_prev = state.intermediate.astype(np.float64, copy=True)
        xi_prev = state.xi.astype(np.float64, copy=True)
        start = 0
    nan = np.isnan(t)
    any_nan = bool(nan.any())
    for h in range(start, n):
        s = np.where(e_prev >= 1.0, e_prev * (1.0 - xi_prev), e_prev)
        e = xs[..., h] - (xs[..., h] - s) * eak1[..., h]
        delt = np.where(e >= 1.0, e * xi[..., h], 0.0)
        if any_nan:
            gap = nan[..., h]
            e = np.where(gap, e_prev, e)
            delt = np.where(gap, 0.0, delt)
            xi_h = np.where(gap, xi_prev, xi[..., h])
        else:
            xi_h = xi[..., h]
        out[..., h] = delt
        e_prev = e
        xi_prev = xi_h
    new_state = DynamicState(intermediate=e_prev, xi=xi_prev)
    return (np.cumsum(out, axis=-1) if cumulative else out), new_state


def utah_model(temp_c: np.ndarray, *, cumulative: bool = True) -> np.ndarray:
    """Utah chill units (Richardson et al. 1974) per hour, or their cumulative sum along the last axis.

    Weights by hourly temperature T (°C), each interval open below and closed above:
    T <= 1.4: 0; (1.4, 2.4]: 0.5; (2.4, 9.1]: 1; (9.1, 12.4]: 0.5; (12.4, 15.9]: 0;
    (15.9, 18]: -0.5; T > 18: -1. NaN hours count 0.
    """
    t = np.asarray(temp_c, dtype=np.float64)
    w = _UTAH_WEIGHTS[np.digitize(t, _UTAH_BOUNDS, right=True)]
    w = np.where(np.isnan(t), 0.0, w)
    return np.cumsum(w, axis=-1) if cumulative else w


def chilling_hours(temp_c: np.ndarray, *, cumulative: bool = True) -> np.ndarray:
    """Chilling hours (Weinberger 1950): 1 for each hour with 0 < T <= 7.2 °C, else 0 (NaN hours 0),
    per hour or cumulative along the last axis -- chillR's ``Chilling_Hours``."""
    t = np.asarray(temp_c, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        w = ((t > 0.0) & (t <= 7.2)).astype(np.float64)
    return np.cumsum(w, axis=-1) if cumulative else w


def gdh_asymcur(temp_c: np.ndarray, *, tb: float = 4.0, tu: float = 25.0, tc: float = 36.0,
                cumulative: bool = True) -> np.ndarray:
    """Growing degree hours (°C·h) by ASYMCUR (Anderson et al. 1986), per hour or cumulative.

    ``Tb <= T <= Tu``: ``(Tu - Tb)/2 * (1 + cos(pi + pi * (T - Tb)/(Tu - Tb)))``;
    ``Tu < T <= Tc``: ``(Tu - Tb) * (1 + cos(pi/2 + pi/2 * (T - Tu)/(Tc - Tu)))``; else 0.
    """
    t = np.asarray(temp_c, dtype=np.float64)
    w = np.zeros_like(t)
    lo = (t >= tb) & (t <= tu)
    hi = (t > tu) & (t <= tc)
    w = np.where(lo, (tu - tb) / 2.0 * (1.0 + np.cos(np.pi + np.pi * (t - tb) / (tu - tb))), w)
    w = np.where(hi, (tu - tb) * (1.0 + np.cos(np.pi / 2.0 + np.pi / 2.0 * (t - tu) / (tc - tu))), w)
    return np.cumsum(w, axis=-1) if cumulative else w


#: thresholds (°C) for which frost hours are counted per day
FROST_THRESHOLDS_C: tuple[float, ...] = (-6.0, -5.0, -4.0, -3.0, -2.5, -2.0, -1.5, -1.0, 0.0)
HEAT_THRESHOLD_C = 35.0


@dataclass
class DailyThermal:
    """Per-orchard, per-day summaries of one season's hourly temperature (float32, shape (o, d))."""

    chill_portions: np.ndarray       #: CP completed on the day (Dynamic model)
    utah_units: np.ndarray           #: Utah chill units of the day
    gdh: np.ndarray                  #: growing degree hours of the day, °C·h
    frost_hours: np.ndarray          #: hours below each of FROST_THRESHOLDS_C, shape (o, d, k), h
    heat_degree_hours: np.ndarray    #: sum of (T - 35 °C) over hours above 35 °C, °C·h
    tmin_hourly: np.ndarray          #: lowest hourly temperature of the day, °C


_T_LO, _T_HI, _T_STEP = -50.0, 60.0, 0.01
_TABLE: list[np.ndarray] = []


def _table() -> np.ndarray:
    if not _TABLE:
        from orchard_models._kernels import response_table

        _TABLE.append(response_table(_T_LO, _T_HI, _T_STEP))
    return _TABLE[0]


def daily_thermal(tmin_c: np.ndarray, tmax_c: np.ndarray, latitude_deg: np.ndarray, doy: np.ndarray,
                  *, hourly_obs_c: np.ndarray | None = None,
                  chill_days: tuple[int, int] = (0, 10**6), days: tuple[int, int] | None = None) -> DailyThermal:
    """Same result as :func:`daily_thermal_reference`, computed by the compiled kernel
    (:mod:`orchard_models._kernels`) in one pass over orchards x hours (memory: the (o, d) outputs).
    ``days``: compute only days ``lo <= d < hi`` (others stay 0, ``tmin_hourly`` NaN)."""
    from orchard_models._kernels import thermal_kernel
    from orchard_models.hourly import daylength

    tmin = np.ascontiguousarray(tmin_c, dtype=np.float64)
    tmax = np.ascontiguousarray(tmax_c, dtype=np.float64)
    n_o, n_d = tmin.shape
    jd = np.asarray(doy, dtype=np.float64).reshape(1, -1)
    jd_ext = np.concatenate([jd[:, :1] - 1.0, jd, jd[:, -1:] + 1.0], axis=1)
    lat = np.asarray(latitude_deg, dtype=np.float64).reshape(-1, 1)
    rise, sset, dl = (np.ascontiguousarray(np.broadcast_to(a, (n_o, n_d + 2))) for a in daylength(lat, jd_ext))
    cp = np.zeros((n_o, n_d), dtype=np.float64)
    ut = np.zeros((n_o, n_d), dtype=np.float64)
    gd = np.zeros((n_o, n_d), dtype=np.float64)
    fr = np.zeros((n_o, n_d, len(FROST_THRESHOLDS_C)), dtype=np.float32)
    hd = np.zeros((n_o, n_d), dtype=np.float64)
    tmn = np.full((n_o, n_d), np.nan, dtype=np.float64)
    has_obs = hourly_obs_c is not None
    obs = (np.ascontiguousarray(hourly_obs_c, dtype=np.float64) if has_obs
           else np.empty((1, 1, 24), dtype=np.float64))
    c_lo, c_hi = max(0, chill_days[0]), min(n_d, chill_days[1])
    thermal_kernel(tmin, tmax, rise, sset, dl, obs, has_obs, c_lo, c_hi,
                   np.asarray(FROST_THRESHOLDS_C, dtype=np.float64), HEAT_THRESHOLD_C, _table(), _T_LO, _T_STEP,
                   cp, ut, gd, fr, hd, tmn, *(days if days is not None else (0, n_d)))
    f4 = np.float32
    return DailyThermal(cp.astype(f4), ut.astype(f4), gd.astype(f4), fr, hd.astype(f4), tmn.astype(f4))


def daily_thermal_reference(tmin_c: np.ndarray, tmax_c: np.ndarray, latitude_deg: np.ndarray, doy: np.ndarray,
                            *, hourly_obs_c: np.ndarray | None = None, chill_days: tuple[int, int] = (0, 10**6),
                            block_days: int = 16) -> DailyThermal:
    """Daily chill/heat/frost summaries for daily Tmin/Tmax (°C) of shape (orchard, day).

    Hourly temperature is reconstructed block by block (:func:`orchard_models.hourly.hourly_from_daily`,
    Linvill 1990) and replaced by ``hourly_obs_c`` (orchard, day, 24) where that is not NaN. Chill
    portions accumulate on days ``chill_days[0] <= d < chill_days[1]`` (0 elsewhere). Processing
    ``block_days`` days at a time keeps memory proportional to the number of orchards. NaN hours
    (unfilled gaps) add nothing.
    """
    from orchard_models.hourly import hourly_from_daily

    tmin = np.asarray(tmin_c, dtype=np.float64)
    tmax = np.asarray(tmax_c, dtype=np.float64)
    n_o, n_d = tmin.shape
    cp = np.zeros((n_o, n_d), dtype=np.float32)
    ut = np.zeros((n_o, n_d), dtype=np.float32)
    gd = np.zeros((n_o, n_d), dtype=np.float32)
    fr = np.zeros((n_o, n_d, len(FROST_THRESHOLDS_C)), dtype=np.float32)
    hd = np.zeros((n_o, n_d), dtype=np.float32)
    tmn = np.full((n_o, n_d), np.nan, dtype=np.float32)
    state: DynamicState | None = None
    thr = np.asarray(FROST_THRESHOLDS_C)
    c_lo, c_hi = max(0, chill_days[0]), min(n_d, chill_days[1])
    for d0 in range(0, n_d, block_days):
        d1 = min(n_d, d0 + block_days)
        e0, e1 = max(0, d0 - 1), min(n_d, d1 + 1)
        blk = hourly_from_daily(tmin[:, e0:e1], tmax[:, e0:e1], latitude_deg, doy[e0:e1])
        blk = blk[:, d0 - e0: d0 - e0 + (d1 - d0)]
        if hourly_obs_c is not None:
            obs = np.asarray(hourly_obs_c[:, d0:d1, :], dtype=np.float64)
            blk = np.where(np.isnan(obs), blk, obs)
        ut[:, d0:d1] = utah_model(blk, cumulative=False).sum(axis=-1)
        gd[:, d0:d1] = gdh_asymcur(blk, cumulative=False).sum(axis=-1)
        with np.errstate(invalid="ignore"):
            fr[:, d0:d1, :] = (blk[:, :, :, None] < thr).sum(axis=2)
            hd[:, d0:d1] = np.where(blk > HEAT_THRESHOLD_C, blk - HEAT_THRESHOLD_C, 0.0).sum(axis=-1)
        allnan = np.isnan(blk).all(axis=-1)
        tmn[:, d0:d1] = np.where(allnan, np.nan, np.where(np.isnan(blk), np.inf, blk).min(axis=-1))
        a, b = max(d0, c_lo), min(d1, c_hi)
        if b > a:
            seg = blk[:, a - d0:b - d0, :].reshape(n_o, (b - a) * 24)
            per_hour, state = dynamic_model(seg, state, cumulative=False)
            cp[:, a:b] = per_hour.reshape(n_o, b - a, 24).sum(axis=-1)
    return DailyThermal(cp, ut, gd, fr, hd, tmn)
