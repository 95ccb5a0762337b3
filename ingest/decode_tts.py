"""Decoder of The Things Stack v3 uplink messages (docs/wire-format.md section 4).

Topic: The Things Stack's own MQTT server publishes ``v3/<application id>@<tenant id>/devices/<device
id>/up``; its Pub/Sub MQTT integration publishes to ``<base topic>/<uplink sub-topic>`` on the broker
ingest reads (both configurable, see :data:`ingest.decode.TOPIC_FILTERS` and the setting
``YUNCANG_TTS_TOPICS``). The topic does not identify the device: the payload does.

Payload (The Things Stack data formats, ``ApplicationUp`` with ``uplink_message``):
``end_device_ids{device_id, application_ids, dev_eui, ...}``, ``received_at``, ``uplink_message{f_port,
f_cnt, frm_payload, decoded_payload, normalized_payload[...], rx_metadata[{rssi, snr, ...}],
received_at, ...}``. The device is found by ``end_device_ids.dev_eui`` (hex, any case) in
``devices.dev_eui``. Which payload is read:

* a device whose profile is ``tts-normalized``, or whose profile is NULL (the default) and whose uplink
  carries ``normalized_payload``: the normalized measurements (the generic profile, fixed units);
* otherwise ``decoded_payload`` through the device's profile.

Measurement time: a normalized measurement's own ``time``, else ``uplink_message.received_at``, else
``received_at``. Signal: ``rx_metadata[0].rssi`` (dBm) when the payload carries none. Messages without
``uplink_message`` (join accepts, downlink events, ...) are refused as ``bad_schema``.
"""

from __future__ import annotations

from ingest.model import Decoded, Health
from ingest.profile_map import map_payload
from ingest.timefmt import parse_rfc3339
from ingest.validate import BOUNDS, MAX_MESSAGE_BYTES, Validator, guarded_decode, loads, to_datetime

FORMAT = "tts_v3"
NORMALIZED = "tts-normalized"


def decode(topic: str, payload: bytes, v: Validator) -> Decoded:
    """Decode one The Things Stack uplink message; never raises (every problem becomes a reject)."""
    return guarded_decode(FORMAT, _decode, topic, payload, v)


def _decode(dec: Decoded, topic: str, payload: bytes, v: Validator) -> None:
    if len(payload) > MAX_MESSAGE_BYTES:
        dec.reject("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
        return
    try:
        obj = loads(payload)
    except (ValueError, RecursionError) as exc:
        dec.reject("malformed_json", str(exc)[:300])
        return
    if type(obj) is not dict:
        dec.reject("bad_schema", f"payload must be a JSON object, got {type(obj).__name__}")
        return
    ids = obj.get("end_device_ids")
    eui = ids.get("dev_eui") if type(ids) is dict else None
    if type(eui) is not str or not eui:
        dec.reject("bad_schema", "end_device_ids.dev_eui missing")
        return
    dev = v.devices.by_eui.get(eui.lower())
    if dev is None:
        dec.reject("unknown_device", f"DevEUI {eui[:40]!r} is not in the registry", None)
        return
    dec.per_device[dev] = [0, 0]
    up = obj.get("uplink_message")
    if type(up) is not dict:
        dec.reject("bad_schema", "no uplink_message (only uplink messages carry readings)", dev)
        return
    pid = v.devices.profile_of.get(dev)
    normalized = up.get("normalized_payload")
    if pid == NORMALIZED or (pid is None and type(normalized) is list):
        pid, o, label = NORMALIZED, normalized, "normalized_payload"
    else:
        pid, o, label = v.profile_id(dev), up.get("decoded_payload"), "decoded_payload"
    prof = v.profiles.get(pid)
    if prof is None:
        dec.reject("unknown_profile", f"device {dev} has profile {pid!r}, which is not loaded", dev)
        return
    if FORMAT not in prof.formats:
        dec.reject("profile_mismatch", f"profile {prof.id} does not list the wire format {FORMAT}", dev)
        return
    if o is None:
        dec.reject("bad_schema", f"uplink_message.{label} missing (is a payload formatter configured?)", dev)
        return
    t = parse_rfc3339(up.get("received_at")) or parse_rfc3339(obj.get("received_at"))
    if t is None:
        dec.reject("wrong_type", f"received_at {obj.get('received_at')!r:.60} is not an RFC 3339 time", dev)
        return
    lo, hi = v.window()
    n_health = len(dec.health)
    map_payload(dec, v, prof, dev, t, o, lo=lo, hi=hi, label=label)
    rx = up.get("rx_metadata")
    rx0 = rx[0] if type(rx) is list and rx and type(rx[0]) is dict else {}
    rssi = rx0.get("rssi")
    if rssi is not None and not any(h.rssi_dbm is not None for h in dec.health[n_health:]):
        x, _, _ = Validator.number(rssi)
        lo_r, hi_r, _ = BOUNDS["rssi_dbm"]
        if x is not None and lo_r <= x <= hi_r and lo <= t <= hi:
            dec.health.append(Health(dev, to_datetime(t), None, x))
    dec.per_device[dev][0] = dec.n_readings
