"""Wushan climate normals and textbook physics shared by the daily history and the 5-minute sensors.

All temperatures in °C, elevations in m, rain in mm, radiation in MJ m⁻² day⁻¹ or W/m², vapour
pressure in kPa. Day of year (``doy``) is 1-based. The normals are *assumptions* drawn from the
public climate summaries of Wushan county (north-subtropical monsoon, Three Gorges): about 5 °C
mean in January and 28 °C in July at 400 m, about 1,100 mm of rain a year with a May-September
maximum, humid (RH mostly 70-85 %).
"""

from __future__ import annotations

import numpy as np

#: Reference elevation of the normals, m.
REF_ELEVATION_M = 400.0
#: Environmental lapse rate, °C per m (0.6 °C / 100 m; mountain average).
LAPSE_C_PER_M = 0.006
#: Annual mean air temperature at the reference elevation, °C.
ANNUAL_MEAN_C = 16.5
#: Half the difference between the warmest and coldest monthly means, °C (Jan ≈ 5, Jul ≈ 28).
ANNUAL_AMPLITUDE_C = 11.5
#: Day of year of the warmest day (about 19 July).
WARMEST_DOY = 200.0

#: Mean monthly rain, mm (Jan..Dec), about 1,130 mm a year (assumption from county summaries).
MONTHLY_RAIN_MM = np.array([15, 25, 50, 95, 150, 170, 190, 150, 130, 90, 45, 18], dtype=float)
#: Probability that a day is wet (≥ 0.1 mm) in each month (Jan..Dec), assumption.
MONTHLY_WET_P = np.array([0.22, 0.27, 0.35, 0.42, 0.45, 0.47, 0.42, 0.38, 0.42, 0.40, 0.30, 0.22])
_MONTH_DAYS = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_MONTH_MID_DOY = np.cumsum(_MONTH_DAYS) - _MONTH_DAYS / 2


def mean_temp_c(doy: np.ndarray | float, elevation_m: np.ndarray | float) -> np.ndarray:
    """Climatological daily mean air temperature, °C, by day of year and elevation (lapse 0.6 °C/100 m)."""
    doy = np.asarray(doy, dtype=float)
    seasonal = ANNUAL_MEAN_C + ANNUAL_AMPLITUDE_C * np.cos(2 * np.pi * (doy - WARMEST_DOY) / 365.25)
    return seasonal - LAPSE_C_PER_M * (np.asarray(elevation_m, dtype=float) - REF_ELEVATION_M)


def diurnal_range_c(doy: np.ndarray | float) -> np.ndarray:
    """Climatological diurnal temperature range (Tmax - Tmin) on a dry day, °C: widest in spring."""
    doy = np.asarray(doy, dtype=float)
    return 8.5 + 1.5 * np.cos(2 * np.pi * (doy - 100.0) / 365.25)


def _monthly_interp(doy: np.ndarray, monthly: np.ndarray) -> np.ndarray:
    """Smoothly interpolate a Jan..Dec table to days of year (periodic)."""
    x = np.concatenate([_MONTH_MID_DOY - 365.25, _MONTH_MID_DOY, _MONTH_MID_DOY + 365.25])
    y = np.concatenate([monthly, monthly, monthly])
    return np.interp(doy, x, y)


def wet_day_probability(doy: np.ndarray) -> np.ndarray:
    """Climatological probability that a day is wet, by day of year."""
    return _monthly_interp(np.asarray(doy, dtype=float), MONTHLY_WET_P)


def mean_wet_day_rain_mm(doy: np.ndarray) -> np.ndarray:
    """Mean rain on a wet day, mm (monthly total / (days x wet-day probability))."""
    per_wet_day = MONTHLY_RAIN_MM / (_MONTH_DAYS * MONTHLY_WET_P)
    return _monthly_interp(np.asarray(doy, dtype=float), per_wet_day)


def solar_declination_rad(doy: np.ndarray | float) -> np.ndarray:
    """Solar declination, rad (FAO-56, Allen et al. 1998, eq. 24)."""
    return 0.409 * np.sin(2 * np.pi * np.asarray(doy, dtype=float) / 365 - 1.39)


def extraterrestrial_radiation_mj(doy: np.ndarray | float, lat_deg: np.ndarray | float) -> np.ndarray:
    """Daily extraterrestrial radiation Ra, MJ m⁻² day⁻¹ (FAO-56 eq. 21)."""
    doy = np.asarray(doy, dtype=float)
    phi = np.radians(np.asarray(lat_deg, dtype=float))
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    delta = solar_declination_rad(doy)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    return (24 * 60 / np.pi) * 0.0820 * dr * (ws * np.sin(phi) * np.sin(delta)
                                              + np.cos(phi) * np.cos(delta) * np.sin(ws))


def hargreaves_et0_mm(tmin_c: np.ndarray, tmax_c: np.ndarray, ra_mj: np.ndarray) -> np.ndarray:
    """Reference evapotranspiration ET0, mm/day (Hargreaves & Samani 1985; FAO-56 eq. 52)."""
    tmean = (tmin_c + tmax_c) / 2
    dtr = np.sqrt(np.maximum(tmax_c - tmin_c, 0.0))
    return np.maximum(0.0, 0.0023 * 0.408 * ra_mj * (tmean + 17.8) * dtr)


def sat_vapour_pressure_kpa(t_c: np.ndarray | float) -> np.ndarray:
    """Saturation vapour pressure, kPa (Tetens; FAO-56 eq. 11)."""
    t = np.asarray(t_c, dtype=float)
    return 0.6108 * np.exp(17.27 * t / (t + 237.3))


def sun_elevation_sin(doy: np.ndarray | float, solar_hour: np.ndarray | float,
                      lat_deg: np.ndarray | float) -> np.ndarray:
    """Sine of the sun's elevation angle for local solar time ``solar_hour`` (0-24 h)."""
    phi = np.radians(np.asarray(lat_deg, dtype=float))
    delta = solar_declination_rad(doy)
    h = np.radians(15.0 * (np.asarray(solar_hour, dtype=float) - 12.0))
    return np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(h)


def diurnal_shape(solar_hour: np.ndarray | float) -> np.ndarray:
    """Diurnal temperature shape in [-1, 1]: minimum near 05:30, maximum near 14:30 solar time.

    A two-piece cosine (rise 05:30 -> 14:30, fall 14:30 -> 05:30), the usual sinusoidal day /
    smooth night approximation (cf. Parton & Logan 1981) without the exponential night tail.
    """
    h = np.mod(np.asarray(solar_hour, dtype=float), 24.0)
    t_min, t_max = 5.5, 14.5
    rise = (h >= t_min) & (h < t_max)
    frac_rise = (h - t_min) / (t_max - t_min)
    since_max = np.mod(h - t_max, 24.0)
    frac_fall = since_max / (24.0 - (t_max - t_min))
    return np.where(rise, -np.cos(np.pi * frac_rise), np.cos(np.pi * frac_fall))
