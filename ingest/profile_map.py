"""Apply a device profile (:mod:`ingest.profiles`) to one decoded payload: every key is stored, ignored
because the profile says so, or counted as *unmapped* on the device — never dropped silently.

Output goes into the message's :class:`~ingest.model.Decoded` through :func:`ingest.validate.take_sample`
(one call per record: the message time's record plus one per buffered history item), so physical
ranges, time windows and health values are checked exactly as for the native format. Unmapped keys are
tallied in ``Decoded.unmapped`` ((device, key) -> [count, sample value]); ingest persists them per
device (``device_unmapped_keys``) and dead-letters them at a limited rate.

Running totals (``counter = true``, e.g. a rain gauge's total since power-on) become the increment since
the previous value of the same device and key, taken in measurement-time order: a value lower than the
previous one is a counter reset (power cycle, rollover) and its increment is the new value itself; the
first value a process sees only sets the baseline (nothing stored); a value not newer than the previous
one (a re-send) is skipped. The baselines live in the ingest process (:class:`ingest.counters.CounterState`).
"""

from __future__ import annotations

from typing import Any

from ingest.model import Decoded
from ingest.profiles import FieldMap, Profile
from ingest.timefmt import parse_rfc3339
from ingest.validate import Validator, take_sample, to_datetime

#: longest sample value kept for an unmapped key, characters
SAMPLE_CHARS = 120


def count_unmapped(dec: Decoded, device_id: str, key: str, raw: object) -> None:
    """Tally one occurrence of an unmapped ``key`` of ``device_id`` in ``dec`` (with its latest value)."""
    u = dec.unmapped.get((device_id, key))
    if u is None:
        dec.unmapped[(device_id, key)] = [1, (raw if isinstance(raw, str) else repr(raw))[:SAMPLE_CHARS]]
    else:
        u[0] += 1


class _Record:
    __slots__ = ("counters", "t", "values")

    def __init__(self, t: float) -> None:
        self.t = t
        self.values: dict[str, float] = {}
        self.counters: list[tuple[str, str, float]] = []  # (key, metric, total)


def map_payload(dec: Decoded, v: Validator, prof: Profile, device_id: str, t_msg: float, obj: object, *,
                lo: float, hi: float, label: str = "object") -> None:
    """Store what ``prof`` maps from ``obj`` (a decoded payload: an object, or a list of records when
    the profile's history path is ``"."``), measured at ``t_msg`` unless a record carries its own time."""
    m = _Mapper(dec, v, prof, device_id, label)
    top = _Record(t_msg)
    records = [top]
    if type(obj) is list and prof.hist_path == ".":
        m.history(obj, t_msg, records, ".")
    elif type(obj) is dict:
        m.walk(obj, "", top, records, t_msg)
    else:
        dec.reject("bad_schema", f"{label} must be a JSON object, got {type(obj).__name__}", device_id)
        return
    if len(records) > 1:
        records.sort(key=lambda r: r.t)
    counters = v.counters
    for r in records:
        for key, metric, total in r.counters:
            if lo <= r.t <= hi:
                before = counters.last.get((device_id, key))
                inc = counters.increment(device_id, key, r.t, total)
                if counters.last.get((device_id, key)) is not before:
                    dec.counters[(device_id, key)] = (r.t, total)
                if inc is not None:
                    r.values.setdefault(metric, inc)
        if r.values or r is not top:
            take_sample(dec, v, device_id, r.t, r.values, lo, hi, label=label)  # type: ignore[arg-type]


