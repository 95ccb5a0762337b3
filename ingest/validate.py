"""Validation rules shared by the three decoders.

What is refused (each a ``reason`` code in ``dead_letters``):

* ``oversized``        message larger than :data:`MAX_MESSAGE_BYTES` (1 MiB);
* ``malformed_json``   not UTF-8 JSON (truncated, garbage, nested beyond the parser's limit);
* ``bad_schema``       JSON of the wrong shape (not an object, ``samples`` not a list, unknown version);
* ``wrong_type``       a value that is not a JSON number (ChirpStack: or a numeric string), a bad time;
* ``not_finite``       NaN or ±Infinity (JSON ``NaN`` / ``Infinity`` literals, ``"nan"`` strings, 1e999);
* ``out_of_range``     outside the metric's physical range (registry.metrics, inclusive bounds);
* ``unknown_device``   a device id / DevEUI the registry does not know;
* ``device_mismatch``  the payload's device differs from the topic's, or the topic's orchard is not
  the device's orchard;
* ``future_time``      measurement time more than :data:`~ingest.storage.MAX_FUTURE_S` (10 min) ahead
  of the ingest clock;
* ``too_old``          measurement time before the accept window (:func:`ingest.windows.accept_from`: the
  local midnight 400 days before today's);
* ``unknown_topic``    a topic none of the formats uses;
* ``unknown_profile``  the device's ``devices.profile`` names no loaded profile;
* ``profile_mismatch`` the device's profile does not list the wire format the message came in;
* ``unmapped_key``     a payload key that the device's profile neither maps nor ignores (counted per
  device in ``device_unmapped_keys`` on every message, dead-lettered at a limited rate).

Every key of a message is stored, ignored by the device's profile, or counted as unmapped
(:mod:`ingest.profile_map`); the structural keys of each wire format (times, ids, envelopes) are
named in its decoder.
"""

from __future__ import annotations

import json
import math
import re
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import psycopg

from ingest.counters import CounterState
from ingest.model import NO_VALUES, SLOT, Decoded, Health
from ingest.profiles import DEFAULT_PROFILE, Catalogue
from ingest.storage import MAX_FUTURE_S
from ingest.windows import RETENTION_DAYS, accept_from_epoch
from registry.broker_accounts import thingsboard_gateway_devices
from registry.metrics import HEALTH_METRICS, METRICS

#: Largest message accepted, bytes (1 MiB). Bigger ones are dead-lettered whole.
MAX_MESSAGE_BYTES = 1 << 20

#: metric name -> (lo, hi, slot): inclusive physical bounds in the metric's unit, and the metric's index
#: in a sample row (``[device_id, time, *COLUMNS]``), -1 for a health metric (not a reading)
BOUNDS: dict[str, tuple[float, float, int]] = {
    **{m.name: (m.lo, m.hi, SLOT[m.name]) for m in METRICS.values()},
    **{m.name: (m.lo, m.hi, -1) for m in HEALTH_METRICS.values()},
}

_NUMERIC = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


@dataclass
class DeviceCache:
    """Registry devices known to ingest: id -> orchard id, LoRaWAN DevEUI -> id, id -> profile id."""

    orchard_of: dict[str, str] = field(default_factory=dict)
    by_eui: dict[str, str] = field(default_factory=dict)
    loaded_at: float = 0.0  #: time.monotonic() of the last load
    #: device id -> ``devices.profile`` (absent: NULL, the wire format's default)
    profile_of: dict[str, str] = field(default_factory=dict)
    #: live ThingsBoard gateway account -> the devices it may report for (its mounted listener's topic)
    tb_gateways: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: psycopg.Connection) -> DeviceCache:
        """Read the registry ``devices`` table (active devices only)."""
        rows = conn.execute("SELECT device_id, orchard_id, dev_eui, profile FROM devices WHERE active").fetchall()
        tb_gateways = thingsboard_gateway_devices(conn)
        conn.rollback()
        return cls({r[0]: r[1] for r in rows}, {r[2].lower(): r[0] for r in rows if r[2]}, _time.monotonic(),
                   {r[0]: r[3] for r in rows if r[3]}, tb_gateways)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self.orchard_of

    def __len__(self) -> int:
        return len(self.orchard_of)


