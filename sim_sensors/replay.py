"""Replay simulated days as a stream of MQTT messages, with an exact ledger of what must be stored.

``replay_day(devices, day, ...)`` returns ``(messages, ledger)``: an iterator of :class:`Message`
(topic + payload, in sending order) and a :class:`Ledger` that fills as the iterator is consumed.
Generation streams in time blocks of ``samples_per_message`` samples for all gateways at once, so
memory stays bounded (a few MB for the whole fleet) whatever the day's volume.

Counting rules (the ledger is exact):

- a *reading* is one value of a :data:`registry.metrics.METRICS` metric in a sample; health values
  (``battery_v``, ``rssi_dbm``) travel in the samples but are not readings;
- an *invalid* reading is NaN or outside the metric's physical range; ingest must reject exactly these;
- a *duplicate* reading is a valid reading whose (device, metric, time) is already stored: every
  valid reading of a re-sent message, and the readings a clock jump re-stamps with an earlier time
  (different values; the first stored wins);
- ``readings_sent - duplicate_readings - invalid_readings`` rows must end up stored.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim_sensors import wire
from sim_sensors.faults import N_READ, DayFaults, FaultConfig
from sim_sensors.fleet import Fleet, make_fleet, stable_key
from sim_sensors.sensors import DayModel, local_midnight_epoch
from sim_sensors.weather import SeasonCache


@dataclass
class Message:
    topic: str
    payload: bytes
    readings: int                 #: readings (METRICS values) in the payload
    duplicate: bool               #: an identical re-send of an earlier message
    invalid_readings: int         #: readings ingest must reject (NaN / out of physical range)
    colliding_readings: int = 0   #: valid readings re-stamped onto an already-stored (device, metric, time)
    sent_at: int = 0              #: Unix seconds at which the gateway sends it (simulated clock)
    device_ids: tuple[str, ...] = ()


@dataclass
class Ledger:
    messages: int = 0
    readings_sent: int = 0
    duplicate_readings: int = 0
    invalid_readings: int = 0
    messages_duplicated: int = 0

    @property
    def expected_stored(self) -> int:
        """Readings that must end up stored: sent - duplicates - invalid."""
        return self.readings_sent - self.duplicate_readings - self.invalid_readings

    def add(self, m: Message) -> None:
        self.messages += 1
        self.readings_sent += m.readings
        self.invalid_readings += m.invalid_readings
        if m.duplicate:
            self.messages_duplicated += 1
            self.duplicate_readings += m.readings - m.invalid_readings
        else:
            self.duplicate_readings += m.colliding_readings


@dataclass
class _Sample:
    t: int
    row: list[float]
    missing: list[bool] | None
    readings: int
    invalid: int
    valid_keys: tuple[int, ...]   #: metric indexes of the valid readings (for collision tracking)
    frame: bytes = b""            #: ChirpStack: the sample's binary FRMPayload frame


class _State:
    """What gateways remember across messages and days: counters, offline buffers, stored keys."""

    def __init__(self, n: int):
        self.seq = [0] * n
        self.buffers: list[list[_Sample]] = [[] for _ in range(n)]
        self.stored: dict[int, set[tuple[int, int]]] = {}   # only for gateways whose clock jumped


class Replayer:
    """Generates the messages of consecutive days for a fleet (used by ``replay_day`` and the publisher)."""

    def __init__(self, fleet: Fleet, *, fmt: str = "native", interval_s: int = 300,
                 samples_per_message: int = 12, faults: FaultConfig | None = None, seed: int = 0,
                 topic_prefix: str = "", devices_per_message: int = 1,
                 scenarios: dict[int, str] | None = None):
        if fmt not in wire.FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {wire.FORMATS}")
        if samples_per_message < 1 or devices_per_message < 1:
            raise ValueError("samples_per_message and devices_per_message must be ≥ 1")
        self.fleet = fleet
        self.fmt = fmt
        self.interval_s = interval_s
        self.spm = samples_per_message
        self.faults = faults if faults is not None else FaultConfig.none()
        self.seed = seed
        self.prefix = topic_prefix
        self.dpm = devices_per_message if fmt == "thingsboard" else 1
        self.cache = SeasonCache(fleet, scenarios)
        self.state = _State(fleet.n)
        self.cs = wire.ChirpStackEncoder(fleet, topic_prefix) if fmt == "chirpstack" else None
        self.delay = [2 + stable_key(d) % 48 for d in fleet.device_ids]      # s from sample to send
        self._pending: list[tuple[int, Message]] = []                        # (due slot, duplicate)
        self._rng = random.Random(seed)

    # ---------------------------------------------------------------- encoding
    def _render(self, s: _Sample) -> str:
        if self.fmt == "thingsboard":
            return wire.tb_sample(s.t, s.row, s.missing)
        return wire.native_sample(s.t, s.row, s.missing)

    def _encode(self, i: int, samples: list[_Sample], sent_at: int, day_ordinal: int) -> tuple[str, bytes]:
        f = self.fleet
        seq = self.state.seq[i]
        self.state.seq[i] = seq + 1
        if self.fmt == "native":
            return wire.native_message(self.prefix, f.orchard_ids[i], f.device_ids[i], seq, sent_at,
                                       [self._render(s) for s in samples])
        if self.fmt == "chirpstack":
            assert self.cs is not None
            key = (self.seed, day_ordinal, i, seq)
            uid = (hash((*key, 1)) << 64) ^ hash((*key, 2))
            frames = b"".join(s.frame for s in samples)
            return self.cs.message(i, seq, sent_at, [(s.t, s.row, s.missing) for s in samples], uid, frames)
        return wire.thingsboard_message(self.prefix, [(f.device_ids[i], [self._render(s) for s in samples])])

    def _count(self, i: int, samples: list[_Sample]) -> tuple[int, int, int]:
        """(readings, invalid, colliding) of samples of gateway ``i``; records stored keys if tracked."""
        readings = sum(s.readings for s in samples)
        invalid = sum(s.invalid for s in samples)
        colliding = 0
        keys = self.state.stored.get(i)
        if keys is not None:
            for s in samples:
                for mi in s.valid_keys:
                    k = (mi, s.t)
                    if k in keys:
                        colliding += 1
                    else:
                        keys.add(k)
        return readings, invalid, colliding

    def _message(self, i: int, samples: list[_Sample], sent_at: int, day_ordinal: int) -> Message:
        topic, payload = self._encode(i, samples, sent_at, day_ordinal)
        r, inv, col = self._count(i, samples)
        return Message(topic, payload, r, False, inv, col, sent_at, (self.fleet.device_ids[i],))

    def _maybe_duplicate(self, m: Message, slot: int) -> None:
        if self.faults.duplicate_prob and self._rng.random() < self.faults.duplicate_prob:
            dup = Message(m.topic, m.payload, m.readings, True, m.invalid_readings, 0,
                          m.sent_at + self._rng.randint(5, 600), m.device_ids)
            self._pending.append((slot + self._rng.randint(0, 2), dup))

    def _due(self, slot: int) -> Iterator[Message]:
        if not self._pending:
            return
        keep = []
        for due, m in self._pending:
            if due <= slot:
                yield m
            else:
                keep.append((due, m))
        self._pending = keep

    # ---------------------------------------------------------------- one day
    def day(self, day: dt.date) -> Iterator[Message]:
        """Messages of one local day (Asia/Shanghai), in sending order."""
        f = self.fleet
        model = DayModel(self.cache, day, self.interval_s)
        S = model.samples
        plan = DayFaults(f, day.toordinal(), S, self.interval_s, self.faults, self.seed)
        # a clock jump re-stamps at most an hour back and never across midnight: track one day at a time
        self.state.stored = {i: set() for i in plan.jumped.tolist()}
        ordinal = day.toordinal()
        n_slots = -(-S // self.spm)
        for slot in range(n_slots):
            k0, k1 = slot * self.spm, min(S, (slot + 1) * self.spm)
            fb = plan.apply(model.block(k0, k1), k0)
            vals = fb.values.tolist()
            times = fb.times.tolist()
            present = fb.present.tolist()
            offline = fb.offline.tolist()
            special = fb.special.tolist()
            missing_all = fb.missing
            inv_counts = fb.invalid.sum(axis=2).tolist()
            read_counts = (N_READ - missing_all[:, :, :N_READ].sum(axis=2)).tolist()
            valid_mask = ~fb.invalid & ~missing_all[:, :, :N_READ]
            slot_end = int(model.times(k1 - 1, k1)[0])
            frames = wire.frames_for_block(fb.times, fb.values) if self.cs is not None else b""
            fs, m_ = wire.FRAME_SIZE, k1 - k0
            group: list[tuple[int, list[_Sample]]] = []
            for i in range(f.n):
                pres = present[i]
                if not any(pres):
                    continue
                online: list[_Sample] = []
                buf = self.state.buffers[i]
                tracked = i in self.state.stored
                for b in range(k1 - k0):
                    if not pres[b]:
                        continue
                    miss = missing_all[i, b].tolist() if special[i][b] else None
                    vk: tuple[int, ...] = tuple(np.flatnonzero(valid_mask[i, b]).tolist()) if tracked else ()
                    s = _Sample(times[i][b], vals[i][b], miss, read_counts[i][b], inv_counts[i][b], vk,
                                frames[(i * m_ + b) * fs:(i * m_ + b + 1) * fs] if frames else b"")
                    (buf if offline[i][b] else online).append(s)
                if online and buf:
                    # back online: the buffer goes up first, late and out of order
                    self._rng.shuffle(buf)
                    m = self._message(i, buf, int(model.times(k0, k0 + 1)[0]) + self.delay[i], ordinal)
                    self.state.buffers[i] = []
                    self._maybe_duplicate(m, slot)
                    yield m
                if online:
                    if self.dpm > 1:
                        group.append((i, online))
                        if len(group) >= self.dpm:
                            yield from self._tb_group(group, slot_end, slot)
                            group = []
                        continue
                    m = self._message(i, online, slot_end + self.delay[i], ordinal)
                    self._maybe_duplicate(m, slot)
                    yield m
            if group:
                yield from self._tb_group(group, slot_end, slot)
            yield from self._due(slot)
        # midnight: gateways still offline upload what they hold (late), then pending re-sends
        end = local_midnight_epoch(day) + 86400
        for i, buf in enumerate(self.state.buffers):
            if buf and plan.dead_at[i] >= S:
                self._rng.shuffle(buf)
                m = self._message(i, buf, end + self.delay[i], ordinal)
                self.state.buffers[i] = []
                self._maybe_duplicate(m, n_slots)
                yield m
            elif buf:   # gateway died while offline: its buffer is lost with it
                self.state.buffers[i] = []
        yield from self._due(n_slots + 10)

    def _tb_group(self, group: list[tuple[int, list[_Sample]]], slot_end: int,
                  slot: int) -> Iterator[Message]:
        f = self.fleet
        parts = [(f.device_ids[i], [self._render(s) for s in samples]) for i, samples in group]
        topic, payload = wire.thingsboard_message(self.prefix, parts)
        r = inv = col = 0
        for i, samples in group:
            a, b, c = self._count(i, samples)
            r, inv, col = r + a, inv + b, col + c
        m = Message(topic, payload, r, False, inv, col, slot_end + max(self.delay[i] for i, _ in group),
                    tuple(f.device_ids[i] for i, _ in group))
        self._maybe_duplicate(m, slot)
        yield m


def replay_day(devices: list[dict[str, Any]], day: dt.date, *, fmt: str = "native", interval_s: int = 300,
               samples_per_message: int = 12, faults: FaultConfig | None = None, seed: int = 0,
               topic_prefix: str = "", devices_per_message: int = 1,
               scenarios: dict[int, str] | None = None) -> tuple[Iterator[Message], Ledger]:
    """Messages of all ``devices`` for local day ``day`` and the ledger they fill as consumed.

    ``devices``: rows with ``device_id``, ``orchard_id``, ``dev_eui`` (optionally ``elevation_m``,
    ``lat``, ``lon`` for the site). ``fmt``: 'native' | 'chirpstack' | 'thingsboard'. ``faults``:
    ``None`` = a clean network. ``devices_per_message`` > 1 packs several devices into one
    ThingsBoard gateway message. Replay a day that is entirely in the past: ingest rejects readings
    more than 10 minutes in the future.
    """
    fleet = make_fleet(devices, seed)
    rep = Replayer(fleet, fmt=fmt, interval_s=interval_s, samples_per_message=samples_per_message,
                   faults=faults, seed=seed, topic_prefix=topic_prefix,
                   devices_per_message=devices_per_message, scenarios=scenarios)
    ledger = Ledger()

    def stream() -> Iterator[Message]:
        for m in rep.day(day):
            ledger.add(m)
            yield m

    return stream(), ledger
