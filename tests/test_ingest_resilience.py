"""Nothing is lost when things fail: broker restart, ingest killed mid-batch, database restart;
two ingest processes sharing a subscription store every reading exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.service import IngestConfig, IngestService
from ingest.testing import native_payload, native_topic, publish_all, publish_reliably
from registry.seed import SeedParams, seed
from yuncang.embedded import EMBEDDED_MQTT_PASSWORD, EMBEDDED_MQTT_USER, EmbeddedBroker, EmbeddedPostgres, free_port
from yuncang.migrations import migrate

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

MOSQUITTO = shutil.which("mosquitto")
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary (persistent broker "
                                     "restart, MQTT v5 shared subscriptions); amqtt keeps sessions in memory only")


class PrivateBroker:
    """A broker of this test alone: a mosquitto child (persistence on, queues raised) or amqtt."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.amqtt: EmbeddedBroker | None = None
        if MOSQUITTO:
            self.conf = tmp / "mosquitto.conf"
            self.conf.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                f"persistence_location {tmp}/\nautosave_interval 1\nmax_queued_messages 1000000\n"
                "max_inflight_messages 0\nuser root\nlog_type error\n")

    @property
    def url(self) -> str:
        return f"mqtt://{EMBEDDED_MQTT_USER}:{EMBEDDED_MQTT_PASSWORD}@127.0.0.1:{self.port}"

    def start(self) -> None:
        if not MOSQUITTO:
            self.amqtt = EmbeddedBroker(self.port)
            self.amqtt.start()
            return
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket

        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private mosquitto did not start")

    def stop(self) -> None:
        if self.amqtt is not None:
            self.amqtt.stop()
            self.amqtt = None
        if self.proc is not None:
            self.proc.terminate()  # mosquitto saves its persistence file on SIGTERM
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    tmp = Path(tempfile.mkdtemp(prefix="yc-mq-"))
    b = PrivateBroker(tmp)
    b.start()
    yield b
    b.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def workload(url: str, prefix: str, n_messages: int, offset: int, samples: int = 12) -> tuple[list[Any], int]:
    """``n_messages`` native batches spread over 50 devices; returns (messages, distinct readings)."""
    with psycopg.connect(url) as conn:
        devs = conn.execute("SELECT device_id, orchard_id FROM devices ORDER BY device_id OFFSET %s LIMIT 50",
                            (offset,)).fetchall()
    t0 = int(time.time()) // 300 * 300 - 20 * 86400
    msgs = []
    for k in range(n_messages):
        dev, orchard = devs[k % len(devs)]
        base = t0 + (k // len(devs)) * samples * 300
        body = [{"t": base + j * 300, "air_temp_c": round(15 + (j % 7) * 0.5, 1), "air_rh_pct": 80.0,
                 "soil_vwc_10cm": 0.31, "soil_vwc_30cm": 0.33, "rain_mm": 0.0, "wind_ms": 1.5, "battery_v": 3.9}
                for j in range(samples)]
        msgs.append((native_topic(orchard, dev, prefix), native_payload(dev, body, seq=k)))
    return msgs, n_messages * samples * 6


def device_ids(msgs: list[Any]) -> list[str]:
    return sorted({t.split("/")[-2] for t, _ in msgs})


def stored(url: str, msgs: list[Any]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings WHERE device_id = ANY(%s)"
                           " AND time < now() - interval '19 days' AND time > now() - interval '40 days'",
                           (device_ids(msgs),)).fetchone()
    return int(row[0]) if row else 0


async def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)


class IngestProcess:
    """``python -m yuncang ingest`` as a child process (so it can be SIGKILLed)."""

    def __init__(self, db: str, mqtt: str, prefix: str, client_id: str, *extra: str):
        env = {**os.environ, "YUNCANG_DATABASE_URL": db, "YUNCANG_MQTT_URL": mqtt,
               "YUNCANG_MQTT_TOPIC_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yuncang", "ingest", "--no-migrate", "--client-id", client_id,
             "--session-expiry", "120", "--refresh-every", "0", *extra],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            self.lines.append(rec)
            if rec.get("msg") == "ingest subscribed":
                self.subscribed.set()

    def wait_subscribed(self, timeout: float = 60) -> None:
        if not self.subscribed.wait(timeout):
            raise AssertionError(f"ingest process did not subscribe: {self.lines[-5:]}")

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        time.sleep(0.2)
        return next((r for r in reversed(self.lines) if r.get("msg") == "ingest stopped"), {})

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no chance to flush or acknowledge anything
        self.proc.wait(10)