class Validator:
    """Per-value and per-time checks against the registry and the ingest clock.

    ``clock`` returns the ingest time as Unix epoch seconds (UTC); a message is checked against the
    clock read once when its decoding starts (:meth:`window`).
    """

    def __init__(self, devices: DeviceCache, *, clock: Callable[[], float] = _time.time,
                 retention_days: int = RETENTION_DAYS, max_future_s: float = MAX_FUTURE_S,
                 profiles: Catalogue | None = None):
        self.devices = devices
        self.profiles = profiles if profiles is not None else builtin_catalogue()
        self.counters = CounterState()
        self.clock = clock
        self.retention_days = retention_days
        self.retention_s = retention_days * 86400.0
        self.max_future_s = float(max_future_s)

    def profile_id(self, device_id: str) -> str:
        """The device's profile id (``devices.profile``, or the default when NULL)."""
        return self.devices.profile_of.get(device_id) or DEFAULT_PROFILE

    def window(self) -> tuple[float, float]:
        """(oldest, newest) acceptable measurement time for a message arriving now, epoch s."""
        now = self.clock()
        return accept_from_epoch(now, self.retention_days), now + self.max_future_s

    @staticmethod
    def epoch_s(raw: object, *, millis: bool = False) -> tuple[float | None, str, str]:
        """A JSON timestamp (epoch s, or ms with ``millis``) as epoch seconds, or (None, reason, detail)."""
        if type(raw) is int:
            if abs(raw) > 10**15 if not millis else abs(raw) > 10**18:
                return None, "wrong_type", f"timestamp {raw} out of any plausible range"
            return (raw / 1000.0 if millis else float(raw)), "", ""
        if type(raw) is float:
            if not math.isfinite(raw):
                return None, "not_finite", f"timestamp {raw}"
            t = raw / 1000.0 if millis else raw
            if abs(t) > 1e15:
                return None, "wrong_type", f"timestamp {raw} out of any plausible range"
            return t, "", ""
        return None, "wrong_type", f"timestamp must be a number, got {type(raw).__name__}"

    def check_time(self, t: float, lo: float, hi: float) -> tuple[str, str]:
        """('', '') when ``lo <= t <= hi`` (epoch s, from :meth:`window`), else the reason and detail."""
        if t > hi:
            return "future_time", (f"measurement time {_iso(t)} is more than {self.max_future_s:g} s ahead "
                                   "of the ingest clock")
        if t < lo:
            return "too_old", (f"measurement time {_iso(t)} is before the accept window (from {_iso(lo)}:"
                               f" the local midnight {self.retention_days} days before today's)")
        return "", ""

    @staticmethod
    def number(raw: object, *, allow_str: bool = False) -> tuple[float | None, str, str]:
        """A JSON value as a float, or (None, reason, detail). ``None`` input is not handled here."""
        tp = type(raw)
        if tp is float:
            v: float = raw  # type: ignore[assignment]
        elif tp is int:
            if abs(raw) > 10**300:  # type: ignore[arg-type]
                return None, "out_of_range", "integer too large"
            v = float(raw)  # type: ignore[arg-type]
        elif allow_str and tp is str:
            s: str = raw  # type: ignore[assignment]
            if len(s) > 64 or not _NUMERIC.fullmatch(s):
                low = s.strip().lower()
                if low.lstrip("+-") in ("nan", "inf", "infinity"):
                    return None, "not_finite", f"value {s[:32]!r}"
                return None, "wrong_type", f"value {s[:32]!r} is not a number"
            v = float(s)
        else:
            return None, "wrong_type", f"value must be a number, got {tp.__name__}"
        if not math.isfinite(v):
            return None, "not_finite", f"value {v}"
        return v, "", ""


_BUILTIN: list[Catalogue] = []


def builtin_catalogue() -> Catalogue:
    """The built-in profile catalogue (loaded once per process)."""
    if not _BUILTIN:
        _BUILTIN.append(Catalogue.load())
    return _BUILTIN[0]


def loads(payload: bytes) -> object:
    """Parse a JSON payload: orjson (about 2x faster) for ordinary documents, the standard library for
    what orjson refuses but JSON-ish gateways send (``NaN``/``Infinity`` literals, integers beyond 64
    bits, lone surrogates), so those still reach per-value validation. Raises ValueError or
    RecursionError (the standard library's errors) when neither can parse it."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)


def check_range(metric: str, v: float) -> str:
    """'' when ``v`` is inside the metric's physical range, else the detail of the violation."""
    lo, hi, _ = BOUNDS[metric]
    if lo <= v <= hi:
        return ""
    return f"{metric}={v:g} outside [{lo:g}, {hi:g}] {unit(metric)}"


