"""Periodic work under APScheduler, with one acting scheduler among many processes.

Leadership: every process may run a scheduler, but a job body only runs in the process that holds
the PostgreSQL session advisory lock ``LEADER_LOCK`` on a dedicated connection. If the leader dies,
PostgreSQL drops its connection and lock, and the next process to try becomes leader. Late runs are
coalesced into one (``coalesce=True``) and still run if they are at most ``misfire_grace_time``
late, so a busy or restarted process does not silently drop them. Each run is recorded in
``job_runs`` (start, end, outcome, error, detail) for managers to see.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from prometheus_client import Counter, Histogram
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

LEADER_LOCK = 0x5943_5343_4844  # "YCSCHD"

JOB_RUNS = Counter("yuncang_job_runs_total", "Scheduled job runs by job and outcome", ["job", "outcome"])
JOB_SECONDS = Histogram("yuncang_job_seconds", "Scheduled job duration, s", ["job"],
                        buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800))

JobFunc = Callable[[psycopg.Connection, datetime], dict[str, Any] | None]


@dataclass(frozen=True)
class JobSpec:
    name: str
    trigger: BaseTrigger
    func: JobFunc                   #: (connection, now UTC) -> detail for job_runs
    misfire_grace_s: int = 600      #: a run this late (s) still runs; later ones are coalesced into the next
    first_run_after_s: float | None = None  #: also run this many s after start (not only after a full interval)


class Leadership:
    """Holds (or tries to take) the leader advisory lock on its own connection."""

    def __init__(self, url: str, key: int = LEADER_LOCK):
        self.url, self.key = url, key
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        """True if this process holds the lock now (re-checks the connection, tries to take it if free)."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    self._drop()
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                       application_name="yuncang-scheduler-leader")
            except psycopg.Error:
                return False
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if row and row[0]:
                self._conn = conn
                log.info("scheduler leadership acquired", extra={"pid": os.getpid()})
                return True
            conn.close()
            return False

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                except psycopg.Error:
                    pass
            self._drop()


def run_job(pool: ConnectionPool, spec: JobSpec, leader: Leadership,
            scheduled_for: datetime | None = None) -> int | None:
    """Run one job if this process leads; record it in job_runs. Returns the run_id (None if not leader)."""
    if not leader.is_leader():
        return None
    now = datetime.now(UTC)
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO job_runs (job, scheduled_for, host, pid) VALUES (%s, %s, %s, %s) RETURNING run_id",
            (spec.name, scheduled_for or now, socket.gethostname(), os.getpid()),
        ).fetchone()
        assert row is not None
        run_id = row[0]
        conn.commit()
    t0 = time.monotonic()
    outcome, error, detail = "ok", None, {}
    try:
        with pool.connection() as conn:
            detail = spec.func(conn, now) or {}
            conn.commit()
    except Exception as exc:
        outcome, error = "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
        log.error("job failed", extra={"job": spec.name, "error": str(exc)})
    elapsed = time.monotonic() - t0
    JOB_RUNS.labels(spec.name, outcome).inc()
    JOB_SECONDS.labels(spec.name).observe(elapsed)
    with pool.connection() as conn:
        conn.execute(
            "UPDATE job_runs SET finished_at = now(), outcome = %s, error = %s, detail = %s WHERE run_id = %s",
            (outcome, error, Jsonb({**detail, "seconds": round(elapsed, 3)}), run_id),
        )
    log.info("job finished", extra={"job": spec.name, "outcome": outcome, "seconds": round(elapsed, 3)})
    return int(run_id)


def build_scheduler(pool: ConnectionPool, jobs: list[JobSpec], leader: Leadership) -> BackgroundScheduler:
    """A started-later APScheduler with one coalescing, single-instance job per spec."""
    sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for spec in jobs:
        extra: dict[str, Any] = {}
        if spec.first_run_after_s is not None:
            extra["next_run_time"] = datetime.now(UTC) + timedelta(seconds=spec.first_run_after_s)
        sched.add_job(run_job, spec.trigger, args=(pool, spec, leader), id=spec.name, name=spec.name,
                      misfire_grace_time=spec.misfire_grace_s, replace_existing=True, **extra)
    return sched


def recent_job_runs(conn: psycopg.Connection, *, job: str | None = None, limit: int = 50,
                    offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Recorded job runs (table ``job_runs``, written by :func:`run_job`), newest first; (page, total)."""
    where, params = ("WHERE job = %s", [job]) if job else ("", [])
    rows = conn.cursor(row_factory=dict_row).execute(
        f"SELECT run_id, job, scheduled_for, started_at, finished_at, outcome, error, detail, host, pid "
        f"FROM job_runs {where} ORDER BY started_at DESC, run_id DESC LIMIT %s OFFSET %s",
        [*params, limit, offset]).fetchall()
    row = conn.execute(f"SELECT count(*) FROM job_runs {where}", params).fetchone()
    return rows, int(row[0]) if row else 0
