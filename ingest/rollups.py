"""Hourly and daily rollups of the readings, late data included.

Both storage paths expose ``readings_hourly`` and ``readings_daily`` with the columns
``(device_id, metric, bucket, n, min, max, avg, sum)``: hourly buckets start on the UTC hour, daily
buckets at local midnight in Asia/Shanghai (UTC+8, no daylight saving, so a local day is exactly 24
UTC hours and its hourly buckets tile it). ``n`` counts readings; the others are in the metric's
unit.

Which buckets need recomputing is tracked by *what arrived*, not by reading time: every insert of
readings marks ``(device_id, UTC hour of the reading)`` in ``readings_dirty`` (a statement trigger on
the plain path, ingest itself on TimescaleDB), so a gateway's day-old buffer that arrives now marks
yesterday's hours, and :func:`refresh` recomputes exactly those.

* Plain PostgreSQL: rollups are tables. :func:`refresh` drains ``readings_dirty`` in chunks; each
  chunk recomputes the hourly rows of its (device, hour) pairs from the raw readings, then the daily
  rows of the (device, local day) pairs they fall in from the hourly rows. It holds an EXCLUSIVE lock
  on ``readings_dirty`` (not on readings) for the chunk, so an insert that commits while a chunk is
  being computed is either seen by it or marks its bucket again afterwards: no late row is missed.
* TimescaleDB: rollups are continuous aggregates over the wide ``samples`` (``samples_hourly``,
  ``samples_daily``; the contract views ``readings_hourly``/``readings_daily`` unpivot them); :func:`refresh` calls
  ``refresh_continuous_aggregate`` over the span of the marked hours (TimescaleDB's own invalidation
  log limits the work to buckets that really changed). The marks are *taken* like on the plain path,
  under a short EXCLUSIVE lock on ``readings_dirty``: every writer that marked before the lock has
  committed (its rows are visible to the refresh), and every mark made after it carries a later
  ``marked_at`` (a row trigger stamps ``clock_timestamp()``, the time of marking), so after the refresh
  exactly the marks seen under the lock are deleted and a batch that commits mid-refresh keeps its
  marks for the next one (issue 12, defect 2). The lock is held for one SELECT, not for the refresh.

Neither path recomputes a bucket that starts before :func:`ingest.windows.refresh_from`: those are
final (their raw rows may be gone); marks for them are dropped with a warning and counted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from ingest import ddl
from ingest.storage import storage_path
from ingest.windows import LOCAL_TZ, refresh_from

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RefreshResult:
    hours: int        #: (device, hour) buckets recomputed (TimescaleDB: hours in the refreshed span)
    days: int         #: (device, local day) buckets recomputed (TimescaleDB: days in the span)
    seconds: float    #: wall time of the refresh, s
    final_skipped: int = 0  #: marks for buckets before the refresh window, dropped (buckets are final)


_CREATE_TMP = """
CREATE TEMP TABLE IF NOT EXISTS _rollup_work (device_id text NOT NULL, hour timestamptz NOT NULL)
ON COMMIT DELETE ROWS
"""

_TAKE_DIRTY = """
WITH picked AS (
    SELECT device_id, hour FROM readings_dirty ORDER BY hour, device_id LIMIT %(limit)s
), del AS (
    DELETE FROM readings_dirty d USING picked p
     WHERE d.device_id = p.device_id AND d.hour = p.hour
    RETURNING d.device_id, d.hour
)
INSERT INTO _rollup_work (device_id, hour) SELECT device_id, hour FROM del
"""

_SINCE = """
INSERT INTO _rollup_work (device_id, hour)
SELECT DISTINCT device_id, date_trunc('hour', time, 'UTC') FROM samples WHERE time >= %(since)s
"""

_HOURLY = """
INSERT INTO readings_hourly AS h (device_id, metric, bucket, n, min, max, avg, sum)
SELECT r.device_id, r.metric, w.hour, count(*)::integer, min(r.value), max(r.value), avg(r.value), sum(r.value)
  FROM (SELECT DISTINCT device_id, hour FROM _rollup_work) w
  JOIN readings r ON r.device_id = w.device_id AND r.time >= w.hour AND r.time < w.hour + interval '1 hour'
 GROUP BY r.device_id, r.metric, w.hour
