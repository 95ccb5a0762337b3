"""Scaling ingest down: a stopped instance's persistent session keeps receiving its share of the shared
subscription (stranded until the session expires); ``yuncang ingest leave`` drains it and ends it, so
nothing is stranded and later messages all go to the instances that remain (docs/scaling.md)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.testing import native_payload, native_topic, publish_all
from registry.seed import SeedParams, seed
from yuncang.migrations import migrate
from yuncang.private_services import PrivateMosquitto, mosquitto_binary

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow,
              pytest.mark.skipif(mosquitto_binary() is None,
                                 reason="needs the mosquitto binary (MQTT v5 shared subscriptions)")]


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    tmp = Path(tempfile.mkdtemp(prefix="yc-mq-leave-"))
    b = PrivateMosquitto.stock(tmp, max_queued_messages=100_000)
    b.start()
    yield b
    b.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def leave_db(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams(orchard_count=40, total_area_mu=4_000.0))
    return url


class Ingest:
    def __init__(self, tmp: Path, env: dict[str, str], client_id: str, *args: str):
        self.log = tmp / f"{client_id}-{secrets.token_hex(2)}.log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "yuncang", "ingest", *args, "--no-migrate",
                                          "--client-id", client_id, "--session-expiry", "300",
                                          "--refresh-every", "0"],
                                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        t0 = time.monotonic()
        while text.encode() not in self.log.read_bytes():
            assert time.monotonic() - t0 < timeout and self.proc.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def messages(db: str, prefix: str, n: int, day_offset: int) -> list[tuple[str, bytes]]:
    """``n`` native messages of 12 samples x 2 metrics (24 readings each), distinct times."""
    with psycopg.connect(db) as conn:
        devs = conn.execute("SELECT device_id, orchard_id FROM devices ORDER BY device_id").fetchall()
    t0 = (int(time.time()) // 86400 - 10 - day_offset) * 86400
    out = []
    for k in range(n):
        dev, orchard = devs[k % len(devs)]
        base = t0 + (k // len(devs)) * 3600
        samples = [{"t": base + j * 300, "air_temp_c": 12.5 + j / 10, "air_rh_pct": 70.0} for j in range(12)]
        out.append((native_topic(orchard, dev, prefix), native_payload(dev, samples, seq=k)))
    return out


def stored(db: str) -> int:
    with psycopg.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]


def wait_stored(db: str, n: int, timeout: float) -> int:
    t0 = time.monotonic()
    while (got := stored(db)) < n and time.monotonic() - t0 < timeout:
        time.sleep(0.3)
    return got


async def test_leave_drains_the_stopped_instance_and_ends_its_session(leave_db: str,
                                                                     broker: PrivateMosquitto) -> None:
    prefix = f"yc-leave-{secrets.token_hex(3)}/"
    url = f"mqtt://127.0.0.1:{broker.port}"
    env = {**os.environ, "YUNCANG_DATABASE_URL": leave_db, "YUNCANG_MQTT_URL": url,
           "YUNCANG_MQTT_TOPIC_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}
    tag = secrets.token_hex(2)
    a = Ingest(broker.workdir, env, f"yc-leave-a-{tag}")
    b = Ingest(broker.workdir, env, f"yc-leave-b-{tag}")
    try:
        a.wait_for("ingest subscribed")
        b.wait_for("ingest subscribed")
        b.stop()                                   # scaled down without leaving: its session stays
        first = messages(leave_db, prefix, 400, 0)
        await publish_all(url, first, client_prefix=f"yc-leave-pub-{tag}")
        n_first = 400 * 24
        got = wait_stored(leave_db, n_first, timeout=8)
        assert 0 < got < n_first, f"the stopped instance's share should be stranded: {got} of {n_first}"

        leave = Ingest(broker.workdir, env, f"yc-leave-b-{tag}", "leave", "--leave-idle", "2")
        assert leave.proc.wait(90) == 0, leave.log.read_text()[-2000:]
        assert b"ingest session ended" in leave.log.read_bytes()
        assert stored(leave_db) == n_first

        second = messages(leave_db, prefix, 400, 5)
        await publish_all(url, second, client_prefix=f"yc-leave-pub2-{tag}")
        assert wait_stored(leave_db, 2 * n_first, timeout=60) == 2 * n_first   # nothing routed to b any more
        time.sleep(1.0)
        assert stored(leave_db) == 2 * n_first
    finally:
        a.stop()
        b.stop()
