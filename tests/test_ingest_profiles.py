"""Device profiles (ingest/profiles): the vendors' published example uplinks store exactly the expected
values in yuncang units, a new profile file works without code changes, every key is stored, ignored or
counted as unmapped, and profile files are validated with errors naming file, key and problem."""

from __future__ import annotations

import base64
import itertools
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.decode import decode_message
from ingest.model import Decoded
from ingest.profiles import Catalogue, ProfileError, parse_profile
from ingest.testing import chirpstack_payload, chirpstack_topic
from ingest.validate import DeviceCache, Validator
from registry.metrics import HEALTH_METRICS, METRICS

DATA = Path(__file__).parent / "data" / "vendor_uplinks"
NOW = 1_751_328_600.0  # 2025-07-01T00:10:00Z
WHEN = datetime.fromtimestamp(NOW - 60, UTC)
VENDOR_PROFILES = sorted(p.stem for p in DATA.glob("*.json"))


def eui(i: int) -> str:
    return f"a84041000000{i:04x}"


def validator(profiles: dict[str, str | None], catalogue: Catalogue | None = None) -> Validator:
    """Devices dev-<profile> (DevEUI eui(i)) with the given profile ids."""
    ids = list(profiles)
    cache = DeviceCache({d: "WS-0001" for d in ids}, {eui(i): d for i, d in enumerate(ids)}, 0.0,
                        {d: p for d, p in profiles.items() if p})
    return Validator(cache, clock=lambda: NOW, profiles=catalogue)


def values_of(dec: Decoded) -> dict[str, float]:
    out: dict[str, float] = {}
    for _dev, metric, _t, value in dec.readings:
        out[metric] = value
    for h in dec.health:
        if h.battery_v is not None:
            out["battery_v"] = h.battery_v
    return out


def chirpstack(v: Validator, device: str, obj: Any, when: datetime = WHEN) -> Decoded:
    i = list(v.devices.orchard_of).index(device)
    return decode_message(chirpstack_topic(eui(i)), chirpstack_payload(device, eui(i), when, obj), v)


@pytest.mark.parametrize("profile", VENDOR_PROFILES)
def test_vendor_examples_store_exactly_the_expected_values(profile: str) -> None:
    doc = json.loads((DATA / f"{profile}.json").read_text())
    assert doc["source"]
    for ex in doc["examples"]:
        v = validator({"dev": profile})
        dec = chirpstack(v, "dev", ex["data"])
        expected = {**ex["expected"], **ex.get("expected_health", {})}
        got = values_of(dec)
        assert got.keys() == expected.keys(), ex["description"]
        for k, x in expected.items():
            assert got[k] == pytest.approx(x, rel=1e-12, abs=1e-12), (ex["description"], k)
        assert dec.rejects == [], ex["description"]
        # every key of the vendor's decoded output is stored or ignored by the profile: none unmapped
        assert dec.unmapped == {}, ex["description"]
        # readings are in yuncang units and inside the catalogue's physical ranges
        for _d, metric, t, value in dec.readings:
            m = METRICS[metric]
            assert m.lo <= value <= m.hi and t == WHEN


def test_every_builtin_profile_has_vendor_examples() -> None:
    cat = Catalogue.load()
    tested = set(VENDOR_PROFILES) | {"yuncang-native", "tts-normalized"}  # both tested below
    assert set(cat.by_id) == tested


