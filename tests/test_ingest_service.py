"""Ingest end to end against the real broker and database: every wire format, duplicates, late and
out-of-order data, malformed payloads, rollups."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest import rollups
from ingest.service import IngestConfig, IngestService
from ingest.testing import (
    chirpstack_payload,
    chirpstack_topic,
    native_payload,
    native_topic,
    publish_all,
    thingsboard_payload,
    thingsboard_topic,
)

pytestmark = pytest.mark.timeout(180)


def devices(url: str, n: int, offset: int = 0) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "SELECT device_id, orchard_id, dev_eui FROM devices ORDER BY device_id OFFSET %s LIMIT %s",
            (offset, n)).fetchall()]


@asynccontextmanager
async def running(url: str, mqtt_url: str, prefix: str, **kw: Any) -> AsyncIterator[IngestService]:
    cfg = IngestConfig(database_url=url, mqtt_url=mqtt_url, topic_prefix=prefix,
                       client_id=f"yc-ingest-test-{secrets.token_hex(4)}", shared_group=f"g{secrets.token_hex(3)}",
                       session_expiry_s=60, refresh_every_s=0, **kw)
    svc = IngestService(cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        await asyncio.wait_for(svc.ready.wait(), 20)
        yield svc
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def q(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def now_s() -> int:
    return int(time.time()) // 60 * 60


async def test_native_batches_end_to_end_with_duplicates_and_out_of_order(ingest_db: str, mqtt_url: str,
                                                                         prefix: str) -> None:
    devs = devices(ingest_db, 5)
    t0 = now_s() - 3 * 3600
    msgs = []
    for i, (dev, orchard, _) in enumerate(devs):
        samples = [{"t": t0 + k * 300, "air_temp_c": 20.0 + k / 10, "soil_vwc_10cm": 0.3, "battery_v": 3.9 - k / 100,
                    "rssi_dbm": -90 - i} for k in range(12)]
        samples.reverse()  # an offline buffer arrives newest first
        msgs.append((native_topic(orchard, dev, prefix), native_payload(dev, samples, seq=i)))
    dup = msgs[0]
    async with running(ingest_db, mqtt_url, prefix) as svc:
        await publish_all(mqtt_url, [*msgs, dup, dup])
        await until(lambda: svc.stats.messages >= 7, what="7 messages committed")
    assert svc.stats.readings + svc.stats.resent_skipped == 7 * 24 and svc.stats.resent_skipped == 2 * 24
    assert svc.stats.stored == 5 * 24 and svc.stats.rejects == 0
    ids = [d[0] for d in devs]
    assert q(ingest_db, "SELECT count(*) FROM readings WHERE device_id = ANY(%s)", ids) == [(120,)]
    assert q(ingest_db, "SELECT value FROM readings WHERE device_id = %s AND metric = 'air_temp_c' AND time = %s",
             ids[0], datetime.fromtimestamp(t0 + 300, UTC)) == [(20.1,)]
    health = q(ingest_db, "SELECT device_id, messages, readings, rejects, battery_v, battery_at, rssi_dbm, last_seq,"
               " last_reading_at FROM device_health WHERE device_id = ANY(%s) ORDER BY device_id", ids)
    newest = datetime.fromtimestamp(t0 + 11 * 300, UTC)
    assert health[0] == (ids[0], 3, 72, 0, 3.79, newest, -90.0, 0, newest)  # newest battery, not the last listed
    assert [h[1] for h in health[1:]] == [1, 1, 1, 1]
    assert q(ingest_db, "SELECT sum(messages), sum(readings) FROM device_traffic_hourly WHERE device_id = ANY(%s)",
             ids) == [(7, 168)]


async def test_chirpstack_and_thingsboard_end_to_end(ingest_db: str, mqtt_url: str, prefix: str) -> None:
    (d1, _, eui1), (d2, _, _), (d3, _, _) = devices(ingest_db, 3, offset=100)
    when = datetime.fromtimestamp(now_s() - 600, UTC)
    ms = int(when.timestamp() * 1000)
    msgs = [
        (chirpstack_topic(eui1, prefix=prefix),
         chirpstack_payload(d1, eui1, when, {"air_temp_c": "18.5", "air_rh_pct": 77, "battery_v": 3.61}, rssi=-112)),
        (chirpstack_topic(eui1.upper(), prefix=prefix),
         chirpstack_payload(d1, eui1.upper(), when, {"samples": [{"t": int(when.timestamp()) - 3600, "rain_mm": "0.4"},
                                                                  {"t": int(when.timestamp()) - 7200, "rain_mm": 1}]},
                            rssi=-112, f_cnt=2)),
        (thingsboard_topic(prefix), thingsboard_payload({d2: [(ms, {"wind_ms": 2.5}), (ms - 300_000, {"wind_ms": 3})],
                                                         d3: [(ms, {"solar_wm2": 410.0, "leaf_wetness_pct": 0})]})),
    ]
    async with running(ingest_db, mqtt_url, prefix) as svc:
        await publish_all(mqtt_url, msgs)
        await until(lambda: svc.stats.messages >= 3, what="3 messages")
    rows = q(ingest_db, "SELECT device_id, metric, time, value FROM readings WHERE device_id = ANY(%s)"
             " ORDER BY device_id, metric, time", [d1, d2, d3])
    assert rows == sorted([
        (d1, "air_rh_pct", when, 77.0), (d1, "air_temp_c", when, 18.5),
        (d1, "rain_mm", when - timedelta(hours=2), 1.0), (d1, "rain_mm", when - timedelta(hours=1), 0.4),
        (d2, "wind_ms", when - timedelta(minutes=5), 3.0), (d2, "wind_ms", when, 2.5),
        (d3, "leaf_wetness_pct", when, 0.0), (d3, "solar_wm2", when, 410.0)])
    assert q(ingest_db, "SELECT battery_v, rssi_dbm, messages FROM device_health WHERE device_id = %s", d1) == [
        (3.61, -112.0, 2)]
    assert q(ingest_db, "SELECT messages FROM device_health WHERE device_id = ANY(%s) ORDER BY 1", [d2, d3]) == [
        (1,), (1,)]


async def test_malformed_payloads_are_dead_lettered_and_never_stop_the_stream(ingest_db: str, mqtt_url: str,
                                                                            prefix: str) -> None:
    (dev, orchard, _), (dev2, orchard2, _) = devices(ingest_db, 2, offset=200)
    t = now_s() - 120
    good = native_payload(dev, [{"t": t, "air_temp_c": 12.0}])
    topic = native_topic(orchard, dev, prefix)
    bad: list[tuple[str, bytes]] = [
        (topic, good[:-5]),                                                           # truncated JSON
        (topic, native_payload(dev, [{"t": t + 60, "air_temp_c": "warm"}])),          # wrong type
        (topic, native_payload(dev, [{"t": t + 120, "air_temp_c": float("nan")}])),   # NaN
        (topic, native_payload(dev, [{"t": t + 180, "air_temp_c": 999.0, "air_rh_pct": 50.0}])),  # absurd + good
        (native_topic("WS-9999", "gw-9999", prefix), native_payload("gw-9999", [{"t": t, "air_temp_c": 1.0}])),
        (topic, native_payload(dev, [{"t": t, "air_temp_c": 1.0, "pad": "x" * (1 << 20)}])),  # oversized
        (topic, native_payload(dev, [{"t": t + 7200, "air_temp_c": 1.0}])),           # two hours in the future
        (thingsboard_topic(prefix), b'{"' + dev2.encode() + b'": [{"ts": "soon", "values": {}}]}'),
        (chirpstack_topic("ffffffffffffffff", prefix=prefix),
         chirpstack_payload("x", "ffffffffffffffff", datetime.now(UTC), {"air_temp_c": 1})),
    ]
    after = (native_topic(orchard2, dev2, prefix), native_payload(dev2, [{"t": t, "air_temp_c": 13.0}]))
    async with running(ingest_db, mqtt_url, prefix) as svc:
        await publish_all(mqtt_url, [(topic, good), *bad, after, bad[0]])  # a re-sent bad message too
        await until(lambda: svc.stats.messages >= len(bad) + 3, what="all messages")
    assert q(ingest_db, "SELECT device_id, metric, value FROM readings WHERE device_id = ANY(%s) ORDER BY 1, 2",
             [dev, dev2]) == [(dev, "air_rh_pct", 50.0), (dev, "air_temp_c", 12.0), (dev2, "air_temp_c", 13.0)]
    dead = q(ingest_db, "SELECT reason, device_id, payload IS NOT NULL, payload_bytes, detail FROM dead_letters"
             " WHERE topic LIKE %s ORDER BY dead_letter_id", prefix + "%")
    assert sorted(d[0] for d in dead) == sorted(["malformed_json", "wrong_type", "not_finite", "out_of_range",
                                                 "unknown_device", "oversized", "future_time", "wrong_type",
                                                 "unknown_device"])
    by_reason = {d[0]: d for d in dead}
    assert by_reason["malformed_json"][1:4] == (dev, True, len(good) - 5)
    assert "air_temp_c=999 outside [-40, 60]" in by_reason["out_of_range"][4]
    assert by_reason["oversized"][3] > 1 << 20
    assert q(ingest_db, "SELECT payload FROM dead_letters WHERE reason = 'malformed_json' AND topic = %s",
             topic) == [(good[:-5],)]
    # per-device reject counts for the registry device
    assert q(ingest_db, "SELECT rejects FROM device_health WHERE device_id = %s", dev) == [(7,)]


async def test_late_buffer_reaches_rollups(ingest_db: str, mqtt_url: str, prefix: str) -> None:
    [(dev, orchard, _)] = devices(ingest_db, 1, offset=300)
    now = now_s()
    yesterday = now - 86400 - (now % 3600)
    async with running(ingest_db, mqtt_url, prefix) as svc:
        await publish_all(mqtt_url, [(native_topic(orchard, dev, prefix),
                                      native_payload(dev, [{"t": now - 60, "air_temp_c": 10.0}]))])
        await until(lambda: svc.stats.messages >= 1)
        with psycopg.connect(ingest_db) as conn:
            rollups.refresh(conn)
        # the gateway was offline: yesterday's buffer arrives now, out of order
        buf = [{"t": yesterday + k * 300, "air_temp_c": float(k)} for k in (5, 0, 11, 3)]
        await publish_all(mqtt_url, [(native_topic(orchard, dev, prefix), native_payload(dev, buf, seq=2))])
        await until(lambda: svc.stats.messages >= 2)
    with psycopg.connect(ingest_db) as conn:
        r = rollups.refresh(conn)
    assert r.hours >= 1
    hour = datetime.fromtimestamp(yesterday, UTC)
    assert q(ingest_db, "SELECT n, min, max, sum FROM readings_hourly WHERE device_id = %s AND bucket = %s", dev,
             hour) == [(4, 0.0, 11.0, 19.0)]
    day = q(ingest_db, "SELECT date_trunc('day', %s::timestamptz, 'Asia/Shanghai')", hour)[0][0]
    assert q(ingest_db, "SELECT n FROM readings_daily WHERE device_id = %s AND metric = 'air_temp_c' AND bucket = %s",
             dev, day)[0][0] >= 4


def test_metrics_exported() -> None:
    from prometheus_client import generate_latest

    text = generate_latest().decode()
    for name in ("yuncang_ingest_readings_total", "yuncang_ingest_rejects_total", "yuncang_ingest_batch_seconds",
                 "yuncang_ingest_queue_depth"):
        assert name in text
    json.dumps(text[:10])
