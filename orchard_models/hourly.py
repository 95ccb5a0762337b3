"""Hourly temperature from daily minimum/maximum, vectorised over orchards and days.

Where a gateway's hourly temperature is missing, the phenology models (which need hourly
temperature) use an idealised daily curve: a sine curve for daytime warming and a logarithmic
decay for night-time cooling (Linvill 1990, HortScience 25(1):14-16), with sunrise, sunset and
day length from the sun's declination (Spencer 1971, Search 2(5):172; Almorox et al. 2005,
Energy Conversion and Management 46:1465-1471). This is the method of chillR's
``make_hourly_temps`` / ``daylength`` (Luedeling et al. 2013), re-implemented for numpy arrays of
shape (orchard, day) so that one call covers every orchard.

Units: temperatures °C, latitude decimal degrees north, times in hours of the local day (0-24).
"""

from __future__ import annotations

import numpy as np

__all__ = ["daylength", "hourly_from_daily", "merge_hourly"]


def daylength(latitude_deg: np.ndarray | float, doy: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sunrise, sunset (hours, local solar time) and day length (hours).

    Solar declination by the Fourier series of Spencer (1971); the sunrise hour angle uses a solar
    elevation of -0.8333° (refraction and solar disc), as in Almorox et al. (2005) and chillR's
    ``daylength``. Polar days give sunrise 0, sunset 24; polar nights sunrise = sunset = 12.
    Arrays broadcast: pass latitude with shape (o, 1) and doy with shape (d,) for an (o, d) result.
    """
    lat = np.asarray(latitude_deg, dtype=np.float64)
    jd = np.asarray(doy, dtype=np.float64)
    gamma = 2.0 * np.pi / 365.0 * (jd - 1.0)
    delta = (0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
             + 0.000907 * np.sin(2 * gamma) - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma))
    phi = np.deg2rad(lat)
    cos_wo = (np.sin(np.deg2rad(-0.8333)) - np.sin(phi) * np.sin(delta)) / (np.cos(phi) * np.cos(delta))
    wo_h = np.arccos(np.clip(cos_wo, -1.0, 1.0)) / np.deg2rad(15.0)  # half day length, hours
    sunrise = 12.0 - wo_h
    sunset = 12.0 + wo_h
    return sunrise, sunset, sunset - sunrise


def hourly_from_daily(tmin_c: np.ndarray, tmax_c: np.ndarray, latitude_deg: np.ndarray,
                      doy: np.ndarray) -> np.ndarray:
    """Hourly temperatures (°C), shape (orchard, day, 24), from daily Tmin/Tmax (°C), shape (orchard, day).

    ``latitude_deg`` has shape (orchard,), ``doy`` (day of year, 1-366) shape (day,). Hour h is the
    clock hour h:00 of the local day. Linvill (1990) as in chillR ``make_hourly_temps``:

    * sunrise < h <= sunset: ``Tmin + (Tmax - Tmin) * sin(pi * (h - sunrise) / (daylength + 4))``;
    * after sunset: log decay from the sunset temperature to the next day's Tmin,
      ``Tsunset - (Tsunset - Tmin_next) / ln(24 - (sunset - sunrise_next) + 1) * ln(h - sunset + 1)``;
    * before sunrise: the same decay continuing from the previous evening.

    Hours before the first sunrise and after the last sunset, which need days outside the array,
    take that day's Tmin (chillR's choice). A NaN in Tmin or Tmax makes the affected hours NaN.
    """
    tmin = np.asarray(tmin_c, dtype=np.float64)
    tmax = np.asarray(tmax_c, dtype=np.float64)
    n_o, n_d = tmin.shape
    lat = np.asarray(latitude_deg, dtype=np.float64).reshape(-1, 1)
    jd = np.asarray(doy, dtype=np.float64).reshape(1, -1)
    # day d-1 and d+1 for the whole axis (one extra day each side, as chillR does)
    jd_ext = np.concatenate([jd[:, :1] - 1.0, jd, jd[:, -1:] + 1.0], axis=1)
    rise_e, set_e, dl_e = daylength(lat, jd_ext)
    rise_e = np.broadcast_to(rise_e, (n_o, n_d + 2))
    set_e = np.broadcast_to(set_e, (n_o, n_d + 2))
    dl_e = np.broadcast_to(dl_e, (n_o, n_d + 2))
    rise, sset, dl = rise_e[:, 1:-1], set_e[:, 1:-1], dl_e[:, 1:-1]
    prev_set = set_e[:, :-2]
    next_rise = rise_e[:, 2:]

    prev_max = np.concatenate([np.full((n_o, 1), np.nan), tmax[:, :-1]], axis=1)
    prev_min = np.concatenate([np.full((n_o, 1), np.nan), tmin[:, :-1]], axis=1)
    next_min = np.concatenate([tmin[:, 1:], np.full((n_o, 1), np.nan)], axis=1)
    amp = np.sin(np.pi * dl / (dl + 4.0))
    t_sunset = tmin + (tmax - tmin) * amp
    prev_t_sunset = prev_min + (prev_max - prev_min) * amp  # chillR uses the current day's length here

    out = np.empty((n_o, n_d, 24), dtype=np.float64)
    morn_den = np.log(np.maximum(1.0, 24.0 - (prev_set - rise)))
    eve_den = np.log(24.0 - (sset - next_rise) + 1.0)
    for h in range(24):
        morning = h <= rise
        day = (h > rise) & (h <= sset)
        evening = h >= sset
        v_m = prev_t_sunset - (prev_t_sunset - tmin) / morn_den * np.log(h + 24.0 - prev_set + 1.0)
        v_d = tmin + (tmax - tmin) * np.sin(np.pi * (h - rise) / (dl + 4.0))
        v_e = t_sunset - (t_sunset - next_min) / eve_den * np.log(np.maximum(h - sset, 0.0) + 1.0)
        v = np.where(morning, v_m, np.where(day, v_d, np.nan))
        v = np.where(evening, v_e, v)
        # edges (first morning, last evening) have no neighbour day: chillR fills with Tmin
        v[:, 0] = np.where(morning[:, 0], tmin[:, 0], v[:, 0])
        v[:, -1] = np.where(evening[:, -1], tmin[:, -1], v[:, -1])
        out[:, :, h] = v
    # a NaN neighbour (gap) only spoils the hours that depend on it; those use the day's own curve end
    bad = np.isnan(out) & ~np.isnan(tmin)[:, :, None] & ~np.isnan(tmax)[:, :, None]
    if bad.any():
        fallback = np.broadcast_to(tmin[:, :, None], out.shape)
        out[bad] = fallback[bad]
    return out


def merge_hourly(observed: np.ndarray | None, reconstructed: np.ndarray) -> np.ndarray:
    """Observed hourly temperature where present, the reconstruction elsewhere (same shapes)."""
    if observed is None:
        return reconstructed
    return np.where(np.isnan(observed), reconstructed, observed)
