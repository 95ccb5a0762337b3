"""replay_day: the ledger is exact (checked by decoding every payload independently), faults show up as
a real field would show them, and the stream is deterministic per seed."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from typing import Any

import pytest

from registry.metrics import GATEWAY_METRICS as METRICS
from registry.seed import SeedParams, generate
from sim_sensors.faults import FaultConfig
from sim_sensors.replay import Message, replay_day

DAY = dt.date(2026, 7, 21)
HARSH = FaultConfig(offline_prob=0.3, dead_battery_prob=0.08, skew_prob=0.3, clock_jump_prob=0.3,
                    stuck_prob=0.05, spike_prob=0.002, invalid_prob=0.002, missing_prob=0.002,
                    duplicate_prob=0.05)


@pytest.fixture(scope="module")
def devices() -> list[dict[str, Any]]:
    reg = generate(SeedParams())
    orch = {o["orchard_id"]: o for o in reg.orchards}
    return [dict(d, elevation_m=orch[d["orchard_id"]]["elevation_m"], lat=orch[d["orchard_id"]]["lat"],
                 lon=orch[d["orchard_id"]]["lon"]) for d in reg.devices[:40]]


def _num(v: Any) -> float | None:
    """A reading value as ingest would see it: numbers, numeric strings (ChirpStack codecs), null = none."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise AssertionError("booleans are not readings")
    if isinstance(v, str):
        return float(v)
    return float(v)


