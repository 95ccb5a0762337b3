"""Migration runner: applies each package's ``sql/NNN_name.sql`` once, in order, atomically.

Files live beside their owner package (``registry/sql/001_registry.sql``). Packages are applied in
dependency order (``PACKAGES``), files within a package by their number. Variants:

* ``NNN_name.sql``         runs on both storage paths;
* ``NNN_name.tsdb.sql``    runs only when TimescaleDB is present;
* ``NNN_name.pg.sql``      runs only on plain PostgreSQL.

Each file runs in its own transaction together with its row in ``schema_migrations``, so a failed
migration leaves nothing half-applied and re-running the runner is a no-op. A session-level
advisory lock serialises concurrent runners (several app processes starting at once). On TimescaleDB
the database's background jobs are stopped while migrations run (:mod:`yuncang.tsdb_jobs`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from yuncang import tsdb_jobs
from yuncang.schema import StoragePath, detect_timescaledb

log = logging.getLogger(__name__)

#: Owner packages in dependency order: a package's tables may reference those before it.
PACKAGES: tuple[str, ...] = ("registry", "ingest", "orchard_models", "trading", "yuncang")

_NAME = re.compile(r"^(?P<num>\d{3})_(?P<name>[a-z0-9_]+?)(?:\.(?P<variant>tsdb|pg))?\.sql$")
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

    @property
    def key(self) -> str:
        return f"{self.package}/{self.number:03d}_{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


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
            found.append(Migration(pkg, int(m.group("num")), m.group("name"), variant, entry.read_text("utf-8")))
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
        done = {r[0] for r in conn.execute("SELECT key FROM schema_migrations").fetchall()}
        pending = [mg for mg in discover(path, packages) if mg.key not in done]
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
                    conn.execute(mg.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (key, checksum) VALUES (%s, %s)", (mg.key, mg.checksum)
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
