"""Faults a real orchard network has, injected deterministically per seed.

Per gateway and day (rates are probabilities; all configurable in :class:`FaultConfig`):

- **offline**: the uplink is down for some hours (poor mountain coverage, 网络不畅); the gateway
  keeps measuring, buffers, and on reconnection uploads the whole buffer late, in one message, in
  shuffled order. A buffer still held at midnight is uploaded at the end of the day.
- **dead battery**: the battery sags below 3.4 V over about two hours and the gateway falls silent
  for the rest of the day (samples after that are never measured nor sent).
- **clock skew**: a fixed offset of up to ``skew_max_s`` seconds (gateway RTC drift), so timestamps
  sit off the 5-minute grid; always within ingest's 10-minute future tolerance.
- **clock jump**: after an NTP resync the clock steps back by 10-60 minutes (whole 5-minute steps, at
  most an hour, never across midnight), so at a 5-minute interval the next samples
  reuse timestamps already sent **with different values**. Each such reading collides on
  (device, metric, time) with an earlier one: the ledger counts it as a duplicate (the first stored
  wins; ingest keeps one row, ``ON CONFLICT DO NOTHING``).

Per sensor (gateway x metric) and day:

- **stuck**: the sensor repeats one value for some hours (valid, just wrong).

Per reading:

- **spike**: a plausible but wrong value inside the physical range (valid; ingest cannot tell);
- **invalid**: a physically impossible value outside ``registry.metrics`` ranges, or NaN
  (``invalid_nan_share`` of them); ingest must dead-letter exactly these;
- **missing**: the sensor did not answer; the key is left out of the sample (not counted as sent).

Per message (in :mod:`sim_sensors.replay`): **duplicate** re-sends of an identical payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from registry.metrics import GATEWAY_METRICS as METRICS
from sim_sensors.fleet import Fleet, stable_key
from sim_sensors.sensors import SAMPLE_KEYS, Block

N_READ = len(METRICS)
BATTERY = SAMPLE_KEYS.index("battery_v")


@dataclass
class FaultConfig:
    """Fault rates (probabilities) and sizes. ``FaultConfig()`` is a realistic field; ``none()`` is clean."""

    offline_prob: float = 0.04                 #: per gateway-day
    offline_hours: tuple[float, float] = (1.0, 10.0)
    dead_battery_prob: float = 0.002           #: per gateway-day
    skew_prob: float = 0.05                    #: per gateway (fixed offset)
    skew_max_s: int = 240
    clock_jump_prob: float = 0.004             #: per gateway-day
    clock_jump_steps: tuple[int, int] = (2, 12)  #: size of a jump in 5-minute steps
    stuck_prob: float = 0.004                  #: per sensor-day
    stuck_hours: tuple[float, float] = (2.0, 12.0)
    spike_prob: float = 2e-4                   #: per reading, in-range wrong value
    invalid_prob: float = 1e-4                 #: per reading, impossible value
    invalid_nan_share: float = 0.25            #: share of invalid readings sent as NaN
    missing_prob: float = 5e-4                 #: per reading, omitted
    duplicate_prob: float = 0.01               #: per message, identical re-send
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def none(cls) -> FaultConfig:
        """No faults at all."""
        zero = {f.name: 0.0 for f in fields(cls) if f.name.endswith("_prob")}
        return cls(**zero)  # type: ignore[arg-type]


@dataclass
class FaultedBlock:
    """A block of samples after faults (n gateways x m samples)."""

    times: np.ndarray          #: (n, m) int64 Unix seconds as the gateway stamps them
    values: np.ndarray         #: (n, m, len(SAMPLE_KEYS)) float64; NaN where missing or invalid-NaN
    present: np.ndarray        #: (n, m) bool: the sample exists (gateway alive)
    offline: np.ndarray        #: (n, m) bool: measured while the uplink was down (buffered)
    invalid: np.ndarray        #: (n, m, N_READ) bool: reading outside physical range or NaN
    missing: np.ndarray        #: (n, m, len(SAMPLE_KEYS)) bool: value omitted
    special: np.ndarray        #: (n, m) bool: sample has a missing or NaN value (needs the slow encoder)


class DayFaults:
    """The fault plan of one day for a fleet (see module docstring)."""

    def __init__(self, fleet: Fleet, day_ordinal: int, samples: int, interval_s: int, config: FaultConfig,
                 seed: int):
        self.cfg = config
        self.samples = samples
        self.interval_s = interval_s
        self.seed = seed
        self.day_ordinal = day_ordinal
        n = fleet.n
        g = np.random.default_rng([seed, day_ordinal, 31])
        u = g.random((10, n))
        spd = 86400 / interval_s / 24.0                      # samples per hour
        # offline window [off_a, off_b) in samples
        has_off = u[0] < config.offline_prob
        lo, hi = config.offline_hours
        dur = np.round((lo + (hi - lo) * u[1]) * spd).astype(int)
        start = (u[2] * samples).astype(int)
        self.off_a = np.where(has_off, start, samples)
        self.off_b = np.where(has_off, np.minimum(start + dur, samples + 1), samples)
        # dead battery from sample dead_at
        dead = u[3] < config.dead_battery_prob
        self.dead_at = np.where(dead, (samples * (0.2 + 0.75 * u[4])).astype(int), samples + 1)
        # clock jump at sample jump_at, jump_s seconds back (a time, whatever the sample interval)
        jump = u[5] < config.clock_jump_prob
        jlo, jhi = config.clock_jump_steps
        self.jump_at = np.where(jump, (samples * (0.1 + 0.8 * u[6])).astype(int), samples + 1)
        self.jump_s = np.where(jump, 300 * (jlo + (u[7] * (jhi - jlo + 1)).astype(int)), 0)
        # fixed skew per gateway (not per day)
        self.skew = np.zeros(n, dtype=np.int64)
        for i, dev in enumerate(fleet.device_ids):
            gd = np.random.default_rng([seed, stable_key(dev), 32])
            a, b = gd.random(2)
            if a < config.skew_prob:
                self.skew[i] = round((2 * b - 1) * config.skew_max_s)
        # stuck sensors: (gateway, metric) -> [a, b)
        st = g.random((n, N_READ)) < config.stuck_prob
        slo, shi = config.stuck_hours
        sa = (g.random((n, N_READ)) * samples).astype(int)
        sb = sa + np.round((slo + (shi - slo) * g.random((n, N_READ))) * spd).astype(int)
        self.stuck_a = np.where(st, sa, samples + 1)
        self.stuck_b = np.where(st, sb, samples + 1)
        self._stuck_value = np.full((n, N_READ), np.nan)
        self.jumped = np.flatnonzero(jump)

    def apply(self, block: Block, k0: int) -> FaultedBlock:
        cfg = self.cfg
        n = len(self.off_a)
        m = len(block.times)
        k = np.arange(k0, k0 + m)[None, :]
        vals = np.stack([block.values[key] for key in SAMPLE_KEYS], axis=-1)          # (n, m, K)
        g = np.random.default_rng([self.seed, self.day_ordinal, k0, 33])
        # stuck sensors hold the value of their first stuck sample
        in_stuck = (k[:, :, None] >= self.stuck_a[:, None, :]) & (k[:, :, None] < self.stuck_b[:, None, :])
        if in_stuck.any():
            gi, mi, ri = np.nonzero(in_stuck)
            for a, b, c in zip(gi.tolist(), mi.tolist(), ri.tolist(), strict=True):
                if np.isnan(self._stuck_value[a, c]):
                    self._stuck_value[a, c] = vals[a, b, c]
                vals[a, b, c] = self._stuck_value[a, c]
        # battery sag before death
        sag_n = max(1, 7200 // self.interval_s)                  # the last two hours
        to_death = self.dead_at[:, None] - k
        sag = (to_death > 0) & (to_death <= sag_n)
        vals[:, :, BATTERY] = np.where(sag, np.minimum(vals[:, :, BATTERY], 3.3 + 0.4 * to_death / sag_n),
                                       vals[:, :, BATTERY])
        # per-reading faults on the readings (not the health values)
        r = g.random((3, n, m, N_READ))
        spike = r[0] < cfg.spike_prob
        invalid = r[1] < cfg.invalid_prob
        missing_r = (r[2] < cfg.missing_prob) & ~invalid
        if spike.any() or invalid.any():
            lo = np.array([s.lo for s in METRICS.values()])
            hi = np.array([s.hi for s in METRICS.values()])
            span = hi - lo
            u = g.random((3, n, m, N_READ))
            readings = vals[:, :, :N_READ]
            # a spike jumps by 10-40 % of the sensor span, kept inside the range
            jump = (0.1 + 0.3 * u[0]) * span * np.where(u[1] < 0.5, -1, 1)
            readings = np.where(spike, np.clip(readings + jump, lo, hi), readings)
            # impossible: 20-100 % of the span beyond a limit, or NaN
            beyond = np.where(u[1] < 0.5, hi + (0.2 + 0.8 * u[2]) * span, lo - (0.2 + 0.8 * u[2]) * span)
            bad = np.where(u[0] < cfg.invalid_nan_share, np.nan, beyond)
            readings = np.where(invalid, bad, readings)
            vals[:, :, :N_READ] = readings
        missing = np.zeros(vals.shape, dtype=bool)
        missing[:, :, :N_READ] = missing_r
        vals = np.where(missing, np.nan, vals)
        special = (missing.any(axis=2)) | (invalid & np.isnan(vals[:, :, :N_READ])).any(axis=2)
        # clocks: fixed skew, and a step back after a jump
        shift = np.where(k >= self.jump_at[:, None], -self.jump_s[:, None], 0)
        times = block.times[None, :].astype(np.int64) + self.skew[:, None] + shift
        present = k < self.dead_at[:, None]
        offline = (k >= self.off_a[:, None]) & (k < self.off_b[:, None])
        return FaultedBlock(times=times, values=vals, present=present, offline=offline, invalid=invalid,
                            missing=missing, special=special)