@needs_mosquitto
async def test_broker_restart_mid_stream_loses_nothing(ingest_db: str, broker: PrivateBroker, prefix: str) -> None:
    msgs, expected = workload(ingest_db, prefix, 600, offset=400)
    # a plain persistent subscription: Mosquitto 2.0 restores it (and the messages queued for it) from its
    # persistence file, but not a shared one, so a shared group misses what gateways publish between the
    # broker coming back and ingest re-subscribing (see docs in ingest.service)
    svc = IngestService(IngestConfig(ingest_db, broker.url, prefix, client_id=f"yc-it-{secrets.token_hex(3)}",
                                     shared_group=None, session_expiry_s=300, refresh_every_s=0,
                                     reconnect_max_s=1.0))
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    await asyncio.wait_for(svc.ready.wait(), 20)
    pub = asyncio.create_task(publish_reliably(broker.url, msgs, chunk=20, pause_s=0.02,
                                               client_id=f"yc-pub-{secrets.token_hex(3)}"))
    await wait_for(lambda: stored(ingest_db, msgs) > 0, 30, "first rows")
    broker.stop()
    await asyncio.sleep(1.0)
    broker.start()
    await asyncio.wait_for(pub, 120)
    await wait_for(lambda: stored(ingest_db, msgs) >= expected, 90, f"{expected} readings")
    stop.set()
    await asyncio.wait_for(task, 30)
    assert stored(ingest_db, msgs) == expected
    assert svc.stats.reconnects >= 1


async def test_ingest_killed_mid_batch_loses_nothing(ingest_db: str, broker: PrivateBroker, prefix: str) -> None:
    msgs, expected = workload(ingest_db, prefix, 1200, offset=500)
    cid = f"yc-kill-{secrets.token_hex(3)}"
    first = IngestProcess(ingest_db, broker.url, prefix, cid)
    first.wait_subscribed()
    # paced so the stream lasts several seconds whatever the machine: the kill must land mid-stream
    pub = asyncio.create_task(publish_reliably(broker.url, msgs, chunk=25, pause_s=0.1,
                                               client_id=f"yc-pub-{secrets.token_hex(3)}"))
    await wait_for(lambda: stored(ingest_db, msgs) > 0, 60, "first rows")
    first.kill()
    at_kill = stored(ingest_db, msgs)
    await asyncio.wait_for(pub, 120)
    assert 0 < at_kill < expected, "the kill must land mid-stream"
    second = IngestProcess(ingest_db, broker.url, prefix, cid)
    second.wait_subscribed()
    await wait_for(lambda: stored(ingest_db, msgs) >= expected, 120, f"{expected} readings")
    second.stop()
    assert stored(ingest_db, msgs) == expected