def test_chirpstack_v3_both_encodings_store_like_v4() -> None:
    doc = json.loads((DATA / "dragino-lse01.json").read_text())
    data = doc["examples"][0]["data"]
    v = validator({"dev": "dragino-lse01"})
    want = values_of(chirpstack(v, "dev", data))
    rx = [{"gatewayID": "0303030303030303", "time": WHEN.isoformat().replace("+00:00", "Z"), "rssi": -48,
           "loRaSNR": 9}]
    json_v3 = {"applicationID": "123", "applicationName": "soil", "deviceName": "lse01", "devEUI": eui(0),
               "rxInfo": rx, "txInfo": {"frequency": 868100000, "dr": 5}, "adr": False, "fCnt": 10, "fPort": 2,
               "data": "zikA8QelCZtuKJA=", "object": data, "tags": {}}
    proto_json = {**json_v3, "devEUI": base64.b64encode(bytes.fromhex(eui(0))).decode(),
                  "objectJSON": json.dumps(data)}
    del proto_json["object"]
    for payload in (json_v3, proto_json):
        dec = decode_message(chirpstack_topic(eui(0)), json.dumps(payload).encode(), v)
        assert dec.rejects == [] and values_of(dec) == want
        assert dec.fmt == "chirpstack_v3"
        assert [h.rssi_dbm for h in dec.health if h.rssi_dbm is not None] == [-48.0]


def _tts(dev_eui: str, decoded: Any, normalized: Any = None) -> bytes:
    up: dict[str, Any] = {"f_port": 1, "f_cnt": 7, "frm_payload": "AXUyA2fIAARoPA==", "decoded_payload": decoded,
                          "rx_metadata": [{"gateway_ids": {"gateway_id": "gw"}, "rssi": -71, "snr": 8.5}],
                          "received_at": WHEN.isoformat().replace("+00:00", "Z")}
    if normalized is not None:
        up["normalized_payload"] = normalized
    return json.dumps({"end_device_ids": {"device_id": "em300", "application_ids": {"application_id": "app"},
                                          "dev_eui": dev_eui.upper(), "dev_addr": "260BE6BF"},
                       "received_at": WHEN.isoformat().replace("+00:00", "Z"), "uplink_message": up}).encode()


def test_the_things_stack_decoded_and_normalized_payloads() -> None:
    ex = json.loads((DATA / "milesight-em300-th.json").read_text())["examples"][0]
    topic = "v3/app@ttn/devices/em300/up"
    # a device with its own profile: decoded_payload through it
    v = validator({"dev": "milesight-em300-th"})
    dec = decode_message(topic, _tts(eui(0), ex["data"], ex["normalized"]), v)
    assert dec.rejects == [] and values_of(dec) == ex["expected"]
    # a device without a profile: the generic normalized profile (the vendor's normalizedOutput); its
    # non-schema battVolt key is not silently dropped
    v = validator({"dev": None})
    dec = decode_message(topic, _tts(eui(0), ex["data"], ex["normalized"]), v)
    assert values_of(dec) == {"air_temp_c": 20.0, "air_rh_pct": 30.0}
    assert dec.unmapped == {("dev", "battVolt"): [1, "50"]}
    assert [h.rssi_dbm for h in dec.health] == [-71.0]
    # normalized measurements with their own times
    norm = [{"time": "2025-07-01T00:00:00Z", "soil": {"moisture": 31.5, "temperature": 18.25, "ec": 0.4,
                                                    "depth": 10}},
            {"time": "2025-07-01T00:05:00Z", "air": {"pressure": 1002.5, "lightIntensity": 5400}}]
    dec = decode_message(topic, _tts(eui(0), {}, norm), v)
    got = sorted((m, t.isoformat(), x) for _d, m, t, x in dec.readings)
    assert got == [("air_pressure_hpa", "2025-07-01T00:05:00+00:00", 1002.5),
                   ("illuminance_lux", "2025-07-01T00:05:00+00:00", 5400.0),
                   ("soil_ec_10cm_ds_m", "2025-07-01T00:00:00+00:00", 0.4),
                   ("soil_temp_10cm_c", "2025-07-01T00:00:00+00:00", 18.25),
                   ("soil_vwc_10cm", "2025-07-01T00:00:00+00:00", 0.315)]
    # an unknown DevEUI is dead-lettered with its reason
    dec = decode_message(topic, _tts("ffffffffffffffff", ex["data"]), v)
    assert [r.reason for r in dec.rejects] == ["unknown_device"]


