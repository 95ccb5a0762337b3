"""Scheduler: one leader among processes, every run recorded, late runs coalesced not dropped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from yuncang.db import make_pool
from yuncang.migrations import migrate
from yuncang.scheduler import JobSpec, Leadership, build_scheduler, recent_job_runs, run_job


@pytest.fixture
def sched_db(make_database: Callable[[], str]) -> Iterator[str]:
    url = make_database()
    migrate(url)
    yield url


def _ok(conn: psycopg.Connection, now: datetime) -> dict[str, int]:
    return {"answer": conn.execute("SELECT 42").fetchone()[0]}


def _boom(conn: psycopg.Connection, now: datetime) -> None:
    raise RuntimeError("rollup table missing")


def test_only_the_leader_runs_and_leadership_passes_on(sched_db: str) -> None:
    pool = make_pool(sched_db, max_size=4)
    a, b = Leadership(sched_db, key=991), Leadership(sched_db, key=991)
    try:
        spec = JobSpec("probe", IntervalTrigger(hours=1), _ok)
        assert a.is_leader() and not b.is_leader()
        assert run_job(pool, spec, b) is None
        assert run_job(pool, spec, a) is not None
        a.release()                       # the leader goes away (or its process dies)
        assert b.is_leader()
        assert run_job(pool, spec, b) is not None
        with pool.connection() as c:
            rows, total = recent_job_runs(c, job="probe")
        assert total == 2 and all(r["outcome"] == "ok" and r["detail"]["answer"] == 42 for r in rows)
    finally:
        a.release()
        b.release()
        pool.close()


def test_failures_are_recorded_and_do_not_stop_other_jobs(sched_db: str) -> None:
    pool = make_pool(sched_db, max_size=4)
    leader = Leadership(sched_db, key=992)
    try:
        run_job(pool, JobSpec("broken", IntervalTrigger(hours=1), _boom), leader)
        run_job(pool, JobSpec("fine", IntervalTrigger(hours=1), _ok), leader)
        with pool.connection() as c:
            rows, _ = recent_job_runs(c)
        by_job = {r["job"]: r for r in rows}
        assert by_job["broken"]["outcome"] == "error" and "rollup table missing" in by_job["broken"]["error"]
        assert by_job["broken"]["finished_at"] is not None
        assert by_job["fine"]["outcome"] == "ok"
    finally:
        leader.release()
        pool.close()


def test_late_runs_are_coalesced_into_one_and_too_late_ones_skipped(sched_db: str) -> None:
    """Runs missed while the scheduler was stalled become one run; a one-off within the grace time still
    runs; beyond it, not."""
    pool = make_pool(sched_db, max_size=4)
    leader = Leadership(sched_db, key=993)
    now = datetime.now(UTC)
    jobs = [
        # fires at now+1s .. now+4s, all while the scheduler is paused; nothing after now+4.6s
        JobSpec("every_second_missed_4", IntervalTrigger(seconds=1, start_date=now,
                                                         end_date=now + timedelta(seconds=4.6)),
                _ok, misfire_grace_s=60),
        JobSpec("late_within_grace", DateTrigger(run_date=now - timedelta(seconds=5)), _ok, misfire_grace_s=60),
        JobSpec("late_beyond_grace", DateTrigger(run_date=now - timedelta(seconds=120)), _ok, misfire_grace_s=60),
    ]
    sched = build_scheduler(pool, jobs, leader)
    sched.start(paused=True)          # a stalled process: nothing runs while paused
    try:
        time.sleep(max(0.0, (now + timedelta(seconds=4.8) - datetime.now(UTC)).total_seconds()))
        sched.resume()
        time.sleep(1.0)
    finally:
        sched.shutdown(wait=True)
        leader.release()
    with pool.connection() as c:
        counts = dict(c.execute("SELECT job, count(*) FROM job_runs GROUP BY job").fetchall())
    pool.close()
    assert counts.get("every_second_missed_4") == 1
    assert counts.get("late_within_grace") == 1
    assert "late_beyond_grace" not in counts


def test_product_jobs_run_and_are_recorded(db_url: str) -> None:
    """The real jobs run against the seeded database and each run is recorded with its outcome."""
    from yuncang.jobs import default_jobs

    pool = make_pool(db_url, max_size=4)
    leader = Leadership(db_url, key=994)
    try:
        ids = {spec.name: run_job(pool, spec, leader) for spec in default_jobs()}
        with pool.connection() as c:
            rows = c.execute("SELECT job, outcome, error FROM job_runs WHERE run_id = ANY(%s)",
                             ([i for i in ids.values() if i],)).fetchall()
    finally:
        leader.release()
        pool.close()
    assert {r[0] for r in rows} == set(ids)
    assert all(r[1] == "ok" for r in rows), rows


def test_first_run_after_start_does_not_wait_a_full_interval(sched_db: str) -> None:
    pool = make_pool(sched_db, max_size=4)
    leader = Leadership(sched_db, key=997)
    sched = build_scheduler(pool, [JobSpec("soon", IntervalTrigger(hours=1), _ok, first_run_after_s=0.2)], leader)
    sched.start()
    try:
        time.sleep(2.0)
    finally:
        sched.shutdown(wait=True)
        leader.release()
    with pool.connection() as c:
        n = c.execute("SELECT count(*) FROM job_runs WHERE job = 'soon' AND outcome = 'ok'").fetchone()[0]
    pool.close()
    assert n == 1
