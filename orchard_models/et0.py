"""Reference evapotranspiration ET0 (mm/day) per orchard and day, shape (orchard, day).

* FAO-56 Penman-Monteith (Allen, Pereira, Raes & Smith 1998, FAO Irrigation and Drainage Paper 56,
  eq. 6), computed by ``pyet`` (Vremec, Collenteur & Birk 2024, Geosci. Model Dev. 17:7083-7103;
  ``pyet.pm_fao56``: net radiation from measured solar radiation with albedo 0.23 and FAO-56 eq. 39
  long-wave, psychrometric constant from the elevation, actual vapour pressure from the daily mean
  relative humidity, FAO-56 eq. 19, or from its max and min, eq. 17) -- used on every orchard-day
  where air humidity, wind speed (2 m) and solar radiation are all measured (the gateways carry
  those sensors).
* Hargreaves (Hargreaves & Samani 1985; FAO-56 eq. 52) from Tmin/Tmax and extraterrestrial
  radiation only: the fallback on every other orchard-day (FAO-56 ch. 3 recommends it when
  humidity, wind or radiation are missing).
"""

from __future__ import annotations

import numpy as np

__all__ = ["extraterrestrial_radiation_mm", "hargreaves_et0_mm", "penman_monteith_et0_mm", "reference_et0_mm"]


def extraterrestrial_radiation_mm(latitude_deg: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Extraterrestrial radiation Ra as evaporation equivalent, mm/day (FAO-56 eqs. 21-25; x 0.408), (o, d)."""
    phi = np.deg2rad(np.asarray(latitude_deg, dtype=np.float64)).reshape(-1, 1)
    j = np.asarray(doy, dtype=np.float64).reshape(1, -1)
    dr = 1 + 0.033 * np.cos(2 * np.pi / 365 * j)
    dec = 0.409 * np.sin(2 * np.pi / 365 * j - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(dec), -1.0, 1.0))
    ra = 24 * 60 / np.pi * 0.0820 * dr * (ws * np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.sin(ws))
    return 0.408 * ra


def hargreaves_et0_mm(tmin_c: np.ndarray, tmax_c: np.ndarray, latitude_deg: np.ndarray, doy: np.ndarray
                      ) -> np.ndarray:
    """Hargreaves ET0, mm/day: ``0.0023 (T + 17.8) sqrt(Tmax - Tmin) Ra`` (FAO-56 eq. 52), (o, d); NaN -> NaN."""
    tmin = np.asarray(tmin_c, dtype=np.float64)
    tmax = np.asarray(tmax_c, dtype=np.float64)
    ra = extraterrestrial_radiation_mm(latitude_deg, doy)
    et0 = 0.0023 * ((tmin + tmax) / 2.0 + 17.8) * np.sqrt(np.clip(tmax - tmin, 0.0, None)) * ra
    return np.clip(et0, 0.0, None)


def penman_monteith_et0_mm(tmin_c: np.ndarray, tmax_c: np.ndarray, wind2_ms: np.ndarray, solar_mj_m2: np.ndarray,
                           latitude_deg: np.ndarray, elevation_m: np.ndarray, dates: np.ndarray, *,
                           rh_pct: np.ndarray | None = None, rh_max_pct: np.ndarray | None = None,
                           rh_min_pct: np.ndarray | None = None) -> np.ndarray:
    """FAO-56 Penman-Monteith ET0 (mm/day) by ``pyet.pm_fao56``, arrays (orchard, day).

    Parameters: daily air temperature extremes ``tmin_c``/``tmax_c`` (°C), mean wind speed at 2 m
    ``wind2_ms`` (m/s), incoming solar radiation ``solar_mj_m2`` (MJ m⁻² d⁻¹), latitude (degrees
    north) and elevation (m) per orchard, ``dates`` (day,) numpy datetime64 (day of year for the
    extraterrestrial and clear-sky radiation), and either the daily mean relative humidity ``rh_pct``
    (%) or its maximum and minimum (%). NaN inputs give NaN.
    """
    import pyet
    import xarray as xr

    tmin = np.asarray(tmin_c, dtype=np.float64)
    time = np.asarray(dates, dtype="datetime64[ns]")

    def da(a: np.ndarray) -> xr.DataArray:
        return xr.DataArray(np.asarray(a, dtype=np.float64).reshape(tmin.shape), dims=("orchard", "time"),
                            coords={"time": time})

    n_o = tmin.shape[0]
    lat = xr.DataArray(np.deg2rad(np.asarray(latitude_deg, dtype=np.float64).reshape(n_o)), dims=("orchard",))
    elev = xr.DataArray(np.asarray(elevation_m, dtype=np.float64).reshape(n_o), dims=("orchard",))
    tn, tx = da(tmin), da(tmax_c)
    hum: dict[str, xr.DataArray] = ({"rh": da(rh_pct)} if rh_pct is not None else
                                    {"rhmax": da(rh_max_pct), "rhmin": da(rh_min_pct)})  # type: ignore[arg-type]
    with np.errstate(invalid="ignore"):
        et0 = pyet.pm_fao56((tn + tx) / 2.0, da(wind2_ms), rs=da(solar_mj_m2), tmax=tx, tmin=tn,
                            elevation=elev, lat=lat, **hum)
    return np.asarray(et0.transpose("orchard", "time").values, dtype=np.float64)


def reference_et0_mm(tmin_c: np.ndarray, tmax_c: np.ndarray, latitude_deg: np.ndarray, doy: np.ndarray, *,
                     dates: np.ndarray | None = None, rh_pct: np.ndarray | None = None,
                     wind2_ms: np.ndarray | None = None, solar_mj_m2: np.ndarray | None = None,
                     elevation_m: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ET0 mm/day, Penman-Monteith used) per orchard-day, shape (o, d): FAO-56 Penman-Monteith where
    humidity, wind and radiation are all measured (and ``dates``/``elevation_m`` are given),
    Hargreaves elsewhere. NaN temperatures give NaN."""
    hg = hargreaves_et0_mm(tmin_c, tmax_c, latitude_deg, doy)
    if rh_pct is None or wind2_ms is None or solar_mj_m2 is None or dates is None or elevation_m is None:
        return hg, np.zeros(hg.shape, dtype=bool)
    rh = np.asarray(rh_pct, dtype=np.float64)
    u2 = np.asarray(wind2_ms, dtype=np.float64)
    rs = np.asarray(solar_mj_m2, dtype=np.float64)
    measured = np.isfinite(rh) & np.isfinite(u2) & np.isfinite(rs) & np.isfinite(hg)
    if not measured.any():
        return hg, measured
    pm = penman_monteith_et0_mm(tmin_c, tmax_c, u2, rs, latitude_deg, elevation_m, dates, rh_pct=rh)
    measured &= np.isfinite(pm)
    return np.where(measured, pm, hg), measured