def test_thingsboard_device_api_needs_the_device_in_the_topic() -> None:
    v = validator({"dev": None})  # a device speaking yuncang's metric names
    body = json.dumps({"ts": int((NOW - 60) * 1000), "values": {"air_temp_c": 3.5, "air_rh_pct": 91}}).encode()
    dec = decode_message("tb/dev/v1/devices/me/telemetry", body, v)
    assert values_of(dec) == {"air_temp_c": 3.5, "air_rh_pct": 91.0} and dec.rejects == []
    dec = decode_message("v1/devices/me/telemetry", body, v)
    assert [r.reason for r in dec.rejects] == ["unknown_device"] and not dec.readings
    dec = decode_message("tb/nobody/v1/devices/me/telemetry", body, v)
    assert [r.reason for r in dec.rejects] == ["unknown_device"]
    # a list of plain values objects (no ts: the ingest clock)
    dec = decode_message("tb/dev/v1/devices/me/telemetry", b'[{"air_temp_c": 4}]', v)
    assert values_of(dec) == {"air_temp_c": 4.0} and {t for _d, _m, t, _x in dec.readings} == {
        datetime.fromtimestamp(NOW, UTC)}


def test_milesight_history_records_keep_their_own_times() -> None:
    v = validator({"dev": "milesight-em500-smtc"})
    t1, t2 = int(NOW) - 3600, int(NOW) - 1800
    obj = {"battery": 88, "history": [{"timestamp": t2, "electricity": 310, "temperature": 19.5, "moisture": 30.25},
                                      {"timestamp": t1, "electricity": 300, "temperature": 19.0, "moisture": 30.5,
                                       "moisture_error": "collection failed"}]}
    dec = chirpstack(v, "dev", obj)
    got = sorted((int(t.timestamp()), m, x) for _d, m, t, x in dec.readings)
    assert got == sorted([(int(WHEN.timestamp()), "battery_pct", 88.0),
                          (t1, "soil_ec_10cm_ds_m", 0.3), (t1, "soil_temp_10cm_c", 19.0), (t1, "soil_vwc_10cm", 0.305),
                          (t2, "soil_ec_10cm_ds_m", 0.31), (t2, "soil_temp_10cm_c", 19.5),
                          (t2, "soil_vwc_10cm", 0.3025)])
    # a sensor error flag is surfaced as an unmapped key with its value, not ignored
    assert dec.unmapped == {("dev", "moisture_error"): [1, "collection failed"]}


def test_rain_counter_becomes_mm_per_interval_with_resets() -> None:
    v = validator({"dev": "milesight-wts506"})
    totals = [50.6, 51.0, 51.0, 53.25, 0.5, 1.5]  # the gauge resets between 53.25 and 0.5
    rain = []
    for k, total in enumerate(totals):
        when = datetime.fromtimestamp(NOW - 600 + 60 * k, UTC)
        dec = chirpstack(v, "dev", {"rainfall_total": total, "rainfall_counter": 37}, when)
        assert dec.rejects == [] and dec.unmapped == {}
        rain.append(values_of(dec).get("rain_mm"))
    assert rain[0] is None  # the first total only sets the baseline
    assert rain[1:] == pytest.approx([0.4, 0.0, 2.25, 0.5, 1.0])
    # a re-sent (not newer) total stores nothing
    dec = chirpstack(v, "dev", {"rainfall_total": 1.5}, datetime.fromtimestamp(NOW - 600 + 60 * 5, UTC))
    assert "rain_mm" not in values_of(dec)


