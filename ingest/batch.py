"""A batch of decoded MQTT messages waiting to be written in one transaction and then acknowledged."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.dead_letters import GATE, FloodGate, stored_payload
from ingest.model import Decoded, Reading, SampleRow
from ingest.samples import row_of


@dataclass(slots=True)
class DeviceTally:
    """Health of one device accumulated over a batch (written to ``device_health``)."""

    first_seen: datetime               #: first message received in the batch (ingest clock, UTC)
    last_seen: datetime                #: last message received
    last_reading_at: datetime | None = None
    messages: int = 0
    readings: int = 0
    rejects: int = 0
    battery_v: float | None = None     #: V, the newest by measurement time
    battery_at: datetime | None = None
    rssi_dbm: float | None = None      #: dBm, the newest by measurement time
    rssi_at: datetime | None = None
    seq: int | None = None


@dataclass(slots=True)
class Pending:
    """One received message: what is needed to acknowledge it, or to re-process it alone."""

    topic: str
    payload: bytes
    received: float       #: epoch s (ingest clock)
    gen: int              #: MQTT connection generation it arrived on
    mid: int
    qos: int


def _clean(s: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL."""
    return s.replace("\x00", "\\0") if s and "\x00" in s else s


@dataclass
class Batch:
    #: accepted sample rows of the batch's messages (see :data:`ingest.model.SampleRow`)
    rows: list[SampleRow] = field(default_factory=list)
    #: accepted values in ``rows``
    n_readings: int = 0
    pending: list[Pending] = field(default_factory=list)
    #: dead_letters rows: (received_at, topic, device_id, reason, detail, metric, reading_time, msg_key, item,
    #: payload, payload_bytes)
    dead: list[tuple[object, ...]] = field(default_factory=list)
    #: rejects the flood gate held back: (sender, reason, window, over_total) -> [rejects, bytes, device_id]
    floods: dict[tuple[str, str, int, bool], list[object]] = field(default_factory=dict)
    #: the flood gate dead letters pass (default: the process-wide :data:`ingest.dead_letters.GATE`)
    gate: FloodGate | None = None
    devices: dict[str, DeviceTally] = field(default_factory=dict)
    #: (device_id, received hour) -> [messages, readings, rejects]
    traffic: dict[tuple[str, datetime], list[int]] = field(default_factory=dict)
    #: (device_id, key) -> [count, sample value, first seen, last seen] (ingest clock)
    unmapped: dict[tuple[str, str], list[object]] = field(default_factory=dict)
    #: (device_id, key) -> (epoch s, total): newest counter baselines of the batch (device_counter_state)
    counters: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    formats: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    tmin: datetime | None = None      #: oldest reading time in the batch
    tmax: datetime | None = None      #: newest reading time in the batch
    started: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return len(self.pending)

    def add_readings(self, readings: list[Reading]) -> None:
        """Add narrow readings as one sample row each (tools and tests; decoders produce rows)."""
        for r in readings:
            self.rows.append(row_of(r))
            t = r[2]
            self.tmin = t if self.tmin is None or t < self.tmin else self.tmin
            self.tmax = t if self.tmax is None or t > self.tmax else self.tmax
        self.n_readings += len(readings)

    def add(self, p: Pending, dec: Decoded) -> None:
        """Add one decoded message (``p`` carries its ack identity and raw bytes)."""
        self.pending.append(p)
        self.formats[dec.fmt or "unknown"] += 1
        rs = dec.rows
        if rs:
            self.rows.extend(rs)
            self.n_readings += dec.n_readings
            lo = min(r[1] for r in rs)
            hi = max(r[1] for r in rs)
            if self.tmin is None or lo < self.tmin:
                self.tmin = lo
            if self.tmax is None or hi > self.tmax:
                self.tmax = hi
        for k, tv in dec.counters.items():
            old = self.counters.get(k)
            if old is None or tv[0] > old[0]:
                self.counters[k] = tv
        if not dec.per_device and not dec.rejects:
            return
        received = datetime.fromtimestamp(p.received, UTC)
        for k, (n, sample) in dec.unmapped.items():
            u = self.unmapped.get(k)
            if u is None:
                self.unmapped[k] = [n, sample, received, received]
            else:
                u[0] = int(u[0]) + n  # type: ignore[call-overload]
                u[1], u[3] = sample, received
        hour = received.replace(minute=0, second=0, microsecond=0)
        single = next(iter(dec.per_device)) if len(dec.per_device) == 1 else None
        for dev, (n_ok, n_bad) in dec.per_device.items():
            t = self.devices.get(dev)
            if t is None:
                t = self.devices[dev] = DeviceTally(received, received)
            t.last_seen = received
            t.messages += 1
            t.readings += n_ok
            t.rejects += n_bad
            if n_ok and rs:
                newest = hi if single is not None else max(r[1] for r in rs if r[0] == dev)
                if t.last_reading_at is None or newest > t.last_reading_at:
                    t.last_reading_at = newest
            if dec.seq is not None:
                t.seq = dec.seq
            tr = self.traffic.get((dev, hour))
            if tr is None:
                self.traffic[(dev, hour)] = [1, n_ok, n_bad]
            else:
                tr[0] += 1
                tr[1] += n_ok
                tr[2] += n_bad
        for h in dec.health:
            t = self.devices.get(h.device_id)
            if t is None:
                continue
            if h.battery_v is not None and (t.battery_at is None or h.time >= t.battery_at):
                t.battery_v, t.battery_at = h.battery_v, h.time
            if h.rssi_dbm is not None and (t.rssi_at is None or h.time >= t.rssi_at):
                t.rssi_dbm, t.rssi_at = h.rssi_dbm, h.time
        if dec.rejects:
            self._dead_letters(p, dec, received)

    def _dead_letters(self, p: Pending, dec: Decoded, received: datetime) -> None:
        """Dead-letter rows of one message's rejects: through the flood gate, payload capped
        (:mod:`ingest.dead_letters`)."""
        gate = self.gate or GATE
        key = hashlib.sha256(p.topic.encode() + b"\x00" + p.payload).hexdigest()
        topic = _clean(p.topic) or ""
        payload_kept = False
        counted: set[tuple[str, str, int, bool]] = set()
        for i, rj in enumerate(dec.rejects):
            self.reasons[rj.reason] += 1
            ok, window, over_total = gate.admit(topic, rj.reason, p.received)
            if ok:
                payload, note = stored_payload(p.payload) if not payload_kept else (None, "")
                payload_kept = True
                self.dead.append((received, topic, _clean(rj.device_id), rj.reason, _clean(rj.detail + note),
                                  rj.metric, rj.time, key, i, payload, len(p.payload)))
                continue
            fk = ("*" if over_total else topic, rj.reason, window, over_total)
            f = self.floods.setdefault(fk, [0, 0, None if over_total else _clean(rj.device_id)])
            f[0] = int(f[0]) + 1  # type: ignore[call-overload]
            if fk not in counted:  # the message's bytes once per summary it adds to
                f[1] = int(f[1]) + len(p.payload)  # type: ignore[call-overload]
                counted.add(fk)
