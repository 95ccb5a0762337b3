"""Publishing to the real broker: every message of a replayed day arrives; the CLI and the demo
component publish under the deployment's topic prefix."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from sim_sensors.faults import FaultConfig
from sim_sensors.publisher import parse_mqtt_url, publish_messages
from sim_sensors.replay import replay_day
from sim_sensors.testing import collector, wait_for
from yuncang.commands.simulate import load_devices

DAY = dt.date(2026, 11, 10)


@pytest.fixture(scope="module")
def devices(db_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url) as conn:
        return load_devices(conn, 15)


async def test_replayed_day_arrives_complete(mqtt_url: str, topic_prefix: str,
                                             devices: list[dict[str, Any]]) -> None:
    prefix = f"{topic_prefix}simpub/"
    msgs, ledger = replay_day(devices, DAY, faults=FaultConfig(duplicate_prob=0.05, offline_prob=0.2), seed=3,
                              topic_prefix=prefix)
    async with collector(mqtt_url, f"{prefix}#") as got:
        stats = await publish_messages(msgs, mqtt_url, window=64)
        await wait_for(got, ledger.messages)
    assert stats.messages == ledger.messages == len(got)
    assert ledger.messages_duplicated > 0
    counts = Counter(p for _, p in got)
    assert sum(c - 1 for c in counts.values()) == ledger.messages_duplicated, "re-sends arrive byte-identical"
    readings = sum(sum(1 for s in json.loads(p)["samples"] for k in s if k not in
                       ("t", "battery_v", "rssi_dbm")) for _, p in got)
    assert readings == ledger.readings_sent
    assert all(t.startswith(prefix + "orchards/WS-") for t, _ in got)


async def test_cli_replay_day(db_url: str, mqtt_url: str, topic_prefix: str) -> None:
    prefix = f"{topic_prefix}simcli/"
    env = {**os.environ, "YUNCANG_DATABASE_URL": db_url, "YUNCANG_MQTT_URL": mqtt_url,
           "YUNCANG_MQTT_TOPIC_PREFIX": prefix}
    async with collector(mqtt_url, f"{prefix}#") as got:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "yuncang", "simulate", "--replay-day", "2026-11-11", "--orchards", "6",
            "--format", "thingsboard", "--faults", "none",
            "--no-wait-for-ingest", env=env,  # a collector, not ingest, reads them: no commits to wait for
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
        result = json.loads(out.decode().strip().splitlines()[-1])
        await wait_for(got, result["messages"])
    assert result["gateways"] == 6 and result["messages"] == 6 * 24 == len(got)
    assert result["readings_sent"] == result["expected_stored"] == 6 * 288 * 10
    assert all(t == prefix + "v1/gateway/telemetry" for t, _ in got)


async def test_demo_component_catches_up_then_runs(db_url: str, mqtt_url: str, topic_prefix: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from yuncang.components import simulator
    from yuncang.runtime import Runtime
    from yuncang.settings import Settings

    prefix = f"{topic_prefix}simdemo/"
    monkeypatch.setenv("YUNCANG_SIM_ORCHARDS", "4")
    monkeypatch.setenv("YUNCANG_SIM_BACKFILL_DAYS", "2")
    monkeypatch.setenv("YUNCANG_SIM_FORMAT", "chirpstack")
    settings = Settings(mqtt_topic_prefix=prefix)
    pool = ConnectionPool(db_url, min_size=1, max_size=2, open=True)
    rt = Runtime(settings=settings, database_url=db_url, mqtt_url=mqtt_url, pool=pool, embedded=False,
                 time_scale=86400.0)
    stop = asyncio.Event()
    try:
        async with collector(mqtt_url, f"{prefix}#") as got:
            task = asyncio.create_task(simulator.run(rt, stop))
            await asyncio.sleep(10.0)
            stop.set()
            await asyncio.wait_for(task, timeout=20)
    finally:
        pool.close()
    assert got, "the simulator published"
    times = []
    for _, p in got:
        doc = json.loads(p)
        obj = doc["object"]
        times += [s["t"] for s in obj["samples"]] if "samples" in obj else [
            dt.datetime.fromisoformat(doc["time"].replace("Z", "+00:00")).timestamp()]
    now = dt.datetime.now(dt.UTC).timestamp()
    assert min(times) < now - 86400, "the backfill covers past days"
    assert max(times) <= now + 600, "never from the future"
    assert max(times) > now - 3600, "today's hours up to now are filled in before running live"
    assert {json.loads(p)["deviceInfo"]["deviceName"] for _, p in got} == {"gw-0001", "gw-0002", "gw-0003",
                                                                          "gw-0004"}


def test_catch_up_interval_budget() -> None:
    from yuncang.components.simulator import catch_up_interval

    assert catch_up_interval(1546, 3600, 4000) == 14400
    assert catch_up_interval(10, 1, 4000) == 300
    assert 86400 % catch_up_interval(1546, 86400, 100) == 0


def test_sim_clock_accelerates_but_never_passes_now() -> None:
    import time

    from sim_sensors.publisher import SimClock

    now = time.time()
    clock = SimClock(start=now - 3600, scale=3600)
    assert clock.wall_delay(now - 3600) == 0.0
    assert 0.3 < clock.wall_delay(now - 1800) < 0.6, "half an hour of the past takes half a second"
    assert 9.0 < clock.wall_delay(now + 10) < 10.5, "the future arrives in real time"
    assert clock.now() <= time.time()


def test_parse_mqtt_url() -> None:
    a = parse_mqtt_url("mqtt://u%40x:p%2Fw@broker.example:1884")
    assert (a.host, a.port, a.username, a.password, a.protocol) == ("broker.example", 1884, "u@x", "p/w", "auto")
    assert parse_mqtt_url("mqtt5://h").protocol == "5"
    assert parse_mqtt_url("mqtt://h?protocol=4").protocol == "3.1.1"
    assert parse_mqtt_url("mqtt://h").port == 1883
    with pytest.raises(ValueError, match="scheme"):
        parse_mqtt_url("http://h")
