"""Five-minute weather at every gateway: air temperature and humidity, rain, leaf wetness, sun, wind.

The day's drivers (Tmin, Tmax, dew point, rain, soil water) come from the same seasonal process as
:mod:`sim_sensors.history`, so live readings and back-tested history share one climate. Within the
day (all vectorised over gateways):

- air temperature follows a two-piece cosine between the day's minimum (about 05:30 solar time)
  and maximum (about 14:30), continuing into the next day's minimum, so midnight has no jump;
- relative humidity comes from the day's dew point and the current temperature (Tetens);
- rain falls as one event per wet day (start random, duration 1 + 2·√(mm) hours, front-loaded
  intensity) measured by a 0.2 mm tipping bucket;
- leaf wetness (0-100 %) is 100 while raining, dries with a 1-hour time constant afterwards, and
  rises with dew when RH approaches saturation at night;
- global horizontal irradiance is the Haurwitz (1945) clear-sky model times the Kasten & Czeplak
  (1980) cloud factor, with cloud flicker on broken-cloud days;
- wind: a daily mean (log-normal around 1.6 m/s, windier higher up), an afternoon maximum and
  gusts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np

from sim_sensors import climate
from sim_sensors.fleet import Fleet
from sim_sensors.history import SCENARIO_DEFAULT, _orchards, _Season, _weather

LOCAL_UTC_OFFSET_S = 8 * 3600          #: Asia/Shanghai has no DST
TIP_MM = 0.2                           #: tipping-bucket resolution, mm


class SeasonCache:
    """Daily drivers of whole seasons for a fleet, generated on demand and kept (at most ``keep``)."""

    CHUNK = 256

    def __init__(self, fleet: Fleet, scenarios: dict[int, str] | None = None, keep: int = 2):
        self.fleet = fleet
        self.scenarios = dict(SCENARIO_DEFAULT) if scenarios is None else scenarios
        self.keep = keep
        rows = fleet.orchard_rows()
        # generated in chunks of orchards: the season model's intermediates are (orchards x days)
        # arrays, so chunking bounds peak memory; every draw is keyed per orchard, so chunks agree
        self._chunks = [_orchards(rows[a:a + self.CHUNK], fleet.seed) for a in range(0, len(rows), self.CHUNK)]
        self._cache: dict[int, _Season] = {}

    def season(self, season: int) -> _Season:
        if season not in self._cache:
            if len(self._cache) >= self.keep:
                self._cache.pop(next(iter(self._cache)))
            scen = self.scenarios.get(season, "normal")
            parts = [self._compact(_weather(o, season, scen, self.fleet.seed)) for o in self._chunks]
            first = parts[0]
            self._cache[season] = _Season(**{
                f.name: first.dates if f.name == "dates" else np.concatenate([getattr(p, f.name) for p in parts])
                for f in fields(_Season)})
        return self._cache[season]

    @staticmethod
    def _compact(s: _Season) -> _Season:
        """Keep daily drivers as float32 (ample for °C, mm and m³/m³; halves the cache)."""
        for f in fields(s):
            v = getattr(s, f.name)
            if isinstance(v, np.ndarray) and v.dtype == np.float64:
                setattr(s, f.name, v.astype(np.float32))
        return s

    def day(self, day: dt.date) -> tuple[_Season, int]:
        """The season holding ``day`` and the day's index in it (seasons run 1 Oct - 30 Sep)."""
        season = day.year + 1 if day.month >= 10 else day.year
        s = self.season(season)
        return s, (day - dt.date(season - 1, 10, 1)).days


