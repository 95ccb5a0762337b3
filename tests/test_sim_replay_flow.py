"""``yuncang simulate --replay-day`` against a stock Mosquitto (max_queued_messages 1000): flow control
against ingest's commits stores every message of the day exactly once, and a replay nobody ingests
stops with a clear message instead of pretending it delivered."""

from __future__ import annotations

import datetime as dt
import json
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

from registry.seed import SeedParams, seed
from yuncang.migrations import migrate
from yuncang.private_services import PrivateMosquitto, mosquitto_binary

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow,
              pytest.mark.skipif(mosquitto_binary() is None,
                                 reason="needs the mosquitto binary: the loss happens in a stock Mosquitto's queue")]

GATEWAYS = 250
DAY = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) - dt.timedelta(days=3)).date()


@pytest.fixture
def stock_broker() -> Iterator[PrivateMosquitto]:
    tmp = Path(tempfile.mkdtemp(prefix="yc-mq-stock-"))
    b = PrivateMosquitto.stock(tmp)
    b.start()
    yield b
    b.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def replay_db(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams(orchard_count=GATEWAYS, total_area_mu=176_000.0 * GATEWAYS / 1546))
    return url


def _env(db: str, mqtt: str, prefix: str) -> dict[str, str]:
    return {**os.environ, "YUNCANG_DATABASE_URL": db, "YUNCANG_MQTT_URL": mqtt, "YUNCANG_MQTT_TOPIC_PREFIX": prefix,
            "PYTHONUNBUFFERED": "1"}


def _simulate(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yuncang", "simulate", "--replay-day", DAY.isoformat(),
                           "--orchards", str(GATEWAYS), *extra], env=env, capture_output=True, text=True,
                          timeout=240)


def test_replay_day_through_stock_mosquitto_stores_every_message_exactly_once(
        replay_db: str, stock_broker: PrivateMosquitto) -> None:
    prefix = f"yc-flow-{secrets.token_hex(3)}/"
    env = _env(replay_db, f"mqtt://127.0.0.1:{stock_broker.port}", prefix)
    # a slow consumer on purpose: 100 unacknowledged messages in flight, so the broker's queue (1,000)
    # is what stands between the replay and loss
    log = stock_broker.workdir / "ingest.log"
    with log.open("wb") as err:
        ingest = subprocess.Popen([sys.executable, "-m", "yuncang", "ingest", "--no-migrate", "--client-id",
                                   f"yc-flow-{secrets.token_hex(2)}", "--session-expiry", "300",
                                   "--refresh-every", "0", "--receive-maximum", "100", "--batch-age", "1.0"],
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while b"ingest subscribed" not in log.read_bytes():
            assert time.monotonic() < deadline and ingest.poll() is None, log.read_text()[-2000:]
            time.sleep(0.1)
        r = _simulate(env, "--window", "500")
        assert r.returncode == 0, r.stderr[-3000:]
        out = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(60)
    assert out["messages"] > 5_000 and out["duplicate_readings"] > 0 and out["invalid_readings"] > 0
    fc = out["flow_control"]
    assert fc["waits"] > 0, "the replay never had to wait for ingest: the test did not stress the queue"
    assert fc["committed"] >= out["messages"]
    with psycopg.connect(replay_db) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]
        invalid_dead = conn.execute("SELECT count(*) FROM dead_letters WHERE reason IN ('not_finite', 'out_of_range')"
                                    ).fetchone()[0]  # type: ignore[index]
        reasons = dict(conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1").fetchall())
    assert stored == out["expected_stored"], (stored, out)
    assert invalid_dead > 0 and set(reasons) <= {"not_finite", "out_of_range"}, reasons


def test_replay_without_ingest_stops_with_a_clear_message(replay_db: str, stock_broker: PrivateMosquitto) -> None:
    env = _env(replay_db, f"mqtt://127.0.0.1:{stock_broker.port}", f"yc-flow-none-{secrets.token_hex(3)}/")
    t0 = time.monotonic()
    r = _simulate(env, "--window", "200", "--stall", "3")
    assert r.returncode == 1
    assert "replay incomplete" in r.stderr and "yuncang ingest" in r.stderr and "0 of 200" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 120
