"""Decoders of the ThingsBoard MQTT APIs (docs/wire-format.md section 3): the gateway API and the
device API.

**Gateway API**: topic ``v1/gateway/telemetry`` (fixed: a ThingsBoard gateway cannot prefix it), payload
``{"<device name>": [{"ts": epoch_ms, "values": {key: value}}]}`` with one or several devices and
timestamps each. Device names are registry ``device_id`` values. As the API allows, an item without
``ts`` is the values object itself, measured at the ingest clock.

**Gateway API on a listener of its own** (the arrangement docs/wire-format.md recommends): Mosquitto's
``mount_point <prefix>tbgw/<account>/`` on the gateway's listener turns its ``v1/gateway/telemetry`` into
``tbgw/<account>/v1/gateway/telemetry``, which only that ThingsBoard gateway account can produce. The
account is the sender: a reading of a device that is not the account's
(:func:`registry.broker_accounts.thingsboard_gateway_devices`: placed where the account's device is) is
refused (``device_not_on_gateway``), the account's own devices in the same message are stored; a topic
naming no live ThingsBoard gateway account is refused whole (``unknown_gateway``).

**Device API**: a device publishes ``{key: value}``, ``{"ts": epoch_ms, "values": {...}}`` or a list of
those to ``v1/devices/me/telemetry``, authenticated by its access token as the MQTT username. A
subscriber never learns who published a message, so the topic must carry the device: the broker puts
each device's messages under ``tb/<device_id>/`` (Mosquitto: a listener with
``mount_point tb/<device_id>/`` per device, or a gateway/bridge that re-publishes per device), and
ingest reads ``tb/<device_id>/v1/devices/me/telemetry``. Messages on the bare topic carry no identity
and are refused (``unknown_device``). What this does and does not guarantee: docs/wire-format.md.

Values are read through the device's profile (:mod:`ingest.profiles`; NULL = native metric names).
Values are JSON numbers or numeric strings (ThingsBoard stores numeric strings as numbers too).
"""

from __future__ import annotations

from typing import Any

from ingest.model import Decoded
from ingest.profile_map import map_payload
from ingest.validate import MAX_MESSAGE_BYTES, Validator, guarded_decode, loads
from registry.broker_accounts import TB_GATEWAY_MOUNT

FORMAT = "thingsboard"
TOPIC = "v1/gateway/telemetry"
DEVICE_TOPIC = "v1/devices/me/telemetry"
#: device API topic as the broker's per-device mount point delivers it: tb/<device_id>/v1/devices/me/telemetry
DEVICE_FILTER = "tb/+/" + DEVICE_TOPIC


def match(topic: str) -> bool:
    return topic == TOPIC


def mounted_filter(mount: str = TB_GATEWAY_MOUNT) -> str:
    """The topic filter (after the prefix) of every ThingsBoard gateway's mounted telemetry."""
    return f"{mount}+/{TOPIC}"


def match_mounted(topic: str, mount: str = TB_GATEWAY_MOUNT) -> str | None:
    """The account of a mounted gateway topic (``<mount><account>/v1/gateway/telemetry``), else None."""
    if mount and topic.startswith(mount) and topic.endswith("/" + TOPIC):
        account = topic[len(mount):-len(TOPIC) - 1]
        if account and "/" not in account:
            return account
    return None


def match_device(topic: str) -> str | None:
    """The device id of a device-API topic (``tb/<device_id>/v1/devices/me/telemetry``); '' for the bare
    topic (no identity); None for any other topic."""
    if topic == DEVICE_TOPIC:
        return ""
    if topic.startswith("tb/") and topic.endswith("/" + DEVICE_TOPIC):
        dev = topic[3:-len(DEVICE_TOPIC) - 1]
        if dev and "/" not in dev:
            return dev
    return None


def decode(topic: str, payload: bytes, v: Validator) -> Decoded:
    """Decode one ThingsBoard gateway telemetry message; never raises (every problem becomes a reject)."""
    return guarded_decode(FORMAT, _decode, topic, payload, v)