@dataclass
class DayDrivers:
    """Daily values for each gateway (arrays of shape (n,)) for one local day."""

    day: dt.date
    tmin: np.ndarray           #: °C today
    tmax: np.ndarray           #: °C today
    tmax_prev: np.ndarray      #: °C yesterday
    tmin_next: np.ndarray      #: °C tomorrow
    tdew: np.ndarray           #: °C
    rain_mm: np.ndarray        #: today's rain, mm
    vwc10_prev: np.ndarray     #: m³/m³ at the end of yesterday
    vwc10: np.ndarray          #: m³/m³ today
    vwc30_prev: np.ndarray
    vwc30: np.ndarray
    tmean3: np.ndarray         #: mean air temperature of the last 3 days, °C (drives 10 cm soil)
    tmean7: np.ndarray         #: last 7 days, °C (drives 30 cm soil)
    cloud: np.ndarray          #: cloud fraction 0-1
    wind_mean: np.ndarray      #: m/s
    rain_start_h: np.ndarray   #: local hour the rain event starts
    rain_hours: np.ndarray     #: event duration, h


def _pick(cache: SeasonCache, day: dt.date, attr: str) -> np.ndarray:
    s, i = cache.day(day)
    return np.asarray(getattr(s, attr)[:, i], dtype=float)


def day_drivers(cache: SeasonCache, day: dt.date) -> DayDrivers:
    """Gather the drivers of ``day`` (and neighbours) for every gateway of the cache's fleet."""
    prev, nxt = day - dt.timedelta(days=1), day + dt.timedelta(days=1)
    back = [day - dt.timedelta(days=k) for k in range(7)]
    tmean = [(_pick(cache, b, "tmin") + _pick(cache, b, "tmax")) / 2 for b in back]
    rain = _pick(cache, day, "rain")
    tmin, tmax = _pick(cache, day, "tmin"), _pick(cache, day, "tmax")
    n = len(rain)
    g = np.random.default_rng([cache.fleet.seed, day.toordinal(), 12])
    u = g.random((5, n))
    dtr = tmax - tmin
    clear = climate.diurnal_range_c(float(day.timetuple().tm_yday))
    cloud = np.where(rain >= 1.0, 0.7 + 0.3 * u[0],
                     np.clip(0.85 - 0.8 * dtr / np.maximum(clear, 1.0) + 0.25 * u[0], 0.0, 0.9))
    wind = 1.6 * np.exp(0.35 * (u[1] - 0.5) * 2) * (1 + 0.0012 * (cache.fleet.elevation_m - 400.0))
    hours = np.where(rain > 0, np.minimum(20.0, 1.0 + 2.0 * np.sqrt(rain)), 0.0)
    start = u[2] * np.maximum(24.0 - hours, 0.0)
    return DayDrivers(
        day=day, tmin=tmin, tmax=tmax, tmax_prev=_pick(cache, prev, "tmax"),
        tmin_next=_pick(cache, nxt, "tmin"),
        tdew=_pick(cache, day, "tdew"), rain_mm=rain,
        vwc10_prev=_pick(cache, prev, "vwc10"), vwc10=_pick(cache, day, "vwc10"),
        vwc30_prev=_pick(cache, prev, "vwc30"), vwc30=_pick(cache, day, "vwc30"),
        tmean3=np.mean(tmean[:3], axis=0), tmean7=np.mean(tmean, axis=0),
        cloud=cloud, wind_mean=wind, rain_start_h=start, rain_hours=hours,
    )