ON CONFLICT (device_id, metric, bucket) DO UPDATE
   SET n = EXCLUDED.n, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg, sum = EXCLUDED.sum
"""

_DAILY = f"""
INSERT INTO readings_daily AS d (device_id, metric, bucket, n, min, max, avg, sum)
SELECT h.device_id, h.metric, w.day, sum(h.n)::integer, min(h.min), max(h.max),
       sum(h.sum) / NULLIF(sum(h.n), 0), sum(h.sum)
  FROM (SELECT DISTINCT device_id, date_trunc('day', hour, '{LOCAL_TZ}') AS day FROM _rollup_work) w
  JOIN readings_hourly h ON h.device_id = w.device_id AND h.bucket >= w.day AND h.bucket < w.day + interval '1 day'
 GROUP BY h.device_id, h.metric, w.day
ON CONFLICT (device_id, metric, bucket) DO UPDATE
   SET n = EXCLUDED.n, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg, sum = EXCLUDED.sum
"""


def refresh(conn: psycopg.Connection, since: datetime | None = None, *, chunk: int = 2_000,
            now: datetime | None = None) -> RefreshResult:
    """Recompute the rollup buckets touched since the last refresh (late data included).

    ``since``: also recompute every bucket from that time on (e.g. after a manual data fix).
    Cheap when nothing changed (one indexed probe). ``conn`` must be idle (no open transaction);
    the function commits its own transactions. ``chunk``: (device, hour) buckets per transaction; the
    EXCLUSIVE lock on ``readings_dirty`` that makes late rows safe also pauses ingest's inserts for the
    length of one chunk (about 0.1-0.5 s at 2,000), so keep it small. ``now`` (default: the clock)
    places the refresh window (:func:`ingest.windows.refresh_from`).
    """
    t0 = time.perf_counter()
    floor = refresh_from(now or datetime.now(UTC))
    if since is not None:
        since = max(since, floor)
    if storage_path(conn) == "timescaledb":
        return _refresh_tsdb(conn, since, t0, floor)
    conn.rollback()  # end the implicit transaction of the storage-path query
    hours = days = final = 0
    with conn.transaction():
        conn.execute(_CREATE_TMP)
    if since is not None:
        with conn.transaction():
            conn.execute(_SINCE, {"since": since})
            h, d, _ = _recompute(conn, floor)
            hours, days = hours + h, days + d
    while True:
        with conn.transaction():
            if conn.execute("SELECT 1 FROM readings_dirty LIMIT 1").fetchone() is None:
                break
            conn.execute("LOCK TABLE readings_dirty IN EXCLUSIVE MODE")
            cur = conn.execute(_TAKE_DIRTY, {"limit": chunk})
            if not cur.rowcount:
                break
            h, d, f = _recompute(conn, floor)
            hours, days, final = hours + h, days + d, final + f
    _warn_final(final, floor)
    res = RefreshResult(hours, days, time.perf_counter() - t0, final)
    if hours:
        log.info("rollups refreshed", extra={"hours": hours, "days": days, "seconds": round(res.seconds, 3)})
    return res


def _recompute(conn: psycopg.Connection, floor: datetime) -> tuple[int, int, int]:
    final = conn.execute("DELETE FROM _rollup_work WHERE hour < %s", (floor,)).rowcount
    row = conn.execute(
        f"SELECT count(DISTINCT (device_id, hour)), count(DISTINCT (device_id, date_trunc('day', hour, '{LOCAL_TZ}')))"
        " FROM _rollup_work").fetchone()
    conn.execute(_HOURLY)
    conn.execute(_DAILY)
    conn.execute("TRUNCATE _rollup_work")
    return (int(row[0]), int(row[1]), final) if row else (0, 0, final)


def _warn_final(final: int, floor: datetime) -> None:
    if final:
        log.warning("rollup marks before the refresh window dropped: those buckets are final",
                    extra={"marks": final, "refresh_from": floor.isoformat()})


_TAKE_TSDB = """
SELECT min(hour) FILTER (WHERE hour >= %(floor)s), max(hour), count(*) FILTER (WHERE hour < %(floor)s),
       clock_timestamp()
  FROM readings_dirty
