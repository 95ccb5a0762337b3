"""Device profiles end to end through the real broker, ingest and database: each built-in vendor profile's
published example uplinks (tests/data/vendor_uplinks) arrive as ChirpStack v4 events and are stored with
exactly the expected values in yuncang units; unmapped keys are persisted per device, dead-lettered at a
limited rate, shown by the API and flag the device on the manager's device view."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.service import IngestConfig, IngestService
from ingest.testing import chirpstack_payload, chirpstack_topic, publish_all

pytestmark = pytest.mark.timeout(240)
DATA = Path(__file__).parent / "data" / "vendor_uplinks"
PROFILES = sorted(p.stem for p in DATA.glob("*.json"))


def q(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


async def until(cond: Any, timeout: float = 60.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_vendor_examples_through_broker_and_ingest(ingest_db: str, mqtt_url: str, prefix: str) -> None:
    devs = q(ingest_db, "SELECT device_id, dev_eui FROM devices ORDER BY device_id OFFSET 700 LIMIT %s",
             len(PROFILES) + 1)
    with psycopg.connect(ingest_db) as c:
        for (dev, _), profile in zip(devs, PROFILES, strict=False):
            c.execute("UPDATE devices SET profile = %s WHERE device_id = %s", (profile, dev))
    when = datetime.fromtimestamp(int(time.time()) // 60 * 60 - 600, UTC)
    msgs, expected = [], {}
    for (dev, eui), profile in zip(devs, PROFILES, strict=False):
        doc = json.loads((DATA / f"{profile}.json").read_text())
        want: dict[str, float] = {}
        for k, ex in enumerate(doc["examples"]):
            # one uplink per example, a minute apart (each example's values at its own time)
            t = datetime.fromtimestamp(when.timestamp() + 60 * k, UTC)
            msgs.append((chirpstack_topic(eui, prefix=prefix), chirpstack_payload(dev, eui, t, ex["data"], f_cnt=k)))
            want.update({f"{m}@{k}": x for m, x in ex["expected"].items()})
            want.update({f"{m}@{k}": x for m, x in ex.get("expected_health", {}).items()})
        expected[dev] = want
    # a device whose profile maps none of what it sends: every message arrives, nothing is stored
    odd_dev, odd_eui = devs[len(PROFILES)]
    with psycopg.connect(ingest_db) as c:
        c.execute("UPDATE devices SET profile = 'dragino-lht65' WHERE device_id = %s", (odd_dev,))
    odd = [(chirpstack_topic(odd_eui, prefix=prefix),
            chirpstack_payload(odd_dev, odd_eui, datetime.fromtimestamp(when.timestamp() + 60 * k, UTC),
                               {"temp_c": 20 + k, "rh": 50}, f_cnt=k)) for k in range(3)]
    cfg = IngestConfig(database_url=ingest_db, mqtt_url=mqtt_url, topic_prefix=prefix,
                       client_id=f"yc-ingest-test-{secrets.token_hex(4)}", shared_group=f"g{secrets.token_hex(3)}",
                       session_expiry_s=60, refresh_every_s=0)
    svc = IngestService(cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        await asyncio.wait_for(svc.ready.wait(), 20)
        await publish_all(mqtt_url, [*msgs, *odd])
        await until(lambda: svc.stats.messages >= len(msgs) + len(odd), what="all messages committed")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    for dev, want in expected.items():
        got = {f"{m}@{round((t - when).total_seconds() / 60)}": v for m, t, v in q(
            ingest_db, "SELECT metric, time, value FROM readings WHERE device_id = %s", dev)}
        health = q(ingest_db, "SELECT battery_v, battery_at FROM device_health WHERE device_id = %s", dev)[0]
        if health[0] is not None:
            got[f"battery_v@{round((health[1] - when).total_seconds() / 60)}"] = health[0]
        assert got.keys() == want.keys(), dev
        for k, x in want.items():
            assert got[k] == pytest.approx(x, rel=1e-12), (dev, k)
    assert q(ingest_db, "SELECT count(*) FROM dead_letters WHERE device_id = ANY(%s)", list(expected)) == [(0,)]
    # the odd device: its keys are counted per device (3 messages each), dead-lettered once per key
    assert q(ingest_db, "SELECT key, count, sample_value FROM device_unmapped_keys WHERE device_id = %s"
             " ORDER BY key", odd_dev) == [("rh", 3, "50"), ("temp_c", 3, "22")]
    assert q(ingest_db, "SELECT reason, count(*) FROM dead_letters WHERE device_id = %s GROUP BY reason",
             odd_dev) == [("unmapped_key", 2)]
    assert q(ingest_db, "SELECT messages, readings, last_reading_at FROM device_health WHERE device_id = %s",
             odd_dev) == [(3, 0, None)]
    # the manager's device view flags it (heard, nothing stored), not as healthy
    from ingest.read import device_health
    from registry.read import OrchardScope

    with psycopg.connect(ingest_db) as c:
        h = device_health(c, scope=OrchardScope(everything=True), limit=2000)
    row = next(d for d in h["items"] if d["device_id"] == odd_dev)
    assert row["stores_nothing"] is True and row["unmapped_keys"] == 2 and row["silent"] is True
    assert all(not d["stores_nothing"] for d in h["items"] if d["device_id"] in expected)


async def test_rain_counter_continues_across_an_ingest_restart(ingest_db: str, mqtt_url: str, prefix: str) -> None:
    """A running rain total's baseline is committed with the batch: a new ingest process continues it."""
    (dev, eui), = q(ingest_db, "SELECT device_id, dev_eui FROM devices ORDER BY device_id OFFSET 760 LIMIT 1")
    with psycopg.connect(ingest_db) as c:
        c.execute("UPDATE devices SET profile = 'milesight-wts506' WHERE device_id = %s", (dev,))
    t0 = int(time.time()) // 60 * 60 - 1800

    def msg(k: int, total: float) -> tuple[str, bytes]:
        return (chirpstack_topic(eui, prefix=prefix),
                chirpstack_payload(dev, eui, datetime.fromtimestamp(t0 + 300 * k, UTC),
                                   {"rainfall_total": total, "rainfall_counter": 1, "temperature": 20.0}, f_cnt=k))

    for batch in ([msg(0, 50.6), msg(1, 51.0)], [msg(2, 52.5), msg(3, 0.25)]):  # 0.25: the gauge was reset
        cfg = IngestConfig(database_url=ingest_db, mqtt_url=mqtt_url, topic_prefix=prefix,
                           client_id=f"yc-ingest-test-{secrets.token_hex(4)}",
                           shared_group=f"g{secrets.token_hex(3)}", session_expiry_s=60, refresh_every_s=0)
        svc = IngestService(cfg)
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        try:
            await asyncio.wait_for(svc.ready.wait(), 20)
            await publish_all(mqtt_url, batch)
            await until(lambda svc=svc: svc.stats.messages >= 2, what="2 messages committed")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    rain = q(ingest_db, "SELECT time, value FROM readings WHERE device_id = %s AND metric = 'rain_mm' ORDER BY time",
             dev)
    assert [(int(t.timestamp()) - t0, v) for t, v in rain] == [(300, pytest.approx(0.4)), (600, pytest.approx(1.5)),
                                                                (900, 0.25)]
    assert q(ingest_db, "SELECT last_total FROM device_counter_state WHERE device_id = %s", dev) == [(0.25,)]
