"""Decoder of ChirpStack uplink events, v4 and v3 (docs/wire-format.md section 2).

Topic ``application/<application_id>/device/<dev_eui>/event/up`` (both versions). Payload:

* **v4** (``deviceInfo`` present): ``deduplicationId``, ``time``, ``deviceInfo{..., devEui, ...}``,
  ``fCnt``, ``fPort``, ``data``, ``object``, ``rxInfo[...]``, ``txInfo``;
* **v3**, either marshaler of the ChirpStack Application Server: ``json_v3`` (``applicationID``,
  ``devEUI`` as hex, ``object`` as JSON) or ``json`` = Protobuf JSON (``devEUI`` base64 of the 8 bytes,
  ``objectJSON`` a string holding the JSON object); the time is ``rxInfo[0].time`` (or
  ``publishedAt``), else the ingest clock.

The device is found by its DevEUI in the registry's ``devices.dev_eui``; ``object`` (the device-profile
codec's output) is read through the device's profile (:mod:`ingest.profiles`, ``devices.profile``;
NULL = yuncang's native dialect: metric names as keys, ``object.samples`` for a buffered uplink).
Signal: ``rxInfo[0].rssi`` (dBm) is the ``rssi_dbm`` health value when ``object`` carries none.
"""

from __future__ import annotations

import base64
import binascii

from ingest.model import Decoded, Health
from ingest.profile_map import map_payload
from ingest.timefmt import parse_rfc3339
from ingest.validate import BOUNDS, MAX_MESSAGE_BYTES, Validator, guarded_decode, loads, to_datetime

FORMAT = "chirpstack"

__all__ = ["FORMAT", "decode", "match", "parse_rfc3339"]


def match(topic: str) -> str | None:
    """The topic's DevEUI when ``topic`` (prefix removed) is a ChirpStack uplink event topic."""
    parts = topic.split("/")
    if (len(parts) == 6 and parts[0] == "application" and parts[2] == "device" and parts[4] == "event"
            and parts[5] == "up" and parts[1] and parts[3]):
        return parts[3]
    return None


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
    if type(info) is dict:
        fmt, eui = "chirpstack_v4", info.get("devEui")
    elif "devEUI" in obj or "applicationID" in obj:
        dec.fmt = FORMAT + "_v3"
        fmt, eui = "chirpstack_v3", _v3_eui(obj.get("devEUI"))
    else:
        fmt, eui = "chirpstack_v4", None
    if type(eui) is not str:
        dec.reject("bad_schema", "deviceInfo.devEui (v4) or devEUI (v3) missing", claimed)
        return
    if eui.lower() != eui_topic:
        dec.reject("device_mismatch", f"DevEUI {eui[:40]!r} in the payload differs from topic DevEUI {eui_topic!r}",
                   claimed)
        return
    if claimed is None:
        dec.reject("unknown_device", f"DevEUI {eui_topic!r} is not in the registry", None)
        return
    dev = claimed
    prof = v.profiles.get(v.profile_id(dev))
    if prof is None:
        dec.reject("unknown_profile", f"device {dev} has profile {v.profile_id(dev)!r}, which is not loaded", dev)
        return
    if fmt not in prof.formats:
        dec.reject("profile_mismatch", f"profile {prof.id} does not list the wire format {fmt}", dev)
        return
    rx = obj.get("rxInfo")
    rx0 = rx[0] if type(rx) is list and rx and type(rx[0]) is dict else {}
    if fmt == "chirpstack_v4":
        t = parse_rfc3339(obj.get("time"))
        if t is None:  # no gateway time: the network server's reception time
            t = parse_rfc3339(rx0.get("nsTime")) or parse_rfc3339(rx0.get("gwTime"))
        if t is None:
            dec.reject("wrong_type", f"time {obj.get('time')!r:.60} is not an RFC 3339 timestamp", dev)
            return
        o = obj.get("object")
    else:
        t = parse_rfc3339(rx0.get("time")) or parse_rfc3339(obj.get("publishedAt")) or v.clock()
        o = obj.get("object")
        if o is None and type(obj.get("objectJSON")) is str and obj["objectJSON"]:
            try:
                o = loads(obj["objectJSON"].encode())
            except (ValueError, RecursionError) as exc:
                dec.reject("malformed_json", f"objectJSON: {exc}"[:300], dev)
                return
    if o is None:
        dec.reject("bad_schema", "no decoded object (is the device profile's codec configured?)", dev)
        return
    if type(o) is not dict:
        dec.reject("bad_schema", f"object must be a JSON object, got {type(o).__name__}", dev)
        return
    lo, hi = v.window()
    n_health = len(dec.health)
    map_payload(dec, v, prof, dev, t, o, lo=lo, hi=hi, label="object")
    has_rssi = any(h.rssi_dbm is not None for h in dec.health[n_health:])
    rssi = rx0.get("rssi")
    if not has_rssi and rssi is not None:
        x, _, _ = Validator.number(rssi)
        lo_r, hi_r, _ = BOUNDS["rssi_dbm"]
        if x is not None and lo_r <= x <= hi_r and lo <= t <= hi:
            dec.health.append(Health(dev, to_datetime(t), None, x))
    dec.per_device[dev][0] = dec.n_readings


def _v3_eui(raw: object) -> str | None:
    """ChirpStack v3 devEUI: 16 hex digits (json_v3) or the base64 of its 8 bytes (Protobuf JSON)."""
    if type(raw) is not str:
        return None
    if len(raw) == 16:
        try:
            bytes.fromhex(raw)
            return raw.lower()
        except ValueError:
            pass
    try:
        b = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw
    return b.hex() if len(b) == 8 else raw