"""


def _refresh_tsdb(conn: psycopg.Connection, since: datetime | None, t0: float, floor: datetime) -> RefreshResult:
    conn.rollback()
    if since is None and conn.execute("SELECT 1 FROM readings_dirty LIMIT 1").fetchone() is None:
        conn.rollback()
        return RefreshResult(0, 0, time.perf_counter() - t0)
    conn.rollback()
    with conn.transaction():
        # writers mark inside their batch transaction: the lock waits for those that marked already
        # and makes later ones mark after taken_at (see the module docstring)
        conn.execute("LOCK TABLE readings_dirty IN EXCLUSIVE MODE")
        row = conn.execute(_TAKE_TSDB, {"floor": floor}).fetchone()
    assert row is not None
    lo, hi, final, taken_at = row
    if since is not None:
        lo = since if lo is None else min(lo, since)
        hi = datetime.now(UTC) if hi is None else max(hi, datetime.now(UTC))
    hours = days = 0
    if lo is not None and hi is not None and hi >= floor:
        h_start = max(_trunc(conn, lo, "hour", "UTC"), floor)
        h_end = _trunc(conn, hi, "hour", "UTC") + timedelta(hours=1)
        d_start = max(_trunc(conn, lo, "day", LOCAL_TZ), floor)
        d_end = _trunc(conn, hi, "day", LOCAL_TZ) + timedelta(days=1)
        conn.rollback()  # end the implicit transaction of the date_trunc queries
        was = conn.autocommit
        conn.autocommit = True  # refresh_continuous_aggregate cannot run inside a transaction block
        try:
            conn.execute("CALL refresh_continuous_aggregate('samples_hourly', %s::timestamptz, %s::timestamptz)",
                         (h_start, h_end))
            conn.execute("CALL refresh_continuous_aggregate('samples_daily', %s::timestamptz, %s::timestamptz)",
                         (d_start, d_end))
            for hourly, daily in ddl.extra_aggregates(conn):  # pairs generated for later metrics (ingest.ddl)
                conn.execute("CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
                             (hourly, h_start, h_end))
                conn.execute("CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
                             (daily, d_start, d_end))
        finally:
            conn.autocommit = was
        hours = int((h_end - h_start).total_seconds() // 3600)
        days = int((d_end - d_start).total_seconds() // 86400)
        log.info("continuous aggregates refreshed", extra={"from": h_start.isoformat(), "to": h_end.isoformat(),
                                                           "seconds": round(time.perf_counter() - t0, 3)})
    with conn.transaction():  # exactly the marks seen under the lock (later ones carry a later marked_at)
        conn.execute("DELETE FROM readings_dirty WHERE marked_at <= %s", (taken_at,))
    _warn_final(int(final), floor)
    return RefreshResult(hours, days, time.perf_counter() - t0, int(final))


def _trunc(conn: psycopg.Connection, t: datetime, unit: str, tz: str) -> datetime:
    """``date_trunc(unit, t, tz)`` as the database computes it (the same rule the rollup SQL uses)."""
    row = conn.execute("SELECT date_trunc(%s, %s::timestamptz, %s)", (unit, t, tz)).fetchone()
    assert row is not None
    return row[0]