def solar_hour(local_hour: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Local solar time, h, from Beijing time (UTC+8) and longitude (equation of time neglected)."""
    return np.mod(local_hour - 8.0 + lon_deg[:, None] / 15.0, 24.0)


def air_temp_c(d: DayDrivers, sh: np.ndarray) -> np.ndarray:
    """Air temperature, °C, at solar hours ``sh`` (n, m): continuous through midnight."""
    t_min, t_max = 5.5, 14.5
    tmin, tmax = d.tmin[:, None], d.tmax[:, None]
    rise = -np.cos(np.pi * (sh - t_min) / (t_max - t_min))                  # -1 -> 1
    fall_today = np.cos(np.pi * (sh - t_max) / (24.0 - t_max + t_min))      # 1 -> -1 (to tomorrow 05:30)
    fall_night = np.cos(np.pi * (sh + 24.0 - t_max) / (24.0 - t_max + t_min))
    morning = tmin + (d.tmax_prev[:, None] - tmin) * (1 + fall_night) / 2
    day = tmin + (tmax - tmin) * (1 + rise) / 2
    evening = d.tmin_next[:, None] + (tmax - d.tmin_next[:, None]) * (1 + fall_today) / 2
    return np.where(sh < t_min, morning, np.where(sh < t_max, day, evening))


def rain_profile(d: DayDrivers, local_hour_edges: np.ndarray) -> np.ndarray:
    """Rain per interval, mm (n, m), for intervals ending at ``local_hour_edges[1:]`` (tipping bucket).

    Intensity over the event follows a front-loaded beta(1.6, 2.6) shape; the cumulative amount is
    counted in 0.2 mm tips so intervals show 0, 0.2, 0.4 ... mm and the day's sum matches within a tip.
    """
    from scipy.special import betainc

    start, hours = d.rain_start_h[:, None], np.maximum(d.rain_hours[:, None], 1e-6)
    x = np.clip((local_hour_edges[None, :] - start) / hours, 0.0, 1.0)
    cum = d.rain_mm[:, None] * betainc(1.6, 2.6, x)
    tips = np.floor(cum / TIP_MM + 1e-9)
    return np.round(np.diff(tips, axis=1) * TIP_MM, 1)


def rel_humidity_pct(tdew: np.ndarray, t_air: np.ndarray, raining: np.ndarray) -> np.ndarray:
    """Relative humidity, %, from dew point and air temperature (Tetens); ≥ 95 % while raining."""
    rh = 100.0 * climate.sat_vapour_pressure_kpa(tdew) / climate.sat_vapour_pressure_kpa(t_air)
    rh = np.where(raining, np.maximum(rh, 95.0), rh)
    return np.clip(rh, 5.0, 100.0)


def leaf_wetness_pct(rh: np.ndarray, hours_since_rain: np.ndarray, sun_sin: np.ndarray) -> np.ndarray:
    """Leaf wetness, % of the sensor surface wet: rain (drying e-folding 1 h in sun, 3 h at night) or dew."""
    tau = np.where(sun_sin > 0.05, 1.0, 3.0)
    from_rain = 100.0 * np.exp(-hours_since_rain / tau)
    dew = 100.0 * np.clip((rh - 88.0) / 8.0, 0.0, 1.0) * (sun_sin < 0.25)
    return np.clip(np.maximum(from_rain, dew), 0.0, 100.0)


def solar_wm2(d: DayDrivers, doy: int, sh: np.ndarray, lat: np.ndarray, flicker: np.ndarray,
              raining: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global horizontal irradiance, W/m², and the sine of the sun's elevation."""
    sin_e = climate.sun_elevation_sin(doy, sh, lat[:, None])
    s = np.maximum(sin_e, 0.0)
    clear = np.where(s > 0.01, 1098.0 * s * np.exp(-0.057 / np.maximum(s, 0.01)), 0.0)   # Haurwitz 1945
    c = d.cloud[:, None]
    factor = 1.0 - 0.75 * c ** 3.4                                                     # Kasten & Czeplak 1980
    broken = 4 * c * (1 - c)                                                           # most flicker at c≈0.5
    ghi = clear * factor * np.exp(0.3 * broken * np.clip(flicker, -3.0, 1.0)) * np.where(raining, 0.35, 1.0)
    return np.clip(ghi, 0.0, 1.25 * clear), sin_e                                     # cloud-edge enhancement


def wind_ms(d: DayDrivers, sh: np.ndarray, gust: np.ndarray) -> np.ndarray:
    """Wind speed, m/s: daily mean, afternoon maximum (mixing), log-normal gusts."""
    diurnal = 0.65 + 0.7 * np.clip(np.sin(np.pi * (sh - 8.0) / 12.0), 0.0, 1.0)
    return np.clip(d.wind_mean[:, None] * diurnal * np.exp(0.3 * gust - 0.045), 0.0, 40.0)