async def test_database_restart_mid_stream_loses_nothing(mqtt_url: str, prefix: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="yc-pgr-"))
    os.chmod(tmp, 0o777)
    pg = EmbeddedPostgres(tmp / "pg", dbname="ingest")
    url = pg.start()
    try:
        migrate(url)
        with psycopg.connect(url) as conn:
            seed(conn, SeedParams(orchard_count=120, total_area_mu=12_000))
        msgs, expected = workload(url, prefix, 500, offset=0, samples=6)
        svc = IngestService(IngestConfig(url, mqtt_url, prefix, client_id=f"yc-dbr-{secrets.token_hex(3)}",
                                         shared_group=f"g{secrets.token_hex(3)}", session_expiry_s=120,
                                         refresh_every_s=0, db_retry_max_s=0.5))
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run(stop))
        await asyncio.wait_for(svc.ready.wait(), 20)
        pub = asyncio.create_task(publish_reliably(mqtt_url, msgs, chunk=10, pause_s=0.05,
                                                   client_id=f"yc-pub-{secrets.token_hex(3)}"))
        await wait_for(lambda: stored(url, msgs) > 0, 30, "first rows")
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(1.5)
        assert pg.start() == url
        await asyncio.wait_for(pub, 120)
        await wait_for(lambda: stored(url, msgs) >= expected, 90, f"{expected} readings")
        stop.set()
        await asyncio.wait_for(task, 30)
        assert stored(url, msgs) == expected
        assert svc.stats.db_retries >= 1
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@needs_mosquitto
async def test_two_ingest_processes_share_the_load_exactly_once(ingest_db: str, broker: PrivateBroker,
                                                               prefix: str) -> None:
    msgs, expected = workload(ingest_db, prefix, 800, offset=600, samples=4)
    procs = [IngestProcess(ingest_db, broker.url, prefix, f"yc-share-{k}-{secrets.token_hex(2)}") for k in (1, 2)]
    for p in procs:
        p.wait_subscribed()
    await publish_all(broker.url, msgs, connections=2, inflight=50)
    await wait_for(lambda: stored(ingest_db, msgs) >= expected, 120, f"{expected} readings")
    totals = [p.stop() for p in procs]
    assert stored(ingest_db, msgs) == expected
    per = [t.get("messages", 0) for t in totals]
    assert all(n > 0 for n in per), per  # both took part
    assert sum(per) == len(msgs), per  # each message handled by exactly one of them
    assert sum(t.get("stored", 0) for t in totals) == expected


@needs_mosquitto
async def test_supervised_processes_split_the_load_and_a_killed_one_comes_back(ingest_db: str,
                                                                               broker: PrivateBroker,
                                                                               prefix: str) -> None:
    """``yuncang ingest --processes 2``: two children on the shared subscription; one SIGKILLed mid-stream
    is restarted with its own client id (its persistent session) and nothing is lost."""
    msgs, expected = workload(ingest_db, prefix, 800, offset=700, samples=4)
    base = f"yc-sup-{secrets.token_hex(2)}"
    sup = IngestProcess(ingest_db, broker.url, prefix, base, "--processes", "2")

    def records(msg: str) -> list[dict[str, Any]]:
        return [r for r in list(sup.lines) if r.get("msg") == msg]

    await wait_for(lambda: len(records("ingest subscribed")) >= 2, 60, "two children subscribed")
    assert {r["client_id"] for r in records("ingest subscribed")} == {f"{base}-p0", f"{base}-p1"}
    await publish_all(broker.url, msgs[:400], connections=2, inflight=50)
    victim = next(r["pid"] for r in records("ingest process started") if r["child"] == 1)
    os.kill(victim, signal.SIGKILL)
    await publish_all(broker.url, msgs[400:], connections=2, inflight=50)
    await wait_for(lambda: len(records("ingest subscribed")) >= 3, 60, "the killed child back")
    assert records("ingest process died; restarting")[0]["child"] == 1
    assert records("ingest subscribed")[-1]["client_id"] == f"{base}-p1"  # same session, redelivery
    await wait_for(lambda: stored(ingest_db, msgs) >= expected, 120, f"{expected} readings")
    sup.proc.send_signal(signal.SIGTERM)
    assert sup.proc.wait(90) == 0
    assert stored(ingest_db, msgs) == expected
    stopped = records("ingest stopped")
    assert len(stopped) == 2 and all(r.get("messages", 0) > 0 for r in stopped), stopped  # both worked


def test_supervised_processes_refuse_without_shared_subscriptions(ingest_db: str, mqtt_url: str) -> None:
    env = {**os.environ, "YUNCANG_DATABASE_URL": ingest_db, "YUNCANG_MQTT_URL": mqtt_url}
    r = subprocess.run([sys.executable, "-m", "yuncang", "ingest", "--no-migrate", "--processes", "2", "--no-shared"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "shared subscription" in r.stderr
