"""All sensors of all gateways for one local day, computed in time blocks (vectorised over gateways).

``DayModel(cache, day, interval_s).block(k0, k1)`` returns the readings of samples ``k0..k1-1``
(sample ``k`` is taken at local midnight + ``k x interval_s``) as arrays of shape (n_gateways, k1-k0)
for every metric of :data:`registry.metrics.METRICS` and the health values ``battery_v`` (V) and
``rssi_dbm`` (dBm). Units are those of the metric catalogue. Values are clipped to the sensors'
physical ranges (faults that break the ranges are added later, in :mod:`sim_sensors.faults`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from registry.metrics import GATEWAY_METRICS as METRICS
from registry.metrics import HEALTH_METRICS
from sim_sensors import soil, weather
from sim_sensors.weather import LOCAL_UTC_OFFSET_S, DayDrivers, SeasonCache

#: wire order of values in a sample: the readings, then the health values
SAMPLE_KEYS: tuple[str, ...] = (*METRICS, *HEALTH_METRICS)
READING_KEYS: tuple[str, ...] = tuple(METRICS)


def local_midnight_epoch(day: dt.date) -> int:
    """Unix seconds of 00:00 Asia/Shanghai on ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) - LOCAL_UTC_OFFSET_S


@dataclass
class Block:
    times: np.ndarray                 #: (m,) Unix seconds (nominal, before clock faults)
    values: dict[str, np.ndarray]     #: key -> (n, m) float64


class DayModel:
    """Sensor physics of one local day for the cache's fleet (see module docstring)."""

    def __init__(self, cache: SeasonCache, day: dt.date, interval_s: int = 300):
        if interval_s <= 0 or 86400 % interval_s:
            raise ValueError("interval_s must divide a day (86,400 s)")
        self.cache = cache
        self.fleet = cache.fleet
        self.day = day
        self.interval_s = interval_s
        self.samples = 86400 // interval_s
        self.t0 = local_midnight_epoch(day)
        self.doy = day.timetuple().tm_yday
        self.d: DayDrivers = weather.day_drivers(cache, day)
        # whole-day rain and what depends on its history (n, samples)
        hours = np.arange(self.samples + 1) * interval_s / 3600.0 - interval_s / 3600.0
        self.rain = weather.rain_profile(self.d, hours)
        day_total = np.maximum(self.rain.sum(axis=1, keepdims=True), 1e-9)
        self.rain_frac = np.cumsum(self.rain, axis=1) / day_total
        k = np.arange(self.samples)[None, :]
        last = np.maximum.accumulate(np.where(self.rain > 0, k, -10**6), axis=1)
        self.hours_since_rain = np.where(last >= 0, (k - last) * interval_s / 3600.0, 99.0)

    def times(self, k0: int, k1: int) -> np.ndarray:
        return self.t0 + np.arange(k0, k1, dtype=np.int64) * self.interval_s

    def block(self, k0: int, k1: int) -> Block:
        d, f = self.d, self.fleet
        n, m = f.n, k1 - k0
        g = np.random.default_rng([f.seed, self.day.toordinal(), k0, self.interval_s, 13])
        z = g.standard_normal((8, n, m))
        local_h = np.arange(k0, k1) * self.interval_s / 3600.0
        sh = weather.solar_hour(np.broadcast_to(local_h, (n, m)), f.lon)
        rain = self.rain[:, k0:k1]
        raining = rain > 0
        air = weather.air_temp_c(d, sh) + 0.15 * z[0]
        rh = weather.rel_humidity_pct(d.tdew[:, None], air + 0.15 * z[1], raining)
        ghi, sin_e = weather.solar_wm2(d, self.doy, sh, f.lat, z[2], raining)
        leaf = weather.leaf_wetness_pct(rh, self.hours_since_rain[:, k0:k1], sin_e)
        v10, v30 = soil.soil_vwc(d, local_h / 24.0, self.rain_frac[:, k0:k1])
        t10 = soil.soil_temp_c(d, sh, 10.0) + 0.05 * z[3]
        t30 = soil.soil_temp_c(d, sh, 30.0) + 0.03 * z[3]
        wind = weather.wind_ms(d, sh, z[4])
        # battery: solar charging by day, slow drain by night (Li-ion 3.55-4.15 V over 0-100 % SoC)
        charge = np.clip((sh - 7.0) / 8.0, 0.0, 1.0) * (1.0 - 0.6 * d.cloud[:, None])
        soc = np.clip(f.soc_base[:, None] + 0.12 * charge - 0.06 * local_h[None, :] / 24.0, 0.0, 1.0)
        battery = 3.55 + 0.6 * soc + 0.004 * z[5]
        rssi = np.round(f.rssi_base_dbm[:, None] + 2.5 * z[6] - 1.5 * raining)
        vals = {
            "air_temp_c": air, "air_rh_pct": rh, "soil_vwc_10cm": v10 + 0.0015 * z[7],
            "soil_vwc_30cm": v30 + 0.001 * z[7], "soil_temp_10cm_c": t10, "soil_temp_30cm_c": t30,
            "rain_mm": rain, "leaf_wetness_pct": leaf, "solar_wm2": ghi, "wind_ms": wind,
            "battery_v": battery, "rssi_dbm": rssi,
        }
        for key, arr in vals.items():
            spec = METRICS.get(key) or HEALTH_METRICS[key]
            vals[key] = np.clip(arr, spec.lo, spec.hi)
        return Block(self.times(k0, k1), vals)