def decode_mounted(topic: str, payload: bytes, v: Validator, mount: str = TB_GATEWAY_MOUNT) -> Decoded:
    """Decode one gateway telemetry message from a gateway's own listener; never raises."""
    return guarded_decode(FORMAT, lambda d, t, p, val: _decode_mounted(d, t, p, val, mount), topic, payload, v)


def decode_device(topic: str, payload: bytes, v: Validator) -> Decoded:
    """Decode one ThingsBoard device-API telemetry message; never raises."""
    return guarded_decode(FORMAT + "_device", _decode_device, topic, payload, v)


def _parse(dec: Decoded, payload: bytes, claimed: str | None = None) -> Any:
    if len(payload) > MAX_MESSAGE_BYTES:
        dec.reject("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}", claimed)
        return None
    try:
        return loads(payload)
    except (ValueError, RecursionError) as exc:
        dec.reject("malformed_json", str(exc)[:300], claimed)
        return None


def _device_items(dec: Decoded, v: Validator, name: str, items: object, fmt: str, now: float, lo: float,
                  hi: float) -> None:
    """One device's telemetry (a values object, a {ts, values} item, or a list of either)."""
    before = dec.n_readings
    prof = v.profiles.get(v.profile_id(name))
    if prof is None:
        dec.reject("unknown_profile", f"device {name} has profile {v.profile_id(name)!r}, which is not loaded", name)
        return
    if fmt not in prof.formats:
        dec.reject("profile_mismatch", f"profile {prof.id} does not list the wire format {fmt}", name)
        return
    if type(items) is dict:  # a single telemetry object instead of a list
        items = [items]
    if type(items) is not list:
        dec.reject("bad_schema", f"{name}: telemetry must be a list, got {type(items).__name__}", name)
        return
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
        map_payload(dec, v, prof, name, t, values, lo=lo, hi=hi, label=f"{name}[{i}]")
    dec.per_device[name][0] = dec.n_readings - before


def _decode(dec: Decoded, topic: str, payload: bytes, v: Validator) -> None:
    if not match(topic):
        dec.reject("unknown_topic", f"not the ThingsBoard gateway telemetry topic: {topic[:200]!r}")
        return
    _gateway_body(dec, payload, v)


def _decode_mounted(dec: Decoded, topic: str, payload: bytes, v: Validator, mount: str) -> None:
    account = match_mounted(topic, mount)
    if account is None:
        dec.reject("unknown_topic", f"not a mounted ThingsBoard gateway telemetry topic: {topic[:200]!r}")
        return
    own = v.devices.tb_gateways.get(account)
    if own is None:
        dec.reject("unknown_gateway", f"{account[:60]!r} is not a live thingsboard_gateway broker account"
                   " (revoked, or never issued)")
        return
    _gateway_body(dec, payload, v, account, own)


def _gateway_body(dec: Decoded, payload: bytes, v: Validator, account: str | None = None,
                  own: frozenset[str] | None = None) -> None:
    """A gateway-API body ``{device: items}``; with ``own`` (a mounted account's devices) any other
    registered device is refused ``device_not_on_gateway``."""
    obj = _parse(dec, payload)
    if obj is None:
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
        if own is not None and name not in own:
            dec.reject("device_not_on_gateway", f"ThingsBoard gateway account {account} reported for device"
                       f" {name}, which is not placed where the account's device is", name)
            continue
        dec.per_device[name] = [0, 0]
        _device_items(dec, v, name, items, "thingsboard_gateway", now, lo, hi)


def _decode_device(dec: Decoded, topic: str, payload: bytes, v: Validator) -> None:
    name = match_device(topic)
    if name is None:
        dec.reject("unknown_topic", f"not a ThingsBoard device telemetry topic: {topic[:200]!r}")
        return
    if not name:
        dec.reject("unknown_device", f"{DEVICE_TOPIC} without a per-device mount point carries no device identity"
                   " (see docs/wire-format.md: ThingsBoard device API)")
        return
    if name not in v.devices:
        dec.reject("unknown_device", f"device {name[:60]!r} is not in the registry", name[:200])
        return
    dec.per_device[name] = [0, 0]
    obj = _parse(dec, payload, name)
    if obj is None:
        return
    lo, hi = v.window()
    _device_items(dec, v, name, obj, "thingsboard_device", v.clock(), lo, hi)