def unit(metric: str) -> str:
    m = METRICS.get(metric) or HEALTH_METRICS.get(metric)
    return m.unit if m else ""


def _iso(t: float) -> str:
    try:
        return to_datetime(t).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{t:g} (epoch s)"


def take_sample(dec: Decoded, v: Validator, device_id: str, t: float, values: dict[str, object],
                lo: float, hi: float, *, allow_str: bool = False, label: str = "", idx: int = -1) -> None:
    """Validate one sample (metric -> value at epoch-seconds ``t``) into ``dec``: a sample row of the
    accepted values, health, rejects.

    ``values`` may hold other keys (ignored). ``None`` values mean "no value" and are skipped.
    ``label``/``idx`` locate the sample in reject details (``samples[3] ...``).
    """
    if not lo <= t <= hi:
        reason, detail = v.check_time(t, lo, hi)
        dec.reject(reason, _where(label, idx) + detail, device_id, None, _safe_dt(t))
        return
    ts = to_datetime(t)
    row: list[object] | None = None
    n = 0
    bounds = BOUNDS
    battery: float | None = None
    rssi: float | None = None
    for metric, raw in values.items():
        b = bounds.get(metric)
        if b is None:
            continue
        # fast path (nearly every value): a JSON number inside its physical range
        tp = type(raw)
        if (tp is float or tp is int) and b[0] <= raw <= b[1]:  # type: ignore[operator]
            x: float = raw if tp is float else float(raw)  # type: ignore[assignment,arg-type]
        else:
            if raw is None:
                continue
            where = _where(label, idx)
            if tp is float or tp is int:
                if tp is int and abs(raw) > 10**300:  # type: ignore[arg-type]
                    dec.reject("out_of_range", f"{where}{metric}: integer too large", device_id, metric, ts)
                    continue
                x = float(raw)  # type: ignore[arg-type]
                if x != x or x in (_INF, _NINF):
                    dec.reject("not_finite", f"{where}{metric}={x}", device_id, metric, ts)
                    continue
            else:
                val, reason, detail = Validator.number(raw, allow_str=allow_str)
                if val is None:
                    dec.reject(reason, f"{where}{metric}: {detail}", device_id, metric, ts)
                    continue
                x = val
            if x < b[0] or x > b[1]:
                dec.reject("out_of_range", where + check_range(metric, x), device_id, metric, ts)
                continue
        slot = b[2]
        if slot > 0:
            if row is None:
                row = [device_id, ts, *NO_VALUES]
            row[slot] = x
            n += 1
        elif metric == "battery_v":
            battery = x
        else:
            rssi = x
    if row is not None:
        dec.rows.append(row)
        dec.n_readings += n
    if battery is not None or rssi is not None:
        dec.health.append(Health(device_id, ts, battery, rssi))


def _where(label: str, idx: int) -> str:
    return f"{label}[{idx}] " if idx >= 0 else (label + " " if label else "")


def _safe_dt(t: float) -> datetime | None:
    try:
        return to_datetime(t)
    except (OverflowError, OSError, ValueError):
        return None


_INF = math.inf
_NINF = -math.inf


#: epoch s -> datetime of recently seen measurement times: gateways sample on a shared grid (every 5 min),
#: so the same few hundred times recur across the whole fleet and a lookup replaces most conversions
_DT_CACHE: dict[float, datetime] = {}
_DT_CACHE_MAX = 16_384


def to_datetime(t: float) -> datetime:
    """Epoch seconds -> tz-aware UTC datetime (microsecond resolution)."""
    d = _DT_CACHE.get(t)
    if d is None:
        d = datetime.fromtimestamp(t, UTC)
        if len(_DT_CACHE) >= _DT_CACHE_MAX:
            _DT_CACHE.clear()
        _DT_CACHE[t] = d
    return d


def guarded_decode(fmt: str, impl: Callable[[Decoded, str, bytes, Validator], None], topic: str, payload: bytes,
                   v: Validator) -> Decoded:
    """Run a format's decoder body so that it never raises: a decoder bug dead-letters the message
    (reason ``decoder_error``) instead of stopping the stream."""
    dec = Decoded(fmt=fmt)
    try:
        impl(dec, topic, payload, v)
    except Exception as exc:
        dec.clear_readings()
        dec.health.clear()
        dec.reject("decoder_error", f"{type(exc).__name__}: {exc}"[:500])
    return dec
