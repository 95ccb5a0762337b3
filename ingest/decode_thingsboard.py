"""Decoder of ThingsBoard gateway telemetry (docs/wire-format.md section 3; ThingsBoard gateway MQTT API).

Topic ``v1/gateway/telemetry``; payload ``{"<device name>": [{"ts": epoch_ms, "values": {key: value}}]}``
with one or several devices and timestamps each. Device names are registry ``device_id`` values. As the
gateway API allows, an item without ``ts`` is the values object itself, measured at the ingest clock.
Values are JSON numbers (numeric strings are accepted, as ThingsBoard stores them as numbers too).
"""

from __future__ import annotations

from ingest.model import Decoded
from ingest.validate import MAX_MESSAGE_BYTES, Validator, guarded_decode, loads, take_sample

FORMAT = "thingsboard"
TOPIC = "v1/gateway/telemetry"


def match(topic: str) -> bool:
    return topic == TOPIC


def decode(topic: str, payload: bytes, v: Validator) -> Decoded:
    """Decode one ThingsBoard gateway telemetry message; never raises (every problem becomes a reject)."""
    return guarded_decode(FORMAT, _decode, topic, payload, v)


def _decode(dec: Decoded, topic: str, payload: bytes, v: Validator) -> None:
    if not match(topic):
        dec.reject("unknown_topic", f"not the ThingsBoard gateway telemetry topic: {topic[:200]!r}")
        return
    if len(payload) > MAX_MESSAGE_BYTES:
        dec.reject("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
        return
    try:
        obj = loads(payload)
    except (ValueError, RecursionError) as exc:
        dec.reject("malformed_json", str(exc)[:300])
        return
    if type(obj) is not dict:
        dec.reject("bad_schema", f"payload must be a JSON object of devices, got {type(obj).__name__}")
        return
    lo, hi = v.window()
    now = v.clock()
    for name, items in obj.items():
        if name not in v.devices:
            dec.reject("unknown_device", f"device {name[:60]!r} is not in the registry", name[:200])
            continue
        before = dec.n_readings
        dec.per_device[name] = [0, 0]
        if type(items) is dict:  # a single telemetry object instead of a list
            items = [items]
        if type(items) is not list:
            dec.reject("bad_schema", f"{name}: telemetry must be a list, got {type(items).__name__}", name)
            continue
        for i, item in enumerate(items):
            if type(item) is not dict:
                dec.reject("bad_schema", f"{name}[{i}] must be an object", name)
                continue
            if "ts" in item:
                t, reason, detail = v.epoch_s(item["ts"], millis=True)
                if t is None:
                    dec.reject(reason, f"{name}[{i}].ts: {detail}", name)
                    continue
                values = item.get("values")
                if type(values) is not dict:
                    dec.reject("bad_schema", f"{name}[{i}].values must be an object", name)
                    continue
            else:
                t, values = now, item
            take_sample(dec, v, name, t, values, lo, hi, allow_str=True, label=name, idx=i)
        dec.per_device[name][0] = dec.n_readings - before