def test_unmapped_and_bad_values_are_never_silent() -> None:
    v = validator({"dev": "dragino-lse01"})
    dec = chirpstack(v, "dev", {"water_SOIL": "abc", "temp_SOIL": 21.0, "new_sensor": 5, "nested": {"x": [1, 2]}})
    assert values_of(dec) == {"soil_temp_10cm_c": 21.0}
    assert [(r.reason, r.metric) for r in dec.rejects] == [("wrong_type", "soil_vwc_10cm")]
    assert dec.unmapped == {("dev", "new_sensor"): [1, "5"], ("dev", "nested.x"): [1, "[1, 2]"]}
    # out of physical range after conversion: 75 % is 0.75 m³/m³ > 0.6
    dec = chirpstack(v, "dev", {"water_SOIL": 75})
    assert [r.reason for r in dec.rejects] == ["out_of_range"]
    # a native gateway's unknown keys are counted too (not dropped by the typed fast path)
    nv = validator({"gw-0001": None})
    payload = json.dumps({"v": 1, "gw": "gw-0001", "seq": 1, "sent_at": NOW,
                          "samples": [{"t": NOW - 60, "air_temp_c": 20.5, "leaf_temp_c": 19.0}]}).encode()
    dec = decode_message("orchards/WS-0001/gw-0001/up", payload, nv)
    assert values_of(dec) == {"air_temp_c": 20.5}
    assert dec.unmapped == {("gw-0001", "samples[].leaf_temp_c"): [1, "19.0"]}


def test_a_new_profile_file_works_without_code_changes(tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text('''
id = "acme-soil-3"
name = "ACME three-depth soil probe"
formats = ["chirpstack_v4", "thingsboard_device"]
ignore = ["fw", "debug_*"]

[fields]
"probe.shallow.vwc" = { metric = "soil_vwc_10cm", unit = "percent" }
"probe.deep.vwc" = { metric = "soil_vwc_30cm", unit = "percent" }
"probe.deep.t_f" = { metric = "soil_temp_30cm_c", unit = "fahrenheit" }
press_kpa = { metric = "air_pressure_hpa", unit = "kpa" }
batt_mv = { metric = "battery_v", unit = "mv" }
lux = { metric = "illuminance_lux", scale = 10 }
''', encoding="utf-8")
    cat = Catalogue.load(tmp_path)
    assert "acme-soil-3" in cat and "dragino-lse01" in cat
    v = validator({"dev": "acme-soil-3"}, cat)
    obj = {"probe": {"shallow": {"vwc": 22.5}, "deep": {"vwc": 35, "t_f": 59}}, "press_kpa": 95.2, "batt_mv": 3610,
           "lux": 1234, "fw": "1.2", "debug_adc": 17}
    dec = chirpstack(v, "dev", obj)
    assert dec.rejects == [] and dec.unmapped == {}
    assert values_of(dec) == pytest.approx({"soil_vwc_10cm": 0.225, "soil_vwc_30cm": 0.35, "soil_temp_30cm_c": 15.0,
                                            "air_pressure_hpa": 952.0, "battery_v": 3.61, "illuminance_lux": 12340.0})
    # the profile does not list ThingsBoard gateway telemetry: refused with a reason
    dec = decode_message("v1/gateway/telemetry", json.dumps({"dev": [{"ts": int(NOW * 1000), "values": {}}]}).encode(),
                         v)
    assert [r.reason for r in dec.rejects] == ["profile_mismatch"]


@pytest.mark.parametrize(("text", "needle"), [
    ('id = "x"\nformats = ["chirpstack_v4"]\n[fields]\na = { metric = "soil_moisture" }',
     "fields.a.metric: 'soil_moisture' is not a metric"),
    ('id = "x"\nformats = ["chirpstack_v4"]\n[fields]\na = { metric = "air_rh_pct", unit = "percent" }',
     "fields.a.unit: 'percent' converts into m³/m³, but air_rh_pct is in '%'"),
    ('id = "x"\nformats = ["chirpstack_v4"]\n[fields]\na = { metric = "air_rh_pct", unit = "furlong" }',
     "fields.a.unit: unknown unit 'furlong'"),
    ('id = "x"\nformats = ["mqtt_json"]', "formats: must be a non-empty list"),
    ('id = "x"\nformats = ["chirpstack_v4"]\ncolour = 1', "colour: unknown key(s)"),
    ('id = "x"\nformats = ["chirpstack_v4"]\n[fields]\na = { metric = "air_temp_c", counter = "yes" }',
     "fields.a.counter: must be true or false"),
    ('id = "x"\nformats = ["chirpstack_v4"]\n[history]\ntime_key = "t"', "history.path: is required"),
    ('id = "x"\nformats = ["chirpstack_v4"\n', "not valid TOML"),
])
def test_profile_errors_name_file_key_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as exc:
        Catalogue.load(tmp_path)
    assert str(exc.value).startswith(str(tmp_path / "bad.toml")) and needle in str(exc.value)


def test_operator_profile_replaces_a_builtin_one_and_missing_dir_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "lse01.toml").write_text('id = "dragino-lse01"\nformats = ["chirpstack_v4"]\n'
                                         '[fields]\nwater_SOIL = { metric = "soil_vwc_30cm", unit = "percent" }\n')
    cat = Catalogue.load(tmp_path)
    assert cat.by_id["dragino-lse01"].fields["water_SOIL"].metric == "soil_vwc_30cm"
    with pytest.raises(ProfileError, match="does not exist"):
        Catalogue.load(tmp_path / "nope")


