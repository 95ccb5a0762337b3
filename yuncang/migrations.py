"""Migration runner: applies each package's ``sql/NNN_name.sql`` once, in order, atomically.

Files live beside their owner package (``registry/sql/001_registry.sql``). Packages are applied in
dependency order (``PACKAGES``), files within a package by their number. Variants:

* ``NNN_name.sql``         runs on both storage paths;
* ``NNN_name.tsdb.sql``    runs only when TimescaleDB is present;
* ``NNN_name.pg.sql``      runs only on plain PostgreSQL;
* ``NNN_name.py``          a *repeatable* migration generated in Python: the module defines
  ``checksum() -> str`` and ``sql(conn, path) -> str``; it runs (in its place in the order) when it has
  not run yet or when ``checksum()`` differs from the one recorded, e.g. ``ingest/sql/010_metric_columns.py``
  brings the storage up to the metrics catalogue whenever a metric is added.

Each file runs in its own transaction together with its row in ``schema_migrations``, so a failed
migration leaves nothing half-applied and re-running the runner is a no-op. A session-level
advisory lock serialises concurrent runners (several app processes starting at once). On TimescaleDB
the database's background jobs are stopped while migrations run (:mod:`yuncang.tsdb_jobs`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from yuncang import tsdb_jobs
from yuncang.schema import StoragePath, detect_timescaledb

log = logging.getLogger(__name__)

#: Owner packages in dependency order: a package's tables may reference those before it.
PACKAGES: tuple[str, ...] = ("registry", "ingest", "orchard_models", "trading", "yuncang")

_NAME = re.compile(r"^(?P<num>\d{3})_(?P<name>[a-z0-9_]+?)(?:\.(?P<variant>tsdb|pg))?\.(?P<ext>sql|py)$")
_LOCK_KEY = 0x79756E63616E67  # "yuncang"


class MigrationError(RuntimeError):
    """A migration failed; the message names the file and the database error."""


@dataclass(frozen=True)
class Migration:
    package: str
    number: int
    name: str
    variant: str | None
    sql: str
    #: a repeatable Python migration (``NNN_name.py``): its module; ``sql`` holds its source
    module: Any = None

    @property
    def key(self) -> str:
        return f"{self.package}/{self.number:03d}_{self.name}"

    @property
    def checksum(self) -> str:
        if self.module is not None:
            return str(self.module.checksum())
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _load_module(pkg: str, entry: Any) -> Any:
    """Import a Python migration file (it lives in a data folder, not in a package)."""
    with resources.as_file(entry) as path:
        spec = importlib.util.spec_from_file_location(f"{pkg}._migration_{entry.name[:-3]}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return mod


def discover(path: StoragePath, packages: tuple[str, ...] = PACKAGES) -> list[Migration]:
    """All migrations for the storage path, in the order they must run."""
    found: list[Migration] = []
    for pkg in packages:
        try:
            sql_dir = resources.files(pkg).joinpath("sql")
        except ModuleNotFoundError:
            continue
        if not sql_dir.is_dir():
            continue
        for entry in sql_dir.iterdir():
            m = _NAME.match(entry.name)
            if not m:
                continue
            variant = m.group("variant")
            if variant == "tsdb" and path != "timescaledb":
                continue
            if variant == "pg" and path != "postgresql":
                continue
            module = _load_module(pkg, entry) if m.group("ext") == "py" else None
            found.append(Migration(pkg, int(m.group("num")), m.group("name"), variant, entry.read_text("utf-8"),
                                   module))
    order = {p: i for i, p in enumerate(packages)}
    found.sort(key=lambda mg: (order[mg.package], mg.number, mg.variant or ""))
    keys = [mg.key for mg in found]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise MigrationError(f"two migrations share a number: {sorted(dupes)}")
    return found


_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    key         text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS yuncang_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
"""


def migrate(url_or_conn: str | psycopg.Connection, *, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Apply pending migrations; return the keys applied (empty when already up to date)."""
    if isinstance(url_or_conn, str):
        with psycopg.connect(url_or_conn, autocommit=True) as conn:
            return _migrate(conn, packages)
    conn = url_or_conn
    conn.autocommit = True
    return _migrate(conn, packages)


def _migrate(conn: psycopg.Connection, packages: tuple[str, ...]) -> list[str]:
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute(_BOOTSTRAP)
        row = conn.execute("SELECT value FROM yuncang_meta WHERE key = 'storage_path'").fetchone()
        if row:
            path: StoragePath = "timescaledb" if row[0] == "timescaledb" else "postgresql"
        else:
            path = "timescaledb" if detect_timescaledb(conn) else "postgresql"
            with conn.transaction():
                conn.execute(
                    "INSERT INTO yuncang_meta (key, value) VALUES ('storage_path', %s) ON CONFLICT DO NOTHING",
                    (path,),
                )
        done: dict[str, str] = dict(conn.execute("SELECT key, checksum FROM schema_migrations").fetchall())
        # a Python migration (generated from a catalogue) runs again when what it generates changed
        pending = [mg for mg in discover(path, packages)
                   if not (mg.key in done and (mg.module is None or done[mg.key] == mg.checksum))]
        if path != "timescaledb" or not (pending or tsdb_jobs.marker_present(conn)):
            return _apply(conn, pending, path)
        # TimescaleDB: policies' background jobs must not run while migrations alter their objects
        # (see yuncang.tsdb_jobs for the race and why this is the fix)
        with tsdb_jobs.scheduler_stopped(conn):
            return _apply(conn, pending, path)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


#: A file that hit one of these (a concurrent catalogue change, e.g. a TimescaleDB job the runner could
#: not stop) was rolled back whole and is run again, at most ``_ATTEMPTS`` times in all.
_TRANSIENT = ("tuple concurrently updated", "tuple concurrently deleted")
_ATTEMPTS = 3


def _apply(conn: psycopg.Connection, pending: list[Migration], path: StoragePath) -> list[str]:
    applied: list[str] = []
    for mg in pending:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with conn.transaction():
                    sql = mg.module.sql(conn, path) if mg.module is not None else mg.sql
                    if sql.strip():
                        conn.execute(sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (key, checksum) VALUES (%s, %s)"
                        " ON CONFLICT (key) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
                        (mg.key, mg.checksum),
                    )
                break
            except (psycopg.errors.InternalError_, psycopg.errors.DeadlockDetected) as exc:
                if attempt == _ATTEMPTS or not (isinstance(exc, psycopg.errors.DeadlockDetected)
                                                or any(t in str(exc) for t in _TRANSIENT)):
                    raise MigrationError(f"migration {mg.key} failed and was rolled back: {exc}") from exc
                log.warning("migration raced a concurrent change; rolled back, running it again",
                            extra={"migration": mg.key, "attempt": attempt, "error": str(exc)})
            except psycopg.Error as exc:
                raise MigrationError(f"migration {mg.key} failed and was rolled back: {exc}") from exc
        log.info("applied migration", extra={"migration": mg.key, "storage_path": path})
        applied.append(mg.key)
    return applied
