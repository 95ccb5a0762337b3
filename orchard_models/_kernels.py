"""Compiled (numba) loop doing, per orchard and hour, what :mod:`orchard_models.hourly` and
:mod:`orchard_models.thermal` do with numpy arrays: Linvill (1990) hourly reconstruction, Dynamic
model chill portions (Fishman et al. 1987), Utah units (Richardson et al. 1974), ASYMCUR growing
degree hours (Anderson et al. 1986), frost hours and heat degree-hours.

The numpy modules are the readable reference; tests assert this kernel gives the same numbers. The
kernel exists because the Dynamic model is a recursion over hours that numpy cannot vectorise in
time: compiled, one season for 1,546 orchards takes tens of milliseconds instead of seconds.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_E0 = 4153.5
_E1 = 12888.8
_A0 = 139500.0
_A1 = 2.567e18
_SLP = 1.6
_TETMLT = 277.0


@njit(cache=True, inline="always")
def _utah(t: float) -> float:
    if t <= 1.4:
        return 0.0
    if t <= 2.4:
        return 0.5
    if t <= 9.1:
        return 1.0
    if t <= 12.4:
        return 0.5
    if t <= 15.9:
        return 0.0
    if t <= 18.0:
        return -0.5
    return -1.0


def response_table(t_lo: float = -50.0, t_hi: float = 60.0, step: float = 0.01) -> np.ndarray:
    """Tabulate xs, exp(-k1), xi of the Dynamic model and the ASYMCUR GDH weight on a temperature grid (°C)."""
    from orchard_models.thermal import _dynamic_coefficients, gdh_asymcur

    t = np.arange(t_lo, t_hi + step / 2, step)
    xs, eak1, xi = _dynamic_coefficients(t)
    return np.ascontiguousarray(np.column_stack([xs, eak1, xi, gdh_asymcur(t, cumulative=False),
                                                 np.zeros_like(t)]))


@njit(cache=True, inline="always")
def _gdh(t: float) -> float:
    tb, tu, tc = 4.0, 25.0, 36.0
    if t >= tb and t <= tu:
        return (tu - tb) / 2.0 * (1.0 + math.cos(math.pi + math.pi * (t - tb) / (tu - tb)))
    if t > tu and t <= tc:
        return (tu - tb) * (1.0 + math.cos(math.pi / 2.0 + math.pi / 2.0 * (t - tu) / (tc - tu)))
    return 0.0


@njit(cache=True, parallel=True)
def thermal_kernel(tmin: np.ndarray, tmax: np.ndarray, rise_e: np.ndarray, set_e: np.ndarray,
                   dl_e: np.ndarray, hourly_obs: np.ndarray, has_obs: bool, chill_lo: int, chill_hi: int,
                   thresholds: np.ndarray, heat_c: float, table: np.ndarray, t_lo: float, t_step: float,
                   cp: np.ndarray, ut: np.ndarray, gd: np.ndarray, fr: np.ndarray, hd: np.ndarray,
                   tmn: np.ndarray, d_lo: int, d_hi: int) -> None:
    """Fill the output arrays (orchard, day[, threshold]) in place.

    ``rise_e``/``set_e``/``dl_e`` are sunrise, sunset and day length for days -1 .. n_d (shape
    (o, n_d + 2)); ``hourly_obs`` (o, d, 24) is used where not NaN when ``has_obs``. ``table``
    (k, 5) holds xs, exp(-k1), xi (Dynamic model) and the GDH weight tabulated at temperatures
    ``t_lo + i * t_step`` (see :func:`response_table`); values between grid points are interpolated
    linearly (the functions are smooth: relative error < 1e-6 at a 0.01 °C step). Only days
    ``d_lo <= d < d_hi`` are computed (the outputs keep their initial values elsewhere).
    """
    n_t = table.shape[0]
    n_o, n_d = tmin.shape
    n_k = thresholds.shape[0]  # thresholds ascending
    for o in prange(n_o):
        e_prev = 0.0
        xi_prev = 0.0
        first = True
        for d in range(d_lo, d_hi):
            tn = tmin[o, d]
            tx = tmax[o, d]
            rise = rise_e[o, d + 1]
            sset = set_e[o, d + 1]
            dl = dl_e[o, d + 1]
            prev_set = set_e[o, d]
            next_rise = rise_e[o, d + 2]
            amp = math.sin(math.pi * dl / (dl + 4.0))
            t_sunset = tn + (tx - tn) * amp
            if d > 0:
                prev_t_sunset = tmin[o, d - 1] + (tmax[o, d - 1] - tmin[o, d - 1]) * amp
            else:
                prev_t_sunset = math.nan
            next_min = tmin[o, d + 1] if d + 1 < n_d else math.nan
            morn_den = math.log(max(1.0, 24.0 - (prev_set - rise)))
            eve_den = math.log(24.0 - (sset - next_rise) + 1.0)
            own_ok = not (math.isnan(tn) or math.isnan(tx))
            step = math.pi / (dl + 4.0)
            sin_step = math.sin(step)
            cos_step = math.cos(step)
            day_started = False
            s_day = 0.0
            c_day = 1.0
            day_min = math.inf
            s_ut = 0.0
            s_gd = 0.0
            s_hd = 0.0
            any_h = False
            for h in range(24):
                fh = float(h)
                v = math.nan
                if fh <= rise:
                    if d == 0:
                        v = tn
                    else:
                        v = prev_t_sunset - (prev_t_sunset - tn) / morn_den * math.log(fh + 24.0 - prev_set + 1.0)
                elif fh <= sset:
                    # sin(pi (h - sunrise) / (daylength + 4)) stepped hour by hour with the angle-addition
                    # recurrence (one sin/cos pair per day instead of one sin per hour)
                    if not day_started:
                        ang = math.pi * (fh - rise) / (dl + 4.0)
                        s_day = math.sin(ang)
                        c_day = math.cos(ang)
                        day_started = True
                    else:
                        s_new = s_day * cos_step + c_day * sin_step
                        c_day = c_day * cos_step - s_day * sin_step
                        s_day = s_new
                    v = tn + (tx - tn) * s_day
                if fh >= sset:
                    if d == n_d - 1:
                        v = tn
                    else:
                        v = t_sunset - (t_sunset - next_min) / eve_den * math.log(max(fh - sset, 0.0) + 1.0)
                if math.isnan(v) and own_ok:
                    v = tn
                if has_obs:
                    ob = hourly_obs[o, d, h]
                    if not math.isnan(ob):
                        v = ob
                if math.isnan(v):
                    continue
                any_h = True
                pos = (v - t_lo) / t_step
                if pos < 0.0:
                    pos = 0.0
                if pos > n_t - 1.001:
                    pos = n_t - 1.001
                ti = int(pos)
                fr_ = pos - ti
                s_ut += _utah(v)
                s_gd += table[ti, 3] + (table[ti + 1, 3] - table[ti, 3]) * fr_
                if v > heat_c:
                    s_hd += v - heat_c
                if v < day_min:
                    day_min = v
                if v < thresholds[n_k - 1]:
                    for k in range(n_k):
                        if v < thresholds[k]:
                            fr[o, d, k] += 1.0
                if d >= chill_lo and d < chill_hi:
                    xi = table[ti, 2] + (table[ti + 1, 2] - table[ti, 2]) * fr_
                    if first:
                        e_prev = 0.0
                        xi_prev = xi
                        first = False
                        continue
                    xs = table[ti, 0] + (table[ti + 1, 0] - table[ti, 0]) * fr_
                    eak1 = table[ti, 1] + (table[ti + 1, 1] - table[ti, 1]) * fr_
                    s = e_prev * (1.0 - xi_prev) if e_prev >= 1.0 else e_prev
                    e = xs - (xs - s) * eak1
                    if e >= 1.0:
                        cp[o, d] += e * xi
                    e_prev = e
                    xi_prev = xi
            ut[o, d] = s_ut
            gd[o, d] = s_gd
            hd[o, d] = s_hd
            tmn[o, d] = day_min if any_h else math.nan
