"""Decoder of the native JSON batch (docs/wire-format.md section 1).

Topic ``orchards/<orchard_id>/<gateway_id>/up``; payload
``{"v": 1, "gw": "<gateway_id>", "seq": n, "sent_at": epoch_s, "samples": [{"t": epoch_s, metric: value, ...}]}``.
Times are Unix epoch seconds (int or float), values JSON numbers in the units of registry.metrics;
``null`` is "no value". Samples may come in any order (a gateway's offline buffer). Any other key (of
the message or of a sample) is counted as *unmapped* on the gateway (``Decoded.unmapped``), never
dropped silently.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Any

import msgspec

from ingest.model import COLUMNS, Decoded, Health
from ingest.profile_map import count_unmapped
from ingest.validate import BOUNDS, MAX_MESSAGE_BYTES, Validator, guarded_decode, loads, take_sample, to_datetime
from registry.metrics import HEALTH_METRICS, METRICS

FORMAT = "native"


# ----------------------------------------------------------------------------------- typed fast path
# A well-formed message (nearly all traffic) is parsed straight into typed structs by msgspec, which
# checks the JSON types and every value's physical range (registry.metrics bounds, inclusive) in C.
# Anything it does not accept — a wrong type, a value out of range, NaN, a missing field — sends the
# message down the general path below, which finds every problem and gives each its reason, so the
# fast path decides nothing on its own. tests/test_ingest_decoders.py checks that both paths give
# the same result for generated valid and invalid payloads.

def _ranged(lo: float, hi: float) -> Any:
    return Annotated[float, msgspec.Meta(ge=lo, le=hi)] | None


_Sample = msgspec.defstruct(
    "_Sample", [("t", int | float)]
    + [(m.name, _ranged(m.lo, m.hi), None) for m in (*METRICS.values(), *HEALTH_METRICS.values())],
    gc=False, forbid_unknown_fields=True)  # scalars only: no cycles, nothing for the garbage collector to track
_Batch = msgspec.defstruct("_Batch", [("v", int), ("gw", str), ("samples", list[_Sample]),  # type: ignore[valid-type]
                                      ("seq", Any, None), ("sent_at", Any, None)], gc=False,
                           forbid_unknown_fields=True)
#: keys of a native message and of a sample that are structure, not readings
_MESSAGE_KEYS = frozenset({"v", "gw", "seq", "sent_at", "samples"})
_typed: Any = msgspec.json.Decoder(_Batch)  # decodes to _Batch, whose fields are made at run time
_metric_values = attrgetter(*COLUMNS)
_NONE_COUNT_EMPTY = len(COLUMNS)


def match(topic: str) -> tuple[str, str] | None:
    """(orchard_id, gateway_id) when ``topic`` (prefix removed) is a native uplink topic."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "orchards" and parts[3] == "up" and parts[1] and parts[2]:
        return parts[1], parts[2]
    return None


def decode(topic: str, payload: bytes, v: Validator) -> Decoded:
    """Decode one native message; never raises (every problem becomes a reject)."""
    return guarded_decode(FORMAT, _decode, topic, payload, v)


def _decode(dec: Decoded, topic: str, payload: bytes, v: Validator) -> None:
    if len(payload) <= MAX_MESSAGE_BYTES and _decode_typed(dec, topic, payload, v):
        return
    _decode_general(dec, topic, payload, v)


def _decode_typed(dec: Decoded, topic: str, payload: bytes, v: Validator) -> bool:
    """Decode a fully valid message into ``dec``; False (``dec`` untouched) for anything else."""
    ids = match(topic)
    if ids is None:
        return False
    try:
        b = _typed.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    orchard_id, gw = ids
    if b.v != 1 or b.gw != gw or v.devices.orchard_of.get(gw) != orchard_id:
        return False
    lo, hi = v.window()
    samples = b.samples
    for s in samples:
        if not lo <= s.t <= hi:
            return False
    rows, health = dec.rows, dec.health
    n = 0
    for s in samples:
        ts = to_datetime(s.t)
        vals = _metric_values(s)
        missing = vals.count(None)
        if missing != _NONE_COUNT_EMPTY:
            rows.append([gw, ts, *vals])
            n += _NONE_COUNT_EMPTY - missing
        if s.battery_v is not None or s.rssi_dbm is not None:
            health.append(Health(gw, ts, s.battery_v, s.rssi_dbm))
    dec.n_readings += n
    dec.per_device[gw] = [n, 0]
    seq = b.seq
    if type(seq) is int and 0 <= seq < 2**63:
        dec.seq = seq
    return True


def _decode_general(dec: Decoded, topic: str, payload: bytes, v: Validator) -> None:
    """Every check, one reason per problem (any message the typed path did not accept)."""
    ids = match(topic)
    if ids is None:
        dec.reject("unknown_topic", f"not a native uplink topic: {topic[:200]!r}")
        return
    orchard_id, gw_topic = ids
    if gw_topic in v.devices:  # whole-message rejects count against the topic's registry device
        dec.per_device[gw_topic] = [0, 0]
    if len(payload) > MAX_MESSAGE_BYTES:
        dec.reject("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}", gw_topic)
        return
    try:
        obj = loads(payload)
    except (ValueError, RecursionError) as exc:
        dec.reject("malformed_json", str(exc)[:300], gw_topic)
        return
    if type(obj) is not dict:
        dec.reject("bad_schema", f"payload must be a JSON object, got {type(obj).__name__}", gw_topic)
        return
    ver = obj.get("v")
    if type(ver) is not int or ver != 1:
        dec.reject("bad_schema", f"unsupported format version v={ver!r:.40}", gw_topic)
        return
    gw = obj.get("gw")
    if gw != gw_topic:
        dec.reject("device_mismatch", f"payload gw={gw!r:.40} differs from topic gateway {gw_topic!r}", gw_topic)
        return
    if gw_topic not in v.devices:
        dec.reject("unknown_device", f"gateway {gw_topic!r} is not in the registry", gw_topic)
        return
    if v.devices.orchard_of[gw_topic] != orchard_id:
        dec.reject("device_mismatch", f"gateway {gw_topic} belongs to orchard {v.devices.orchard_of[gw_topic]},"
                   f" not {orchard_id!r}", gw_topic)
        return
    seq = obj.get("seq")
    if type(seq) is int and 0 <= seq < 2**63:
        dec.seq = seq
    for k in obj.keys() - _MESSAGE_KEYS:
        count_unmapped(dec, gw_topic, k, obj[k])
    samples = obj.get("samples")
    if type(samples) is not list:
        dec.reject("bad_schema", f"samples must be a list, got {type(samples).__name__}", gw_topic)
        return
    lo, hi = v.window()
    for i, s in enumerate(samples):
        if type(s) is not dict:
            dec.reject("bad_schema", f"samples[{i}] must be an object", gw_topic)
            continue
        t, reason, detail = v.epoch_s(s.get("t"))
        if t is None:
            dec.reject(reason, f"samples[{i}].t: {detail}", gw_topic)
            continue
        take_sample(dec, v, gw_topic, t, s, lo, hi, label="samples", idx=i)
        for k in s:
            if k != "t" and k not in BOUNDS and s[k] is not None:
                count_unmapped(dec, gw_topic, f"samples[].{k}", s[k])
    dec.per_device[gw_topic][0] = dec.n_readings

