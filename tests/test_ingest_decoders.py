"""Decoders of the three wire formats (docs/wire-format.md): round trips, rejects, never raising."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import decode_chirpstack, decode_native, decode_thingsboard, validate
from ingest.decode import decode_message
from ingest.model import Decoded
from ingest.validate import MAX_MESSAGE_BYTES, DeviceCache, Validator
from registry.metrics import HEALTH_METRICS, METRICS

NOW = 1_751_328_600.0  # 2025-07-01T00:10:00Z, the ingest clock in these tests
DEVICES = DeviceCache({"gw-0001": "WS-0001", "gw-0002": "WS-0002", "gw-0003": "WS-0003"},
                      {"00000000000000a1": "gw-0001", "00000000000000a2": "gw-0002"})
V = Validator(DEVICES, clock=lambda: NOW)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REASONS = {"oversized", "malformed_json", "bad_schema", "wrong_type", "not_finite", "out_of_range",
           "unknown_device", "device_mismatch", "future_time", "too_old", "unknown_topic"}


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def readings(dec: Decoded) -> list[tuple[str, str, datetime, float]]:
    return sorted(dec.readings)


def reasons(dec: Decoded) -> list[str]:
    return sorted(r.reason for r in dec.rejects)


def native(samples: list[dict[str, Any]], gw: str = "gw-0001", **extra: Any) -> bytes:
    return json.dumps({"v": 1, "gw": gw, "seq": 7, "sent_at": int(NOW), "samples": samples, **extra}).encode()


def chirpstack(obj: Any, eui: str = "00000000000000a1", time: str = "2025-07-01T00:00:00Z",
               rssi: int = -97) -> bytes:
    return json.dumps({
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d", "time": time,
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "ChirpStack",
                       "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "orchards",
                       "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "YC-GW1",
                       "deviceName": "gw-0001", "devEui": eui, "tags": {}},
        "devAddr": "00189440", "adr": True, "dr": 5, "fCnt": 12, "fPort": 2, "confirmed": False,
        "data": base64.b64encode(b"\x01\x02").decode(), "object": obj,
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": rssi, "snr": 9.5,
                    "channel": 2, "location": {}, "context": "EFwMtA==", "metadata": {}, "crcStatus": "CRC_OK"}],
        "txInfo": {"frequency": 868500000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7,
                                                                    "codeRate": "CR_4_5"}}},
    }).encode()


CS_TOPIC = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/00000000000000a1/event/up"

# ---------------------------------------------------------------------------------------------- strategies

metric_values = st.sampled_from(sorted(METRICS)).flatmap(
    lambda m: st.tuples(st.just(m), st.floats(METRICS[m].lo, METRICS[m].hi, allow_nan=False)))
# measurement times inside the accepted window: up to 30 days old, up to 10 min ahead, whole ms
times_ms = st.integers(int((NOW - 30 * 86400) * 1000), int((NOW + 599) * 1000))


@st.composite
def samples(draw: st.DrawFn, as_float_t: bool = False) -> tuple[int, dict[str, float]]:
    ms = draw(times_ms)
    if not as_float_t:
        ms -= ms % 1000
    values = dict(draw(st.lists(metric_values, min_size=0, max_size=12)))
    return ms, values


def expected(device: str, batch: list[tuple[int, dict[str, float]]]) -> list[tuple[str, str, datetime, float]]:
    return sorted((device, m, at(ms), v) for ms, vals in batch for m, v in vals.items())


# ------------------------------------------------------------------------------------------------ native


@given(st.lists(samples(as_float_t=True), max_size=20), st.booleans())
def test_native_valid_payload_round_trips_exactly(batch: list[tuple[int, dict[str, float]]], float_t: bool) -> None:
    body = [{"t": (ms / 1000 if float_t or ms % 1000 else ms // 1000), **vals} for ms, vals in batch]
    dec = decode_native.decode("orchards/WS-0001/gw-0001/up", native(body), V)
    assert dec.rejects == []
    assert readings(dec) == expected("gw-0001", batch)
    assert dec.per_device == {"gw-0001": [len(dec.readings), 0]} and dec.seq == 7


def test_native_health_values_go_to_health_not_readings() -> None:
    body = [{"t": int(NOW) - 300, "air_temp_c": 23.4, "battery_v": 3.92, "rssi_dbm": -97, "firmware": "1.2"},
            {"t": int(NOW), "battery_v": None, "rssi_dbm": -90}]
    dec = decode_native.decode("orchards/WS-0001/gw-0001/up", native(body), V)
    assert readings(dec) == [("gw-0001", "air_temp_c", at(int(NOW - 300) * 1000), 23.4)]
    assert [(h.battery_v, h.rssi_dbm) for h in dec.health] == [(3.92, -97.0), (None, -90.0)]


def test_native_rejects_with_reasons_and_keeps_good_readings() -> None:
    t = int(NOW) - 60
    body = [
        {"t": t, "air_temp_c": 20.0, "air_rh_pct": float("nan"), "soil_vwc_10cm": 7.5, "wind_ms": "3"},
        {"t": t + 1, "rain_mm": 1e999},
        {"t": int(NOW) + 3600, "air_temp_c": 20.0},        # an hour in the future
        {"t": int(NOW) - 500 * 86400, "air_temp_c": 20.0},  # older than retention
        {"t": "yesterday", "air_temp_c": 20.0},
        {"t": True, "air_temp_c": 20.0},
        "not a sample",
        {"t": t + 2, "solar_wm2": 10**400, "leaf_wetness_pct": False, "battery_v": 12.0},
    ]
    dec = decode_native.decode("orchards/WS-0001/gw-0001/up", native(body), V)
    assert readings(dec) == [("gw-0001", "air_temp_c", at(t * 1000), 20.0)]
    assert reasons(dec) == sorted(["not_finite", "out_of_range", "wrong_type", "not_finite", "future_time",
                                   "too_old", "wrong_type", "wrong_type", "bad_schema", "out_of_range",
                                   "wrong_type", "out_of_range"])
    assert all(r.device_id == "gw-0001" for r in dec.rejects)
    assert dec.per_device == {"gw-0001": [1, 12]}
    vwc = next(r for r in dec.rejects if r.metric == "soil_vwc_10cm")
    assert "outside [0, 0.6]" in vwc.detail and vwc.time == at(t * 1000)


def test_native_whole_message_rejects() -> None:
    topic = "orchards/WS-0001/gw-0001/up"
    good = native([{"t": int(NOW), "air_temp_c": 1.0}])
    cases = {
        "malformed_json": (topic, good[:-7]),
        "bad_schema": (topic, b"[1, 2]"),
        "device_mismatch": (topic, native([], gw="gw-0002")),
        "unknown_device": ("orchards/WS-0999/gw-0999/up", native([], gw="gw-0999")),
        "oversized": (topic, good[:-2] + b" " * MAX_MESSAGE_BYTES + b"]}"),
        "unknown_topic": ("orchards/WS-0001/gw-0001/down", good),
    }
    for reason, (tp, payload) in cases.items():
        dec = decode_message(tp, payload, V)
        assert reasons(dec) == [reason], reason
        assert dec.readings == [] and dec.health == []
    assert reasons(decode_native.decode("orchards/WS-0002/gw-0001/up", good, V)) == ["device_mismatch"]
    assert reasons(decode_native.decode(topic, native([], v=2), V)) == ["bad_schema"]
    assert reasons(decode_native.decode(topic, b"[" * 100_000, V)) == ["malformed_json"]
    assert reasons(decode_native.decode(topic, b"\xff\xfe\x00garbage", V)) == ["malformed_json"]


# -------------------------------------------------------------------------------------------- chirpstack


@given(samples(), st.lists(samples(), max_size=6), st.booleans(), st.integers(0, 999_999))
def test_chirpstack_valid_event_round_trips_exactly(flat: tuple[int, dict[str, float]],
                                                    buffered: list[tuple[int, dict[str, float]]],
                                                    as_strings: bool, micros: int) -> None:
    ms, vals = flat
    when = at(ms) + timedelta(microseconds=micros)
    obj: dict[str, Any] = {m: (repr(x) if as_strings else x) for m, x in vals.items()}
    if buffered:
        obj["samples"] = [{"t": ms2 // 1000, **v} for ms2, v in buffered]
    dec = decode_chirpstack.decode(CS_TOPIC, chirpstack(obj, time=when.isoformat().replace("+00:00", "Z")), V)
    assert dec.rejects == []
    want = sorted([("gw-0001", m, when, x) for m, x in vals.items()] + expected("gw-0001", buffered))
    assert readings(dec) == want
    assert [h.rssi_dbm for h in dec.health] == [-97.0]  # from rxInfo[0].rssi


def test_chirpstack_time_formats_and_rejects() -> None:
    assert decode_chirpstack.parse_rfc3339("2025-07-01T08:00:00.123456789+08:00") == 1751328000.123456
    assert decode_chirpstack.parse_rfc3339("2025-07-01T00:00:00Z") == 1751328000.0
    assert decode_chirpstack.parse_rfc3339("2025-02-30T00:00:00Z") is None
    assert decode_chirpstack.parse_rfc3339(17) is None
    dec = decode_chirpstack.decode(CS_TOPIC, chirpstack({"air_temp_c": "twenty", "air_rh_pct": "NaN",
                                                         "rain_mm": "-1", "wind_ms": "2.5", "battery_v": "3.7",
                                                         "codec_version": "1.0"}), V)
    assert readings(dec) == [("gw-0001", "wind_ms", at(1751328000000), 2.5)]
    assert reasons(dec) == ["not_finite", "out_of_range", "wrong_type"]
    assert [(h.battery_v, h.rssi_dbm) for h in dec.health] == [(3.7, None), (None, -97.0)]
    unknown = "application/1/device/00000000000000ff/event/up"
    assert reasons(decode_chirpstack.decode(unknown, chirpstack({}, eui="00000000000000ff"), V)) == ["unknown_device"]
    assert reasons(decode_chirpstack.decode(CS_TOPIC, chirpstack({}, eui="00000000000000a2"), V)) == [
        "device_mismatch"]
    assert reasons(decode_chirpstack.decode(CS_TOPIC, chirpstack(None), V)) == ["bad_schema"]
    assert reasons(decode_chirpstack.decode(CS_TOPIC, chirpstack({"x": 1}, time="noon"), V)) == ["wrong_type"]
    upper = CS_TOPIC.replace("a1", "A1")
    assert decode_chirpstack.decode(upper, chirpstack({"wind_ms": 1}, eui="00000000000000A1"), V).rejects == []


# ------------------------------------------------------------------------------------------- thingsboard


@given(st.dictionaries(st.sampled_from(["gw-0001", "gw-0002", "gw-0003"]),
                       st.lists(samples(as_float_t=True), max_size=5), max_size=3))
def test_thingsboard_valid_telemetry_round_trips_exactly(by_dev: dict[str, list[tuple[int, dict[str, float]]]]) -> None:
    body = {d: [{"ts": ms, "values": vals} for ms, vals in items] for d, items in by_dev.items()}
    dec = decode_thingsboard.decode("v1/gateway/telemetry", json.dumps(body).encode(), V)
    assert dec.rejects == []
    assert readings(dec) == sorted(r for d, items in by_dev.items() for r in expected(d, items))
    assert dec.per_device == {d: [len(expected(d, items)), 0] for d, items in by_dev.items()}


def test_thingsboard_rejects_per_device() -> None:
    body = {"gw-0001": [{"ts": int(NOW * 1000), "values": {"air_temp_c": 23.4, "air_rh_pct": 181}}],
            "gw-9999": [{"ts": int(NOW * 1000), "values": {"air_temp_c": 23.4}}],
            "gw-0002": [{"ts": "now", "values": {}}, {"air_temp_c": 5}],
            "gw-0003": "oops"}
    dec = decode_thingsboard.decode("v1/gateway/telemetry", json.dumps(body).encode(), V)
    assert readings(dec) == [("gw-0001", "air_temp_c", at(int(NOW * 1000)), 23.4),
                             ("gw-0002", "air_temp_c", at(int(NOW * 1000)), 5.0)]
    assert sorted((r.reason, r.device_id) for r in dec.rejects) == [
        ("bad_schema", "gw-0003"), ("out_of_range", "gw-0001"), ("unknown_device", "gw-9999"),
        ("wrong_type", "gw-0002")]


# --------------------------------------------------------------------------------------- never raising

TOPICS = ["orchards/WS-0001/gw-0001/up", CS_TOPIC, "v1/gateway/telemetry", "something/else"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(
        st.sampled_from(["v", "gw", "t", "ts", "values", "samples", "object", "time", "deviceInfo", "devEui",
                         "rxInfo", "rssi", "gw-0001", "air_temp_c", "battery_v"]) | st.text(max_size=5), ch,
        max_size=5), max_leaves=25)


def _check(dec: Decoded) -> None:
    assert isinstance(dec, Decoded)
    for device_id, metric, when, value in dec.readings:
        lo, hi = METRICS[metric].lo, METRICS[metric].hi
        assert lo <= value <= hi and math.isfinite(value) and device_id in DEVICES
        assert type(value) is float and when.tzinfo is not None
    for h in dec.health:
        for name, x in (("battery_v", h.battery_v), ("rssi_dbm", h.rssi_dbm)):
            assert x is None or HEALTH_METRICS[name].lo <= x <= HEALTH_METRICS[name].hi
    for rj in dec.rejects:
        assert rj.reason in REASONS, rj


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TOPICS), st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(topic: str, payload: bytes) -> None:
    _check(decode_message(topic, payload, V))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TOPICS), json_values)
def test_arbitrary_json_never_raises(topic: str, value: Any) -> None:
    _check(decode_message(topic, json.dumps(value).encode(), V))


@settings(max_examples=200)
@given(json_values, json_values)
def test_near_valid_documents_never_raise(sample: Any, obj: Any) -> None:
    _check(decode_message(TOPICS[0], native([sample, {"t": int(NOW), "air_temp_c": sample}]), V))
    _check(decode_message(CS_TOPIC, chirpstack(obj), V))
    _check(decode_message(CS_TOPIC, chirpstack({"samples": [sample, obj]}), V))
    _check(decode_message(TOPICS[2], json.dumps({"gw-0001": [sample, {"ts": obj, "values": sample}]}).encode(), V))


def test_prefix_is_required_when_configured() -> None:
    good = native([{"t": int(NOW), "air_temp_c": 1.0}])
    assert len(decode_message("p1/orchards/WS-0001/gw-0001/up", good, V, prefix="p1/").readings) == 1
    assert reasons(decode_message("orchards/WS-0001/gw-0001/up", good, V, prefix="p1/")) == ["unknown_topic"]


# ------------------------------------------------------------------ native: typed fast path = general path

def _general(topic: str, payload: bytes) -> Decoded:
    return validate.guarded_decode(decode_native.FORMAT, decode_native._decode_general, topic, payload, V)


def _same(a: Decoded, b: Decoded) -> None:
    assert (a.rows, a.n_readings, a.health, a.rejects, a.per_device, a.seq) == \
        (b.rows, b.n_readings, b.health, b.rejects, b.per_device, b.seq)
    for r in a.rows:
        assert all(x is None or type(x) is float for x in r[2:])


_in_range = st.sampled_from(sorted(METRICS)).flatmap(lambda m: st.floats(METRICS[m].lo, METRICS[m].hi))
_any_value = st.one_of(
    st.floats(-1e6, 1e6), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
    st.integers(-100, 1500), st.none(), st.booleans(), st.sampled_from(["12.5", "nan", "", "x"]))
_times = st.one_of(times_ms.map(lambda ms: ms // 1000), times_ms.map(lambda ms: ms / 1000),
                   st.integers(-10**17, 10**17), st.floats(allow_nan=True, allow_infinity=True), st.none(),
                   st.booleans(), st.just("1751328000"))


@st.composite
def _native_sample(draw: st.DrawFn) -> dict[str, Any]:
    names = sorted(METRICS) + sorted(HEALTH_METRICS) + ["junk"]
    keys = draw(st.lists(st.sampled_from(names), max_size=14, unique=True))
    mostly_valid = draw(st.booleans())
    s: dict[str, Any] = {}
    if draw(st.integers(0, 9)):  # sometimes no "t" at all
        s["t"] = draw(times_ms.map(lambda ms: ms // 1000) if mostly_valid else _times)
    for k in keys:
        if k in METRICS:
            s[k] = draw(st.floats(METRICS[k].lo, METRICS[k].hi) if mostly_valid else _any_value)
        elif k in HEALTH_METRICS:
            s[k] = draw(st.floats(HEALTH_METRICS[k].lo, HEALTH_METRICS[k].hi) if mostly_valid else _any_value)
        else:
            s[k] = draw(_any_value)
    return s


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_native_sample(), max_size=6),
       st.sampled_from([1, 1, 1, 2, "1", None]),
       st.sampled_from(["gw-0001", "gw-0001", "gw-0002", 5]),
       st.sampled_from([7, 0, -1, 2**63, 2**64, "7", None, ...]),
       st.sampled_from(["orchards/WS-0001/gw-0001/up", "orchards/WS-0001/gw-0001/up",
                        "orchards/WS-0002/gw-0001/up", "orchards/WS-0009/gw-9999/up", "other/topic"]),
       st.sampled_from(["", "dup-bad-first", "dup-good-first", "truncate"]))
def test_native_typed_fast_path_equals_the_general_path(samples: list[dict[str, Any]], ver: Any, gw: Any,
                                                        seq: Any, topic: str, mangle: str) -> None:
    doc: dict[str, Any] = {"v": ver, "gw": gw, "sent_at": int(NOW), "samples": samples}
    if seq is not ...:
        doc["seq"] = seq
    body = json.dumps(doc)
    # duplicate keys: JSON parsers keep the last one; both paths must agree on which value counts
    if mangle == "dup-bad-first":
        body = body.replace('"air_temp_c": ', '"air_temp_c": 1e3, "air_temp_c": ', 1)
    elif mangle == "dup-good-first":
        body = body.replace('"air_temp_c": ', '"air_temp_c": 20.5, "air_temp_c": ', 1)
    elif mangle == "truncate":
        body = body[: len(body) // 2]
    _same(decode_native.decode(topic, body.encode(), V), _general(topic, body.encode()))


def test_native_typed_fast_path_takes_the_ordinary_message() -> None:
    body = native([{"t": int(NOW) - 300, "air_temp_c": 21, "soil_vwc_10cm": 0.31, "battery_v": 3.9},
                   {"t": int(NOW) - 600, "rain_mm": None}])
    dec = Decoded(fmt="native")
    assert decode_native._decode_typed(dec, "orchards/WS-0001/gw-0001/up", body, V)
    _same(dec, _general("orchards/WS-0001/gw-0001/up", body))
    assert dec.n_readings == 2 and len(dec.rows) == 1 and len(dec.health) == 1
    # a value out of its physical range: the typed path declines, the general path gives the reason
    bad = native([{"t": int(NOW) - 300, "air_temp_c": 99.0}])
    assert not decode_native._decode_typed(Decoded(fmt="native"), "orchards/WS-0001/gw-0001/up", bad, V)
    assert reasons(decode_native.decode("orchards/WS-0001/gw-0001/up", bad, V)) == ["out_of_range"]
