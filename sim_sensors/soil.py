"""Soil moisture (VWC) and soil temperature at 10 and 30 cm, at sample times.

Moisture: the daily values of the two-layer bucket in :mod:`sim_sensors.history` (end-of-day
states) are joined within the day: the 10 cm layer follows the rain as it falls (cumulative share of
the day's rain), drying evenly through dry hours; the 30 cm layer follows with a lag of about six
hours. Temperature: the classical damped, lagged diurnal wave in a uniform soil
(T(z, t) = T̄ + A₀ e^(−z/D) cos(ω t − z/D); e.g. Hillel, *Environmental Soil Physics*, ch. 12) with a
daily damping depth D ≈ 11 cm, around the running mean of air temperature (3 days at 10 cm,
7 days at 30 cm) plus the usual 1-1.5 °C excess of soil over air.
"""

from __future__ import annotations

import numpy as np

from sim_sensors.weather import DayDrivers

DAMPING_DEPTH_CM = 11.0


def soil_vwc(d: DayDrivers, frac_day: np.ndarray, rain_frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VWC at 10 and 30 cm, m³/m³; ``frac_day`` (m,) is the share of the day elapsed, ``rain_frac``
    (n, m) the share of the day's rain fallen so far."""
    wet = d.rain_mm[:, None] > 0
    prog10 = np.where(wet, 0.25 * frac_day[None, :] + 0.75 * rain_frac, frac_day[None, :])
    v10 = d.vwc10_prev[:, None] + (d.vwc10 - d.vwc10_prev)[:, None] * prog10
    lagged = np.clip(frac_day - 0.25, 0.0, 1.0) / 0.75
    v30 = d.vwc30_prev[:, None] + (d.vwc30 - d.vwc30_prev)[:, None] * lagged[None, :]
    return v10, v30


def soil_temp_c(d: DayDrivers, sh: np.ndarray, depth_cm: float) -> np.ndarray:
    """Soil temperature, °C, at ``depth_cm`` for solar hours ``sh`` (n, m)."""
    ratio = depth_cm / DAMPING_DEPTH_CM
    amp = 0.5 * (d.tmax - d.tmin)[:, None] * 0.9 * np.exp(-ratio)
    lag_h = ratio * 24.0 / (2 * np.pi)
    mean = (d.tmean3 + 1.0) if depth_cm <= 15 else (d.tmean7 + 1.5)
    return mean[:, None] + amp * np.cos(2 * np.pi * (sh - 14.5 - lag_h) / 24.0)
