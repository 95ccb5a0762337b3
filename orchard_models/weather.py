"""One season's daily weather per orchard as numpy arrays, gap filling and climatology.

A *season* is named by its harvest year S and runs from 1 October of S-1 to 30 September of S
(local dates, Asia/Shanghai): chill accumulates from 1 November, bloom is in March, harvest in
July-August. Day index 0 is 1 October of S-1. Arrays have shape (orchard, day) with NaN for gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

__all__ = ["SeasonWeather", "chill_start_day", "default_climate", "fill_gaps", "season_days", "season_start"]

METRIC_FIELDS = ("tmin_c", "tmax_c", "rain_mm", "soil_vwc", "leaf_wet_h", "rh_pct")


def season_start(season: int) -> date:
    """First local date of season ``season`` (1 October of the previous year)."""
    return date(season - 1, 10, 1)


def season_days(season: int) -> int:
    """Number of days in season ``season`` (365 or 366)."""
    return (date(season, 10, 1) - season_start(season)).days


def chill_start_day(season: int) -> int:
    """Day index of 1 November, when chill accumulation starts (chillR's usual Start_JDay 305)."""
    return (date(season - 1, 11, 1) - season_start(season)).days


def day_of_year(season: int, n_days: int | None = None) -> np.ndarray:
    """Day of year (1-366) of each day index of the season."""
    s = season_start(season)
    n = season_days(season) if n_days is None else n_days
    return np.array([(s + timedelta(days=i)).timetuple().tm_yday for i in range(n)], dtype=np.int32)


@dataclass
class SeasonWeather:
    """Daily weather of one season per orchard; every array has shape (orchard, day), NaN = no data.

    tmin_c/tmax_c: daily air temperature extremes, °C; rain_mm: daily rain, mm; soil_vwc: mean
    volumetric soil water content at 10 cm, m³/m³; leaf_wet_h: hours of leaf wetness in the day, h;
    rh_pct: mean relative humidity, %. Optional (None = not measured): ``wind_ms`` mean wind speed
    at 2 m, m/s; ``solar_mj_m2`` incoming solar radiation, MJ m⁻² d⁻¹ (with rh_pct they allow FAO-56
    Penman-Monteith ET0, :mod:`orchard_models.et0`). ``hourly_temp_c`` (orchard, day, 24), °C, optional: measured
    hourly air temperature where present (NaN elsewhere); reconstruction fills the rest.
    """

    season: int
    tmin_c: np.ndarray
    tmax_c: np.ndarray
    rain_mm: np.ndarray
    soil_vwc: np.ndarray
    leaf_wet_h: np.ndarray
    rh_pct: np.ndarray
    hourly_temp_c: np.ndarray | None = None
    wind_ms: np.ndarray | None = None
    solar_mj_m2: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def n_orchards(self) -> int:
        return int(self.tmin_c.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.tmin_c.shape[1])

    def subset(self, idx: slice | np.ndarray) -> SeasonWeather:
        """The same season for a subset of orchards (rows)."""
        kw = {f: getattr(self, f)[idx] for f in METRIC_FIELDS}
        opt: dict[str, Any] = {f: None if getattr(self, f) is None else getattr(self, f)[idx]
                               for f in ("hourly_temp_c", "wind_ms", "solar_mj_m2")}
        return replace(self, **opt, **kw)

    def coverage(self, upto_day: int | None = None) -> float:
        """Share of orchard-days with both Tmin and Tmax up to ``upto_day`` (exclusive)."""
        a = self.tmin_c[:, :upto_day]
        b = self.tmax_c[:, :upto_day]
        if a.size == 0:
            return 0.0
        return float(np.mean(~np.isnan(a) & ~np.isnan(b)))


def default_climate(elevation_m: np.ndarray, season: int, n_days: int | None = None) -> dict[str, np.ndarray]:
    """A smooth default climate for Wushan orchards (*assumption*, used only without any history).

    Daily mean air temperature follows an annual sine with its minimum in mid-January: about 5 °C
    (January) to 27 °C (late July) at 500 m, minus 0.6 °C per 100 m of elevation (a standard
    environmental lapse rate); diurnal range 8 °C. Soil water 0.28 m³/m³, 4 h leaf wetness,
    3 mm rain a day, RH 75 %. Shapes (orchard, day).
    """
    doy = day_of_year(season, n_days).astype(np.float64)
    elev = np.asarray(elevation_m, dtype=np.float64).reshape(-1, 1)
    mean = 16.0 - 11.0 * np.cos(2 * np.pi * (doy - 15.0) / 365.25)[None, :] - 0.006 * (elev - 500.0)
    n_o, n_d = elev.shape[0], doy.shape[0]
    return {
        "tmin_c": mean - 4.0, "tmax_c": mean + 4.0,
        "rain_mm": np.full((n_o, n_d), 3.0), "soil_vwc": np.full((n_o, n_d), 0.28),
        "leaf_wet_h": np.full((n_o, n_d), 4.0), "rh_pct": np.full((n_o, n_d), 75.0),
    }


def _col_median(v: np.ndarray) -> np.ndarray:
    """Median of each column ignoring NaN (fast path for complete columns); NaN where a column is empty."""
    nan = np.isnan(v)
    bad = nan.any(axis=0)
    out = np.empty(v.shape[1])
    if (~bad).any():
        out[~bad] = np.median(v[:, ~bad], axis=0)
    if bad.any():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[bad] = np.nanmedian(v[:, bad], axis=0)
    return out


def fill_gaps(values: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    """Fill NaN gaps in an (orchard, day) array.

    Anomaly method: each orchard's mean offset from the day-by-day median is estimated; a missing
    day takes the median of that day's offset-corrected values of the orchards that reported plus the
    orchard's own offset (so a high orchard stays colder than the county). Days on which no orchard
    reported are filled by linear interpolation in time; anything still missing (an orchard or a
    season without data) takes ``fallback`` (same shape) or stays NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    gaps = np.isnan(v)
    if not gaps.any():
        return v.copy()
    out = v.copy()
    import warnings

    def interp(level: np.ndarray) -> np.ndarray:
        ok = ~np.isnan(level)
        if ok.any() and not ok.all():
            x = np.arange(level.size)
            level = np.interp(x, x[ok], level[ok])
        return level

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level = interp(_col_median(v))
        # alternate: offsets given the day levels, day levels from offset-corrected values, so
        # that which orchards happened to report on a day does not move its level
        for _ in range(3):
            offset = np.nanmean(v - level[None, :], axis=1)     # (o,)
            offset = np.where(np.isnan(offset), 0.0, offset)
            level = interp(_col_median(v - offset[:, None]))
    est = level[None, :] + offset[:, None]
    out[gaps] = est[gaps]
    if fallback is not None:
        still = np.isnan(out)
        out[still] = np.asarray(fallback, dtype=np.float64)[still]
    return out
