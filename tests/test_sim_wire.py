"""Each wire format's JSON shape, per docs/wire-format.md and the vendors' public specs."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.metrics import GATEWAY_METRICS as METRICS
from registry.metrics import HEALTH_METRICS
from registry.seed import SeedParams, generate
from sim_sensors import wire
from sim_sensors.faults import FaultConfig
from sim_sensors.replay import replay_day
from sim_sensors.sensors import SAMPLE_KEYS

DAY = dt.date(2026, 6, 2)


@pytest.fixture(scope="module")
def devices() -> list[dict[str, Any]]:
    return generate(SeedParams()).devices[:12]


def _messages(devices: list[dict[str, Any]], fmt: str, **kw: Any) -> list[Any]:
    msgs, _ = replay_day(devices, DAY, fmt=fmt, seed=2, topic_prefix="yc-x/", **kw)
    return list(msgs)


def test_native_batch(devices: list[dict[str, Any]]) -> None:
    ms = _messages(devices, "native")
    seqs: dict[str, list[int]] = {}
    for m in ms:
        parts = m.topic.split("/")
        assert parts[0] == "yc-x" and parts[1] == "orchards" and parts[4] == "up"
        doc = json.loads(m.payload)
        assert set(doc) == {"v", "gw", "seq", "sent_at", "samples"}
        assert doc["v"] == 1 and doc["gw"] == parts[3]
        assert re.fullmatch(r"WS-\d{4}", parts[2]) and re.fullmatch(r"gw-\d{4}", doc["gw"])
        assert isinstance(doc["seq"], int) and doc["seq"] >= 0
        assert isinstance(doc["sent_at"], int)
        for s in doc["samples"]:
            assert isinstance(s["t"], int) and s["t"] <= doc["sent_at"]
            assert set(s) == {"t", *SAMPLE_KEYS}
            for k in METRICS:
                assert isinstance(s[k], float | int) and METRICS[k].lo <= s[k] <= METRICS[k].hi
            assert isinstance(s["rssi_dbm"], int)
        seqs.setdefault(doc["gw"], []).append(doc["seq"])
    assert all(v == list(range(len(v))) for v in seqs.values()), "seq counts each gateway's messages"


def test_chirpstack_uplink_event(devices: list[dict[str, Any]]) -> None:
    euis = {d["dev_eui"]: d for d in devices}
    ms = _messages(devices, "chirpstack", samples_per_message=1)
    strings = numbers = 0
    app_ids = set()
    for m in ms[:600]:
        mt = re.fullmatch(r"yc-x/application/([0-9a-f-]{36})/device/([0-9a-f]{16})/event/up", m.topic)
        assert mt, m.topic
        app_ids.add(mt.group(1))
        doc = json.loads(m.payload)
        for key in ("deduplicationId", "time", "deviceInfo", "devAddr", "adr", "dr", "fCnt", "fPort",
                    "confirmed", "data", "object", "rxInfo", "txInfo"):
            assert key in doc, key
        uuid.UUID(doc["deduplicationId"])
        info = doc["deviceInfo"]
        for key in ("tenantId", "tenantName", "applicationId", "applicationName", "deviceProfileId",
                    "deviceProfileName", "deviceName", "devEui", "tags"):
            assert key in info, key
        assert info["applicationId"] == mt.group(1) and info["devEui"] == mt.group(2)
        assert info["devEui"] in euis and info["deviceName"] == euis[info["devEui"]]["device_id"]
        t = dt.datetime.fromisoformat(doc["time"].replace("Z", "+00:00"))
        assert t.tzinfo is not None and t.timestamp() % 300 == 0, "a flat object is measured at `time`"
        assert re.fullmatch(r"[0-9a-f]{8}", doc["devAddr"])
        assert isinstance(doc["fCnt"], int) and isinstance(doc["adr"], bool)
        raw = base64.b64decode(doc["data"], validate=True)
        assert len(raw) == wire._FRAME.size
        obj = doc["object"]
        assert set(obj) == set(wire.CHIRPSTACK_OBJECT_KEYS)
        for v in obj.values():
            if isinstance(v, str):
                strings += 1
                float(v)
            else:
                numbers += 1
        rx = doc["rxInfo"][0]
        for key in ("gatewayId", "uplinkId", "rssi", "snr"):
            assert key in rx
        assert re.fullmatch(r"[0-9a-f]{16}", rx["gatewayId"])
        assert HEALTH_METRICS["rssi_dbm"].lo <= rx["rssi"] <= 0
        assert 470_000_000 <= doc["txInfo"]["frequency"] <= 510_000_000
        assert doc["txInfo"]["modulation"]["lora"]["spreadingFactor"] in range(7, 13)
    assert strings and numbers, "some device profiles' codecs emit numeric strings, others numbers"
    assert len(app_ids) == 1


def test_chirpstack_buffered_uplink_carries_samples(devices: list[dict[str, Any]]) -> None:
    ms = _messages(devices, "chirpstack", samples_per_message=6)
    doc = json.loads(ms[0].payload)
    assert len(doc["object"]["samples"]) == 6
    assert all(isinstance(s["t"], int) for s in doc["object"]["samples"])
    sent = dt.datetime.fromisoformat(doc["time"].replace("Z", "+00:00")).timestamp()
    assert sent >= max(s["t"] for s in doc["object"]["samples"])


def test_thingsboard_gateway_telemetry(devices: list[dict[str, Any]]) -> None:
    ms = _messages(devices, "thingsboard", devices_per_message=4)
    multi = 0
    for m in ms:
        assert m.topic == "yc-x/v1/gateway/telemetry"
        doc = json.loads(m.payload)
        assert isinstance(doc, dict) and doc
        multi += len(doc) > 1
        for dev, entries in doc.items():
            assert re.fullmatch(r"gw-\d{4}", dev)
            for e in entries:
                assert set(e) == {"ts", "values"}
                assert isinstance(e["ts"], int) and e["ts"] > 1.7e12, "epoch milliseconds"
                assert set(e["values"]) == set(SAMPLE_KEYS)
    assert multi > 0, "one message may carry several devices"


def test_invalid_readings_are_nan_tokens_or_out_of_range(devices: list[dict[str, Any]]) -> None:
    cfg = FaultConfig(invalid_prob=0.02, invalid_nan_share=0.5, missing_prob=0.02)
    msgs, ledger = replay_day(devices, DAY, faults=cfg, seed=4)
    nan = out = missing = 0
    for m in msgs:
        if b"NaN" in m.payload:
            nan += 1
        for s in json.loads(m.payload)["samples"]:
            missing += len(set(SAMPLE_KEYS) - set(s))
            out += sum(1 for k in METRICS if k in s and not math.isnan(s[k])
                       and not METRICS[k].lo <= s[k] <= METRICS[k].hi)
    assert nan > 0 and out > 0 and missing > 0
    assert ledger.invalid_readings > out


finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@given(row=st.lists(st.one_of(finite, st.just(math.nan)), min_size=len(SAMPLE_KEYS), max_size=len(SAMPLE_KEYS)),
       missing=st.lists(st.booleans(), min_size=len(SAMPLE_KEYS), max_size=len(SAMPLE_KEYS)),
       t=st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_sample_encoding_round_trips(row: list[float], missing: list[bool], t: int) -> None:
    """Whatever the values (including NaN) and gaps, samples are JSON that parse back to the values
    at the printed resolution, and the key set is exactly the non-missing keys."""
    for text, get in ((wire.native_sample(t, row, missing), lambda d: {k: v for k, v in d.items() if k != "t"}),
                      (wire.tb_sample(t, row, missing), lambda d: d["values"])):
        doc = json.loads(text)
        vals = get(doc)
        assert set(vals) == {k for k, miss in zip(SAMPLE_KEYS, missing, strict=True) if not miss}
        for k, v in vals.items():
            x = row[SAMPLE_KEYS.index(k)]
            if math.isnan(x):
                assert math.isnan(v)
            else:
                assert v == pytest.approx(x, abs=0.51 * 10 ** -wire.DECIMALS[k] + 1e-9)
    if not any(missing) and not any(math.isnan(x) for x in row):
        assert wire.native_sample(t, row, None) == wire.native_sample(t, row, [False] * len(row))
