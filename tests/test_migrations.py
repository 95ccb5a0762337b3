"""Migration runner: ordered, once, atomic, idempotent, concurrency-safe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from yuncang import migrations, tsdb_jobs
from yuncang.migrations import MigrationError, discover, migrate
from yuncang.schema import storage_path


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        return {r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}


def test_fresh_database_gets_every_migration_once(make_database: Callable[[], str]) -> None:
    url = make_database()
    applied = migrate(url)
    assert applied, "a fresh database must receive migrations"
    assert applied[0].startswith("registry/001")
    assert {"orchards", "devices", "growers", "households", "schema_migrations"} <= _tables(url)
    assert migrate(url) == []  # re-running is a no-op
    with psycopg.connect(url) as c:
        keys = [r[0] for r in c.execute("SELECT key FROM schema_migrations").fetchall()]
        assert sorted(keys) == sorted(applied)
        assert storage_path(c) in ("timescaledb", "postgresql")


def test_order_follows_package_dependencies() -> None:
    keys = [m.key for m in discover("postgresql")]
    pkgs = [k.split("/")[0] for k in keys]
    order = [p for p in migrations.PACKAGES if p in pkgs]
    assert sorted(set(pkgs), key=pkgs.index) == order
    assert keys == sorted(keys, key=lambda k: (migrations.PACKAGES.index(k.split("/")[0]), k))


def test_failed_migration_leaves_nothing_half_applied(
    make_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose second statement fails must not leave its first statement's table behind."""
    url = make_database()
    migrate(url)
    pkg = tmp_path / "ycbadpkg"
    (pkg / "sql").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sql" / "001_ok.sql").write_text("CREATE TABLE ok_table (x int);")
    (pkg / "sql" / "002_bad.sql").write_text("CREATE TABLE half_table (x int);\nSELECT * FROM no_such_table;")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MigrationError, match="002_bad"):
        migrate(url, packages=(*migrations.PACKAGES, "ycbadpkg"))
    tables = _tables(url)
    assert "ok_table" in tables
    assert "half_table" not in tables
    with psycopg.connect(url) as c:
        keys = {r[0] for r in c.execute("SELECT key FROM schema_migrations").fetchall()}
    assert "ycbadpkg/001_ok" in keys and "ycbadpkg/002_bad" not in keys
    # fixing the file and re-running applies just the fixed one
    (pkg / "sql" / "002_bad.sql").write_text("CREATE TABLE half_table (x int);")
    assert migrate(url, packages=(*migrations.PACKAGES, "ycbadpkg")) == ["ycbadpkg/002_bad"]


def test_concurrent_runners_apply_each_migration_once(make_database: Callable[[], str]) -> None:
    url = make_database()
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    flat = [k for r in results for k in r]
    assert len(flat) == len(set(flat)) and flat, "each migration applied by exactly one runner"


def test_variant_files_follow_the_storage_path() -> None:
    for path, other in (("postgresql", ".tsdb"), ("timescaledb", ".pg")):
        assert all(m.variant != other.strip(".") for m in discover(path))  # type: ignore[arg-type]


def _scheduler_up(url: str, timeout_s: float = 15.0) -> bool:
    """True once this database's TimescaleDB scheduler process is alive."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as c:
        while time.monotonic() < deadline:
            if c.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                         " AND backend_type = 'TimescaleDB Background Worker Scheduler'").fetchone():
                return True
            time.sleep(0.1)
    return False


def test_timescaledb_jobs_are_stopped_while_migrations_run_and_restarted_after(
    make_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler and its policy jobs never run concurrently with a migration (they raced 005's DDL)."""
    url = make_database()
    migrate(url)
    with psycopg.connect(url, autocommit=True) as c:
        if storage_path(c) != "timescaledb":
            pytest.skip("TimescaleDB path only: plain PostgreSQL has no background job scheduler")
        started = c.execute("SELECT _timescaledb_functions.start_background_workers()").fetchone()
    if not (started and started[0]) or not _scheduler_up(url):
        pytest.skip("no free background-worker slot on this server for the database's TimescaleDB scheduler")
    pkg = tmp_path / "ycprobepkg"
    (pkg / "sql").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sql" / "001_probe.sql").write_text(
        "CREATE TABLE probe AS SELECT count(*) AS workers FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND (backend_type LIKE 'TimescaleDB%' OR application_name IN"
        " (SELECT application_name FROM timescaledb_information.jobs));")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert migrate(url, packages=(*migrations.PACKAGES, "ycprobepkg")) == ["ycprobepkg/001_probe"]
    with psycopg.connect(url) as c:
        assert c.execute("SELECT workers FROM probe").fetchone() == (0,)
        assert not tsdb_jobs.marker_present(c)
    assert _scheduler_up(url), "the scheduler runs again after the migrations"
    # a runner that died with the scheduler stopped: the next run (nothing pending) starts it again
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("INSERT INTO yuncang_meta VALUES (%s, 'crashed run')", (tsdb_jobs.MARKER,))
        c.execute("SELECT _timescaledb_functions.stop_background_workers()")
        assert c.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                         " AND backend_type = 'TimescaleDB Background Worker Scheduler'").fetchone() is None
    assert migrate(url, packages=(*migrations.PACKAGES, "ycprobepkg")) == []
    assert _scheduler_up(url)
    with psycopg.connect(url) as c:
        assert not tsdb_jobs.marker_present(c)
