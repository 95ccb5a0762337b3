"""Decoder of ChirpStack v4 uplink events (docs/wire-format.md section 2).

Topic ``application/<application_id>/device/<dev_eui>/event/up``; payload the ChirpStack v4 MQTT
integration's JSON uplink event (``deduplicationId``, ``time``, ``deviceInfo{..., devEui, ...}``,
``fCnt``, ``fPort``, ``data``, ``object``, ``rxInfo[...]``, ``txInfo``). Readings come from ``object``
(the device profile codec's output): metric names as keys, values numbers or numeric strings, measured
at ``time`` (RFC 3339); or ``object.samples`` in the native form (``t`` epoch seconds) for a buffered
uplink. The device is found by ``deviceInfo.devEui`` in the registry's ``devices.dev_eui``. Signal:
``rxInfo[0].rssi`` (dBm) is the ``rssi_dbm`` health value when ``object`` carries none.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from ingest.model import Decoded, Health
from ingest.validate import BOUNDS, MAX_MESSAGE_BYTES, Validator, guarded_decode, loads, take_sample, to_datetime

FORMAT = "chirpstack"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")


def match(topic: str) -> str | None:
    """The topic's DevEUI when ``topic`` (prefix removed) is a ChirpStack uplink event topic."""
    parts = topic.split("/")
    if (len(parts) == 6 and parts[0] == "application" and parts[2] == "device" and parts[4] == "event"
            and parts[5] == "up" and parts[1] and parts[3]):
        return parts[3]
    return None


def parse_rfc3339(s: object) -> float | None:
    """RFC 3339 timestamp (up to nanoseconds, ``Z`` or ±hh:mm) -> epoch seconds; None when invalid."""
    if type(s) is not str or len(s) > 40:
        return None
    m = _RFC3339.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, z, sign, oh, om = m.groups()
    try:
        tz = UTC if z else timezone((1 if sign == "+" else -1) * timedelta(hours=int(oh), minutes=int(om)))
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micro, tzinfo=tz)
    except ValueError:
        return None
    return dt.timestamp()


def decode(topic: str, payload: bytes, v: Validator) -> Decoded:
    """Decode one ChirpStack uplink event; never raises (every problem becomes a reject)."""
    return guarded_decode(FORMAT, _decode, topic, payload, v)


def _decode(dec: Decoded, topic: str, payload: bytes, v: Validator) -> None:
    eui_topic = match(topic)
    if eui_topic is None:
        dec.reject("unknown_topic", f"not a ChirpStack uplink topic: {topic[:200]!r}")
        return
    eui_topic = eui_topic.lower()
    claimed = v.devices.by_eui.get(eui_topic)
    if claimed is not None:  # whole-message rejects count against the topic's registry device
        dec.per_device[claimed] = [0, 0]
    if len(payload) > MAX_MESSAGE_BYTES:
        dec.reject("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}", claimed or eui_topic)
        return
    try:
        obj = loads(payload)
    except (ValueError, RecursionError) as exc:
        dec.reject("malformed_json", str(exc)[:300], claimed)
        return
    if type(obj) is not dict:
        dec.reject("bad_schema", f"payload must be a JSON object, got {type(obj).__name__}", claimed)
        return
    info = obj.get("deviceInfo")
    eui = info.get("devEui") if type(info) is dict else None
    if type(eui) is not str:
        dec.reject("bad_schema", "deviceInfo.devEui missing", claimed)
        return
    if eui.lower() != eui_topic:
        dec.reject("device_mismatch", f"deviceInfo.devEui {eui[:40]!r} differs from topic DevEUI {eui_topic!r}",
                   claimed)
        return
    if claimed is None:
        dec.reject("unknown_device", f"DevEUI {eui_topic!r} is not in the registry", None)
        return
    dev = claimed
    rx = obj.get("rxInfo")
    rx0 = rx[0] if type(rx) is list and rx and type(rx[0]) is dict else {}
    t = parse_rfc3339(obj.get("time"))
    if t is None:  # no gateway time: the network server's reception time
        t = parse_rfc3339(rx0.get("nsTime")) or parse_rfc3339(rx0.get("gwTime"))
    if t is None:
        dec.reject("wrong_type", f"time {obj.get('time')!r:.60} is not an RFC 3339 timestamp", dev)
        return
    o = obj.get("object")
    if o is None:
        dec.reject("bad_schema", "no decoded object (is the device profile's codec configured?)", dev)
        return
    if type(o) is not dict:
        dec.reject("bad_schema", f"object must be a JSON object, got {type(o).__name__}", dev)
        return
    lo, hi = v.window()
    has_rssi = "rssi_dbm" in o and o["rssi_dbm"] is not None
    if any(k in BOUNDS for k in o):
        take_sample(dec, v, dev, t, o, lo, hi, allow_str=True, label="object")
    samples = o.get("samples")
    if samples is not None:
        if type(samples) is not list:
            dec.reject("bad_schema", f"object.samples must be a list, got {type(samples).__name__}", dev)
        else:
            for i, s in enumerate(samples):
                if type(s) is not dict:
                    dec.reject("bad_schema", f"object.samples[{i}] must be an object", dev)
                    continue
                st = s.get("t")
                if type(st) is str:  # a JavaScript codec may stringify numbers
                    num, _, _ = Validator.number(st, allow_str=True)
                    st = num if num is not None else st
                ts, reason, detail = v.epoch_s(st)
                if ts is None:
                    dec.reject(reason, f"object.samples[{i}].t: {detail}", dev)
                    continue
                has_rssi = has_rssi or s.get("rssi_dbm") is not None
                take_sample(dec, v, dev, ts, s, lo, hi, allow_str=True, label="object.samples", idx=i)
    rssi = rx0.get("rssi")
    if not has_rssi and rssi is not None:
        x, _, _ = Validator.number(rssi)
        lo_r, hi_r, _ = BOUNDS["rssi_dbm"]
        if x is not None and lo_r <= x <= hi_r and lo <= t <= hi:
            dec.health.append(Health(dev, to_datetime(t), None, x))
    dec.per_device[dev][0] = dec.n_readings
