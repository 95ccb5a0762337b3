"""Writes a batch in ONE transaction: readings as wide sample rows (binary COPY into ``samples``, or into
a temp staging table and a merge when some samples are already stored), dead letters, device health and
traffic. Synchronous psycopg; the service runs it in a worker thread so MQTT keeps flowing while
PostgreSQL works.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import psycopg

from ingest import samples
from ingest.batch import Batch
from ingest.dead_letters import SUMMARY_SQL, summary_rows
from ingest.storage import StoragePath, storage_path

log = logging.getLogger(__name__)

_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS _ingest_wide (LIKE samples) ON COMMIT DELETE ROWS;"
          "CREATE TEMP TABLE IF NOT EXISTS _ingest_health (device_id text, first_seen timestamptz,"
          " last_seen timestamptz, last_reading_at timestamptz, messages integer, readings integer,"
          " rejects integer, battery_v float8, battery_at timestamptz, rssi_dbm float8, rssi_at timestamptz,"
          " last_seq bigint) ON COMMIT DELETE ROWS;"
          "CREATE TEMP TABLE IF NOT EXISTS _ingest_traffic (device_id text, hour timestamptz, messages integer,"
          " readings integer, rejects integer) ON COMMIT DELETE ROWS")

_MERGE = samples.merge_sql("_ingest_wide")
# Fast path: a plain INSERT is ~1.5-2x faster than ON CONFLICT's speculative insertion; it is tried in a
# savepoint and, on any unique violation (a re-send, a late value for a stored sample, a clock jump
# re-stamping a stored time), the savepoint is rolled back and the batch is merged instead. Same values
# stored either way.
_INSERT = samples.insert_sql("_ingest_wide")

# TimescaleDB: no statement trigger on hypertables, so ingest marks the rollup buckets itself
_MARK_DIRTY = samples.mark_dirty_sql("_ingest_wide")

_DEAD = ("INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, metric, reading_time, msg_key,"
         " item, payload, payload_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
         " ON CONFLICT (msg_key, item) DO NOTHING")

_HEALTH = """
INSERT INTO device_health AS h (device_id, first_seen_at, last_seen_at, last_reading_at, messages, readings, rejects,
                                battery_v, battery_at, rssi_dbm, rssi_at, last_seq, updated_at)
SELECT s.device_id, s.first_seen, s.last_seen, s.last_reading_at, s.messages, s.readings, s.rejects,
       s.battery_v, s.battery_at, s.rssi_dbm, s.rssi_at, s.last_seq, now()
  FROM _ingest_health s JOIN devices d ON d.device_id = s.device_id
 ORDER BY s.device_id
ON CONFLICT (device_id) DO UPDATE SET
    first_seen_at   = LEAST(h.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at    = GREATEST(h.last_seen_at, EXCLUDED.last_seen_at),
    last_reading_at = GREATEST(h.last_reading_at, EXCLUDED.last_reading_at),
    messages        = h.messages + EXCLUDED.messages,
    readings        = h.readings + EXCLUDED.readings,
    rejects         = h.rejects + EXCLUDED.rejects,
    battery_v       = CASE WHEN EXCLUDED.battery_at >= h.battery_at OR h.battery_at IS NULL
                           THEN COALESCE(EXCLUDED.battery_v, h.battery_v) ELSE h.battery_v END,
    battery_at      = GREATEST(h.battery_at, EXCLUDED.battery_at),
    rssi_dbm        = CASE WHEN EXCLUDED.rssi_at >= h.rssi_at OR h.rssi_at IS NULL
                           THEN COALESCE(EXCLUDED.rssi_dbm, h.rssi_dbm) ELSE h.rssi_dbm END,
    rssi_at         = GREATEST(h.rssi_at, EXCLUDED.rssi_at),
    last_seq        = COALESCE(EXCLUDED.last_seq, h.last_seq),
    updated_at      = now()
"""

_TRAFFIC = """
INSERT INTO device_traffic_hourly AS t (device_id, hour, messages, readings, rejects)
SELECT s.device_id, s.hour, s.messages, s.readings, s.rejects
  FROM _ingest_traffic s JOIN devices d ON d.device_id = s.device_id
 ORDER BY s.device_id, s.hour
ON CONFLICT (device_id, hour) DO UPDATE SET
    messages = t.messages + EXCLUDED.messages, readings = t.readings + EXCLUDED.readings,
    rejects = t.rejects + EXCLUDED.rejects
"""


_UNMAPPED = """
INSERT INTO device_unmapped_keys AS u (device_id, key, first_seen_at, last_seen_at, count, sample_value)
SELECT x.device_id, x.key, x.first_seen, x.last_seen, x.n, x.sample
  FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::bigint[], %s::text[])
       AS x(device_id, key, first_seen, last_seen, n, sample)
  JOIN devices d ON d.device_id = x.device_id
 ORDER BY x.device_id, x.key
