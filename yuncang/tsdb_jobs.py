"""TimescaleDB's background jobs held still while migrations change the objects they work on.

Why: TimescaleDB runs its policies (compression, retention, continuous-aggregate refresh) in
background workers started by a per-database scheduler, which begins as soon as a migration that adds
a policy commits. TimescaleDB 2.28 takes no lock between a job and its catalogue rows: dropping a
policy (``remove_retention_policy``) or the continuous aggregate a refresh job works on deletes the
rows of ``_timescaledb_config.bgw_job`` / ``_timescaledb_internal.bgw_job_stat`` that the scheduler
and the running job update at the same moment (``ts_bgw_job_delete_by_id`` in ``src/bgw/job.c`` only
sends the job a cancel afterwards), so the migration dies with ``tuple concurrently updated`` /
``tuple concurrently deleted``. Seen on a fresh database: 002/003 add policies, 005 removes them a
second later while their first run is going.

What: for the length of a migration run the runner stops the database's scheduler with
``_timescaledb_functions.stop_background_workers()`` (the call TimescaleDB's own
``timescaledb_pre_restore()`` makes: the launcher terminates the scheduler and waits for it), then
waits until no job worker of this database is alive (the scheduler only signals its workers on exit),
runs the migrations and starts the scheduler again. A job that was running is cancelled and simply
runs again at its next schedule. This holds for production databases too, not only tests, and costs
nothing when no migration is pending (the runner does not call this then).

Crash safety: a marker row in ``yuncang_meta`` is committed before the stop and deleted after the
start; a runner that finds the marker (its predecessor died mid-run) starts the scheduler again even
when nothing is pending, so a crash never leaves a database without retention or compression.
Stopping the scheduler needs a superuser (the compose ``db`` service's ``POSTGRES_USER`` is one);
under another role the runner logs a warning and relies on its retry of a failed file instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

log = logging.getLogger(__name__)

#: ``yuncang_meta`` key present while a runner holds the scheduler stopped.
MARKER = "timescaledb_scheduler_stopped_by_migrations"

#: Seconds to wait for running job workers to finish after the scheduler stopped (then cancelled).
WAIT_S = 30.0

_WORKERS = """
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
   AND (backend_type = 'TimescaleDB Background Worker Scheduler'
        OR application_name IN (SELECT application_name FROM timescaledb_information.jobs)
        OR backend_type IN (SELECT application_name FROM timescaledb_information.jobs))
"""


def _schema(conn: psycopg.Connection) -> str | None:
    """The schema holding TimescaleDB's worker functions (``_timescaledb_internal`` before 2.12)."""
    for schema in ("_timescaledb_functions", "_timescaledb_internal"):
        row = conn.execute("SELECT to_regprocedure(%s)", (f"{schema}.stop_background_workers()",)).fetchone()
        if row and row[0] is not None:
            return schema
    return None


def job_workers(conn: psycopg.Connection) -> list[int]:
    """Pids of this database's TimescaleDB scheduler and job workers that are alive now."""
    return [int(r[0]) for r in conn.execute(_WORKERS).fetchall()]


def marker_present(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1 FROM yuncang_meta WHERE key = %s", (MARKER,)).fetchone() is not None


def stop_scheduler(conn: psycopg.Connection) -> bool:
    """Stop this database's scheduler and wait until none of its job workers is alive.

    False (nothing done) when this role may not (not a superuser) or TimescaleDB is absent. Tests call
    it after migrating so that no policy runs behind their back (they run policies explicitly).
    ``conn`` must be in autocommit mode (the wait re-reads ``pg_stat_activity``)."""
    if not conn.autocommit:
        raise ValueError("stop_scheduler needs an autocommit connection")
    schema = _schema(conn)
    su = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()
    if schema is None or not (su and su[0]):
        return False
    conn.execute(f"SELECT {schema}.stop_background_workers()")
    _wait_for_workers(conn)
    return True


def stop_scheduler_of(url: str) -> bool:
    """:func:`stop_scheduler` for the database at ``url`` (own connection)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return stop_scheduler(conn)


def start_scheduler(conn: psycopg.Connection) -> bool:
    """Start this database's scheduler again; False when the launcher had no worker slot for it."""
    schema = _schema(conn)
    if schema is None:
        return False
    row = conn.execute(f"SELECT {schema}.start_background_workers()").fetchone()
    return bool(row and row[0])


@contextmanager
def scheduler_stopped(conn: psycopg.Connection) -> Iterator[None]:
    """Hold this database's TimescaleDB scheduler and jobs stopped inside the block (``conn`` autocommit)."""
    conn.execute("INSERT INTO yuncang_meta (key, value) VALUES (%s, now()::text)"
                 " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (MARKER,))
    if not stop_scheduler(conn):
        conn.execute("DELETE FROM yuncang_meta WHERE key = %s", (MARKER,))
        log.warning("cannot stop TimescaleDB background jobs during migrations (needs a superuser);"
                    " a migration racing a job is retried")
        yield
        return
    try:
        yield
    finally:
        try:
            if not start_scheduler(conn):
                log.warning("TimescaleDB scheduler not restarted (no free background worker slot?)")
            conn.execute("DELETE FROM yuncang_meta WHERE key = %s", (MARKER,))
        except psycopg.Error as exc:  # the marker stays: the next runner restarts the scheduler
            log.error("could not restart the TimescaleDB scheduler after migrations", extra={"error": str(exc)})


def _wait_for_workers(conn: psycopg.Connection) -> None:
    deadline = time.monotonic() + WAIT_S
    cancelled = False
    while pids := job_workers(conn):
        if time.monotonic() > deadline:
            if cancelled:
                raise RuntimeError(f"TimescaleDB job workers {pids} did not stop within {2 * WAIT_S:.0f} s")
            log.warning("cancelling running TimescaleDB jobs for the migration", extra={"pids": pids})
            for pid in pids:
                conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
            cancelled, deadline = True, time.monotonic() + WAIT_S
        time.sleep(0.05)