# ------------------------------------------------------------------------------------- properties

_keys = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters="."), min_size=1,
                max_size=12)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                     st.text(max_size=10))
_json = st.recursive(_scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(_keys, c, max_size=4)),
                     max_leaves=20)
_PROFILES = sorted(p.id for p in Catalogue.load().by_id.values() if "chirpstack_v4" in p.formats)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(_keys, _json, max_size=8), profile=st.sampled_from(_PROFILES))
def test_mapper_accounts_for_every_key_and_never_raises(obj: dict[str, Any], profile: str) -> None:
    v = validator({"dev": profile})
    dec = chirpstack(v, "dev", obj)
    assert not any(r.reason == "decoder_error" for r in dec.rejects)
    prof = v.profiles.by_id[profile]
    for key, raw in obj.items():
        if raw is None or prof.ignores(key):
            continue
        f = prof.field_for(key)
        if f is not None:  # mapped: stored, or refused with a reason naming its metric
            stored = f.metric in values_of(dec) or f.counter
            refused = any(r.metric == f.metric for r in dec.rejects)
            assert stored or refused or isinstance(raw, list | dict), (key, raw)
        elif key not in (prof.hist_path, prof.meas_path) and not isinstance(raw, dict):
            assert ("dev", key) in dec.unmapped, key
    for _d, metric, _t, value in dec.readings:
        assert math.isfinite(value) and METRICS[metric].lo <= value <= METRICS[metric].hi
    for h in dec.health:
        assert h.battery_v is None or HEALTH_METRICS["battery_v"].lo <= h.battery_v <= HEALTH_METRICS["battery_v"].hi


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.sampled_from(sorted(METRICS)), st.floats(-1e3, 1e6, allow_nan=False), min_size=1))
def test_native_profile_is_the_identity_on_catalogue_metrics(data: dict[str, float]) -> None:
    v = validator({"dev": None})
    dec = chirpstack(v, "dev", data)
    inside = {m: x for m, x in data.items() if METRICS[m].lo <= x <= METRICS[m].hi}
    assert values_of(dec) == inside
    assert sorted(r.metric for r in dec.rejects) == sorted(m for m in data if m not in inside)
    assert dec.unmapped == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 500, allow_nan=False), min_size=2, max_size=30))
def test_counter_increments_sum_to_the_total_rise_between_resets(totals: list[float]) -> None:
    from ingest.counters import CounterState

    c = CounterState()
    incs = [c.increment("d", "k", float(i), x) for i, x in enumerate(totals)]
    assert incs[0] is None
    assert all(i is not None and i >= 0 for i in incs[1:])
    # without resets the increments telescope to last - first
    if all(b >= a for a, b in itertools.pairwise(totals)):
        assert sum(incs[1:]) == pytest.approx(totals[-1] - totals[0], abs=1e-6)  # type: ignore[arg-type]


def test_parse_profile_rejects_non_table_field() -> None:
    with pytest.raises(ProfileError, match=r"mem: fields.a: must be a table"):
        parse_profile({"id": "x", "formats": ["tts_v3"], "fields": {"a": "air_temp_c"}}, "mem")