ON CONFLICT (device_id, key) DO UPDATE SET
    first_seen_at = LEAST(u.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at  = GREATEST(u.last_seen_at, EXCLUDED.last_seen_at),
    count         = u.count + EXCLUDED.count,
    sample_value  = EXCLUDED.sample_value
"""


_COUNTERS = """
INSERT INTO device_counter_state AS c (device_id, key, last_time, last_total)
SELECT x.device_id, x.key, to_timestamp(x.t), x.total
  FROM unnest(%s::text[], %s::text[], %s::float8[], %s::float8[]) AS x(device_id, key, t, total)
  JOIN devices d ON d.device_id = x.device_id
 ORDER BY x.device_id, x.key
ON CONFLICT (device_id, key) DO UPDATE SET last_time = EXCLUDED.last_time, last_total = EXCLUDED.last_total,
    updated_at = now()
 WHERE EXCLUDED.last_time > c.last_time
"""

#: baselines of counter fields, as :meth:`ingest.counters.CounterState.merge` takes them
LOAD_COUNTERS = "SELECT device_id, key, extract(epoch FROM last_time)::float8, last_total FROM device_counter_state"


def _clean(s: object) -> str:
    """PostgreSQL text cannot hold NUL."""
    return str(s).replace("\x00", "\\0")


class BatchWriter:
    """Owns one database connection; :meth:`write` stores a batch atomically and returns new-row count."""

    def __init__(self, database_url: str, *, application_name: str = "yuncang-ingest"):
        self.database_url = database_url
        self.application_name = application_name
        self.conn: psycopg.Connection | None = None
        self.path: StoragePath = "postgresql"
        self._days: set[date] = set()
        self._fast_skip = 0
        self.fast_batches = 0      #: batches stored by the plain INSERT
        self.slow_batches = 0      #: batches that hit a unique violation and used ON CONFLICT

    def connect(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.close()
            conn = psycopg.connect(self.database_url, application_name=self.application_name,
                                   connect_timeout=10)
            self.path = storage_path(conn)
            conn.rollback()
            with conn.transaction():
                conn.execute(_STAGE)
            self.conn = conn
            self._days.clear()
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
            self.conn = None

    def _ensure_partitions(self, conn: psycopg.Connection, b: Batch) -> None:
        if b.tmin is None or b.tmax is None or self.path != "postgresql":
            return
        d0, d1 = b.tmin.date(), b.tmax.date()
        days = {d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)}
        if days <= self._days:
            return
        with conn.transaction():  # short transaction of its own: partition DDL must not wait on the batch
            conn.execute("SELECT ingest_ensure_partitions(%s, %s)", (b.tmin, b.tmax))
        self._days |= days

    def _store(self, conn: psycopg.Connection, cur: psycopg.Cursor[Any], b: Batch) -> int:
        """Readings of ``b`` into ``samples`` (wide rows, see :mod:`ingest.samples`); returns new values.

        Plain PostgreSQL, fast path: binary COPY straight into ``samples`` (the statement trigger marks
        the rollup buckets) inside a savepoint; a unique violation rolls the savepoint back and the batch
        goes through the staging table and the merge (first value wins, late values fill). TimescaleDB:
        always through staging (ingest marks the buckets from it).
        """
        rows, kept = samples.merge(b.rows, b.n_readings)
        if self.path == "postgresql" and self._fast_skip > 0:
            self._fast_skip -= 1
        elif self.path == "postgresql":
            try:
                with conn.transaction():
                    samples.write_rows(cur, "samples", rows)
                self.fast_batches += 1
                return kept
            except psycopg.errors.UniqueViolation:
                self.slow_batches += 1
                self._fast_skip = 4  # conflicts come in bursts (a gateway's re-sent buffer)
        samples.write_rows(cur, "_ingest_wide", rows)
        inserted = self._move(conn, cur, kept)
        if self.path == "timescaledb":
            cur.execute(_MARK_DIRTY)
        return inserted

    def _move(self, conn: psycopg.Connection, cur: psycopg.Cursor[Any], kept: int) -> int:
        """Staging -> samples (TimescaleDB, or a plain-path batch that conflicted); returns new values."""
        if self.path == "timescaledb":
            if self._fast_skip > 0:
                self._fast_skip -= 1
            else:
                try:
                    with conn.transaction():
                        cur.execute(_INSERT)
                    self.fast_batches += 1
                    return kept
                except psycopg.errors.UniqueViolation:
                    self.slow_batches += 1
                    self._fast_skip = 4
        row = cur.execute(_MERGE).fetchone()
        return int(row[0]) if row else 0

    def write(self, b: Batch) -> int:
        """Write ``b`` in one transaction; returns the readings that were new rows. Raises psycopg errors."""
        conn = self.connect()
        self._ensure_partitions(conn, b)
        inserted = 0
        with conn.transaction(), conn.cursor() as cur:
            if b.rows:
                inserted = self._store(conn, cur, b)
            if b.dead:
                cur.executemany(_DEAD, b.dead)
            if b.floods:
                cur.executemany(SUMMARY_SQL, summary_rows(b.floods))
            if b.devices:
                with cur.copy("COPY _ingest_health FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["text", "timestamptz", "timestamptz", "timestamptz", "int4", "int4", "int4",
                                  "float8", "timestamptz", "float8", "timestamptz", "int8"])
                    for dev, t in b.devices.items():
                        cp.write_row((dev, t.first_seen, t.last_seen, t.last_reading_at, t.messages, t.readings,
                                      t.rejects, t.battery_v, t.battery_at, t.rssi_dbm, t.rssi_at, t.seq))
                cur.execute(_HEALTH)
                with cur.copy("COPY _ingest_traffic FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["text", "timestamptz", "int4", "int4", "int4"])
                    for (dev, hour), (n_msg, n_ok, n_bad) in b.traffic.items():
                        cp.write_row((dev, hour, n_msg, n_ok, n_bad))
                cur.execute(_TRAFFIC)
            if b.counters:
                ks = list(b.counters)
                cur.execute(_COUNTERS, ([k[0] for k in ks], [_clean(k[1]) for k in ks],
                                        [b.counters[k][0] for k in ks], [b.counters[k][1] for k in ks]))
            if b.unmapped:
                keys = list(b.unmapped)
                vals = [b.unmapped[k] for k in keys]
                cur.execute(_UNMAPPED, ([_clean(k[0]) for k in keys], [_clean(k[1]) for k in keys],
                                        [v[2] for v in vals], [v[3] for v in vals], [v[0] for v in vals],
                                        [_clean(v[1]) for v in vals]))
        return inserted