class _Mapper:
    __slots__ = ("dec", "dev", "label", "prof", "v")

    def __init__(self, dec: Decoded, v: Validator, prof: Profile, device_id: str, label: str) -> None:
        self.dec, self.v, self.prof, self.dev, self.label = dec, v, prof, device_id, label

    def unmapped(self, key: str, raw: object) -> None:
        count_unmapped(self.dec, self.dev, key, raw)

    def value(self, key: str, raw: object, f: FieldMap, rec: _Record) -> None:
        if raw is None:
            return
        x, reason, detail = Validator.number(raw, allow_str=True)
        if x is None:
            self.dec.reject(reason, f"{self.label}.{key}: {detail}", self.dev, f.metric, _dt(rec.t))
            return
        if f.convert is not None:
            x = f.convert(x)
        if f.counter:
            rec.counters.append((key, f.metric, x))
        elif f.metric not in rec.values:
            rec.values[f.metric] = x

    def walk(self, d: dict[str, Any], prefix: str, rec: _Record, records: list[_Record], t_msg: float,
             skip: str | None = None) -> None:
        prof = self.prof
        for k, raw in d.items():
            if k == skip:
                continue
            key = prefix + k
            f = prof.field_for(key)
            if f is not None:
                self.value(key, raw, f, rec)
            elif prof.ignores(key):
                continue
            elif key == prof.hist_path and type(raw) is list:
                self.history(raw, t_msg, records, key)
            elif key == prof.meas_path and type(raw) is list:
                self.measurements(raw, rec, records, t_msg, key)
            elif type(raw) is dict:
                self.walk(raw, key + ".", rec, records, t_msg)
            elif raw is not None:
                self.unmapped(key, raw)

    def history(self, items: list[Any], t_msg: float, records: list[_Record], key: str) -> None:
        prof, v = self.prof, self.v
        tk = prof.hist_time_key
        for i, item in enumerate(items):
            if type(item) is not dict:
                self.dec.reject("bad_schema", f"{self.label}.{key}[{i}] must be an object", self.dev)
                continue
            raw_t = item.get(tk)
            t = t_msg
            if raw_t is not None:
                got, reason, detail = _record_time(raw_t, prof.hist_time_format, v)
                if got is None:
                    self.dec.reject(reason, f"{self.label}.{key}[{i}].{tk}: {detail}", self.dev)
                    continue
                t = got
            rec = _Record(t)
            records.append(rec)
            self.walk(item, "", rec, records, t, skip=tk)

    def measurements(self, items: list[Any], rec: _Record, records: list[_Record], t_msg: float, key: str) -> None:
        prof = self.prof
        idk, vk = prof.meas_id_key, prof.meas_value_key
        flat: list[Any] = []
        for item in items:  # some codecs nest one list per frame: [[{...}, {...}], [{...}]]
            if type(item) is list:
                flat.extend(item)
            else:
                flat.append(item)
        for i, item in enumerate(flat):
            if type(item) is not dict:
                self.dec.reject("bad_schema", f"{self.label}.{key}[{i}] must be an object", self.dev)
                continue
            mid = item.get(idk)
            if mid is None:  # not a measurement (battery, versions, intervals): its keys as fields
                self.walk(item, "", rec, records, t_msg)
                continue
            ident = _id_text(mid)
            f = prof.meas_ids.get(ident)
            if f is None:
                if not prof.ignores(f"{key}[{ident}]"):
                    self.unmapped(f"{key}[{ident}]", item.get(vk))
            else:
                self.value(f"{key}[{ident}]", item.get(vk), f, rec)
            for k, raw in item.items():
                if k != idk and k != vk and raw is not None and not prof.ignores(k):
                    self.unmapped(f"{key}[].{k}", raw)


def _id_text(mid: object) -> str:
    if type(mid) is float and mid.is_integer():
        return str(int(mid))
    return str(mid).strip()


def _record_time(raw: object, fmt: str, v: Validator) -> tuple[float | None, str, str]:
    if fmt == "rfc3339":
        t = parse_rfc3339(raw)
        return (t, "", "") if t is not None else (None, "wrong_type", f"{raw!r:.60} is not an RFC 3339 time")
    if type(raw) is str:
        num, _, _ = Validator.number(raw, allow_str=True)
        raw = num if num is not None else raw
    return v.epoch_s(raw, millis=fmt == "epoch_ms")


def _dt(t: float) -> Any:
    try:
        return to_datetime(t)
    except (OverflowError, OSError, ValueError):
        return None