def decode(m: Message, eui_to_dev: dict[str, str], prefix: str = "") -> list[tuple[str, str, int, float]]:
    """(device, metric, t seconds, value) of every reading in ``m``, per docs/wire-format.md."""
    assert m.topic.startswith(prefix)
    topic = m.topic[len(prefix):]
    doc = json.loads(m.payload)            # Python's json accepts the NaN token the fault injects
    out: list[tuple[str, str, int, float]] = []

    def sample(dev: str, t: int, values: dict[str, Any]) -> None:
        for k, v in values.items():
            if k in METRICS:
                x = _num(v)
                if x is not None:
                    out.append((dev, k, t, x))

    if topic.startswith("orchards/"):
        _, _orchard, gw, up = topic.split("/")
        assert up == "up" and doc["gw"] == gw and doc["v"] == 1
        for s in doc["samples"]:
            sample(gw, int(s["t"]), s)
    elif topic.startswith("application/"):
        dev = eui_to_dev[doc["deviceInfo"]["devEui"]]
        obj = doc["object"]
        if "samples" in obj:
            for s in obj["samples"]:
                sample(dev, int(s["t"]), s)
        else:
            t = int(dt.datetime.fromisoformat(doc["time"].replace("Z", "+00:00")).timestamp())
            sample(dev, t, obj)
    else:
        assert topic == "v1/gateway/telemetry"
        for dev, entries in doc.items():
            for e in entries:
                assert e["ts"] % 1000 == 0
                sample(dev, e["ts"] // 1000, e["values"])
    return out


def valid(metric: str, v: float) -> bool:
    spec = METRICS[metric]
    return not math.isnan(v) and spec.lo <= v <= spec.hi


@pytest.mark.parametrize("fmt,spm,dpm", [("native", 12, 1), ("chirpstack", 1, 1), ("chirpstack", 6, 1),
                                         ("thingsboard", 12, 1), ("thingsboard", 3, 5)])
def test_ledger_is_exact_under_faults(devices: list[dict[str, Any]], fmt: str, spm: int, dpm: int) -> None:
    eui = {d["dev_eui"]: d["device_id"] for d in devices}
    msgs, ledger = replay_day(devices, DAY, fmt=fmt, samples_per_message=spm, faults=HARSH, seed=7,
                              topic_prefix="pfx/", devices_per_message=dpm)
    sent = invalid = 0
    stored: set[tuple[str, str, int]] = set()
    dup_from_resend = 0
    seen_payloads: set[bytes] = set()
    n = 0
    for m in msgs:
        n += 1
        readings = decode(m, eui, "pfx/")
        bad = sum(1 for _, k, _, v in readings if not valid(k, v))
        assert m.readings == len(readings)
        assert m.invalid_readings == bad
        assert m.duplicate == (m.payload in seen_payloads)
        seen_payloads.add(m.payload)
        sent += len(readings)
        invalid += bad
        for dev, k, t, v in readings:
            if valid(k, v):
                if (dev, k, t) in stored and m.duplicate:
                    dup_from_resend += 1
                stored.add((dev, k, t))
    assert ledger.messages == n
    assert ledger.readings_sent == sent
    assert ledger.invalid_readings == invalid
    assert ledger.expected_stored == len(stored), "rows that must be stored = unique valid (device, metric, t)"
    # the faults really happened
    assert ledger.messages_duplicated > 0 and dup_from_resend > 0
    assert invalid > 0
    assert ledger.duplicate_readings > dup_from_resend, "clock jumps re-stamp readings onto stored keys"


def test_offline_buffers_arrive_late_and_out_of_order(devices: list[dict[str, Any]]) -> None:
    msgs, _ = replay_day(devices, DAY, faults=HARSH, seed=7)
    late = shuffled = 0
    last_seen: dict[str, int] = {}
    for m in msgs:
        doc = json.loads(m.payload)
        ts = [s["t"] for s in doc["samples"]]
        if doc["sent_at"] - min(ts) > 7200:
            late += 1
            assert len(ts) > 12, "a buffered upload carries many samples in one message"
        if ts != sorted(ts):
            shuffled += 1
        last_seen[doc["gw"]] = doc["sent_at"]
    assert late >= 3 and shuffled >= 3
    # dead batteries: some gateways fall silent well before midnight
    end = int(dt.datetime(2026, 7, 21, 16, tzinfo=dt.UTC).timestamp())
    assert sum(1 for t in last_seen.values() if end - t > 3 * 3600) >= 1


def test_clean_day_has_exactly_every_reading(devices: list[dict[str, Any]]) -> None:
    msgs, ledger = replay_day(devices[:10], DAY, seed=3)
    ms = list(msgs)
    assert ledger.readings_sent == 10 * 288 * len(METRICS) == ledger.expected_stored
    assert ledger.duplicate_readings == ledger.invalid_readings == 0
    assert len(ms) == 10 * 24
    first = json.loads(ms[0].payload)
    midnight = int(dt.datetime(2026, 7, 21, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())
    assert first["samples"][0]["t"] == midnight, "a day is a local (Asia/Shanghai) day"
    assert all(s["t"] % 300 == 0 for m in ms for s in json.loads(m.payload)["samples"])


def test_deterministic_per_seed(devices: list[dict[str, Any]]) -> None:
    def run(seed: int) -> list[bytes]:
        msgs, _ = replay_day(devices[:8], DAY, fmt="chirpstack", samples_per_message=4, faults=HARSH, seed=seed)
        return [m.payload for m in msgs]

    a, b, c = run(1), run(1), run(2)
    assert a == b
    assert a != c


def test_clock_skew_stays_within_ingest_tolerance(devices: list[dict[str, Any]]) -> None:
    msgs, _ = replay_day(devices, DAY, faults=FaultConfig(skew_prob=1.0, duplicate_prob=0.0), seed=5)
    offsets = Counter()
    for m in msgs:
        for s in json.loads(m.payload)["samples"]:
            offsets[s["t"] % 300] += 1
    assert len(offsets) > 5, "skewed gateways stamp off the 5-minute grid"
    for m in replay_day(devices[:5], DAY, faults=FaultConfig(skew_prob=1.0), seed=5)[0]:
        doc = json.loads(m.payload)
        assert all(s["t"] <= doc["sent_at"] + 600 for s in doc["samples"])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        replay_day([], DAY, fmt="xml")
    with pytest.raises(ValueError, match="divide a day"):
        list(replay_day([{"device_id": "gw-1", "orchard_id": "WS-1", "dev_eui": "00"}], DAY, interval_s=7)[0])


def test_coarse_interval_keeps_faults_in_time(devices: list[dict[str, Any]]) -> None:
    """At the demo's coarse catch-up interval, faults are sized in time, not samples: clock jumps stay
    within an hour, and the ledger stays exact."""
    eui = {d["dev_eui"]: d["device_id"] for d in devices}
    msgs, ledger = replay_day(devices, DAY, interval_s=14400, samples_per_message=6, faults=HARSH, seed=9)
    midnight = int(dt.datetime(2026, 7, 21, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())
    stored = set()
    for m in msgs:
        for dev, k, t, v in decode(m, eui):
            assert midnight - 3600 - 240 <= t < midnight + 86400 + 240
            if valid(k, v):
                stored.add((dev, k, t))
    assert ledger.expected_stored == len(stored)
