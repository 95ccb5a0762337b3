"""Wide sample rows: how narrow readings are stored.

Raw readings are stored one row per (device, measurement time) in ``samples`` with a column per
metric of :data:`registry.metrics.METRICS` (NULL = not measured); the narrow view ``readings``
(device_id, metric, time, value) serves readers. Why wide, with the measurement behind it:
``ingest/sql/005_wide_samples.pg.sql``.

Storing keeps the narrow table's semantics value by value: the first value stored for
(device, metric, time) wins and a re-sent value is a no-op, while a late value for a metric the stored
sample lacks fills its column.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg

from ingest.model import COLUMNS, NO_VALUES, SLOT, Reading, SampleRow

_N = len(COLUMNS)

#: psycopg binary COPY types of a sample row ``(device_id, time, *COLUMNS)``
COPY_TYPES: list[str] = ["text", "timestamptz"] + ["float8"] * _N

_COLS = ", ".join(COLUMNS)


def row_of(r: Reading) -> SampleRow:
    """The sample row holding the one narrow reading ``r``."""
    row: SampleRow = [r[0], r[2], *NO_VALUES]
    row[SLOT[r[1]]] = r[3]
    return row


def merge(rows: list[SampleRow], values: int | None = None) -> tuple[list[SampleRow], int]:
    """One row per (device, time): later rows of a key fill only the values the first lacks (first value
    wins, as in the database); returns (rows, values kept). Rows keep their order of first appearance;
    the first row of a key is updated in place (merging again gives the same result).

    ``values``: the caller's count of the values in ``rows``; when every key is distinct (the usual
    batch) the rows are returned as they are with that count, without looking at each value."""
    if values is not None and len({(r[0], r[1]) for r in rows}) == len(rows):
        return rows, values
    out: dict[tuple[str, datetime], SampleRow] = {}
    get = out.get
    kept = 0
    width = _N + 2
    for r in rows:
        key = (r[0], r[1])
        o = get(key)
        if o is None:
            out[key] = r
            kept += width - r.count(None) - 2
            continue
        for i in range(2, width):
            if o[i] is None and r[i] is not None:
                o[i] = r[i]
                kept += 1
    return list(out.values()), kept


def pivot(readings: Iterable[Reading]) -> tuple[list[SampleRow], int]:
    """Group narrow readings into sample rows; returns (rows, values kept) — see :func:`merge`."""
    return merge([row_of(r) for r in readings])


def copy_sql(table: str) -> str:
    """Binary COPY of sample rows into ``table`` (``samples`` or a staging table like it)."""
    return f"COPY {table} (device_id, time, {_COLS}) FROM STDIN (FORMAT BINARY)"


def write_rows(cur: psycopg.Cursor[Any], table: str, rows: list[SampleRow]) -> None:
    """Binary COPY ``rows`` into ``table``."""
    with cur.copy(copy_sql(table)) as cp:
        cp.set_types(COPY_TYPES)
        write = cp.write_row
        for r in rows:
            write(r)


def merge_sql(stage: str) -> str:
    """Statement that merges the sample rows of ``stage`` into ``samples`` and returns the values that
    were new (one row, one column).

    A staged value fills its column only where the stored sample has none (first value wins); a
    sample whose every staged value is already stored is not touched at all (no dead tuple, no
    rollup re-marking). The count is taken from the statement's snapshot, before the merge.
    """
    gain = ", ".join(f"CASE WHEN s.{c} IS NULL THEN w.{c} END" for c in COLUMNS)
    fill = ", ".join(f"{c} = COALESCE(s.{c}, EXCLUDED.{c})" for c in COLUMNS)
    changed = " OR ".join(f"(s.{c} IS NULL AND EXCLUDED.{c} IS NOT NULL)" for c in COLUMNS)
    return (f"WITH gain AS (SELECT COALESCE(sum(num_nonnulls({gain})), 0)::bigint AS n"
            f" FROM {stage} w LEFT JOIN samples s ON s.device_id = w.device_id AND s.time = w.time),"
            f" merged AS (INSERT INTO samples AS s (device_id, time, {_COLS})"
            f" SELECT device_id, time, {_COLS} FROM {stage} ORDER BY device_id, time"
            f" ON CONFLICT (device_id, time) DO UPDATE SET {fill} WHERE {changed})"
            " SELECT n FROM gain")


def insert_sql(stage: str) -> str:
    """Plain INSERT of ``stage`` into ``samples`` (raises a unique violation on any stored sample)."""
    return f"INSERT INTO samples (device_id, time, {_COLS}) SELECT device_id, time, {_COLS} FROM {stage}"


def mark_dirty_sql(stage: str) -> str:
    """Statement that marks the rollup buckets (device, UTC hour) of the sample rows of ``stage`` in
    ``readings_dirty``, for :func:`ingest.rollups.refresh`. Needed on TimescaleDB only: hypertables have no
    statement trigger (plain PostgreSQL's ``samples`` marks its own rows)."""
    return ("INSERT INTO readings_dirty (device_id, hour)"
            f" SELECT DISTINCT device_id, date_trunc('hour', time, 'UTC') FROM {stage} ORDER BY 1, 2"
            " ON CONFLICT (device_id, hour) DO UPDATE SET marked_at = now()")


def store_readings(conn: psycopg.Connection, readings: Iterable[Reading]) -> int:
    """Store narrow readings ``(device_id, metric, time, value)`` in the caller's transaction; returns
    the values that were new. For bulk loaders (fixtures, benchmarks, back-fills): pivots in Python,
    COPYs into a temporary staging table and merges, so duplicates and partial samples are handled
    like ingest handles them, and their rollup buckets are marked for :func:`ingest.rollups.refresh` on both
    storage paths (a back-fill is rolled up like live data). On plain PostgreSQL the daily partitions must
    exist (see :func:`ingest.storage.ensure_partitions`; rows of a missing day land in ``samples_default``).
    """
    from ingest.storage import storage_path

    rows, _ = pivot(readings)
    if not rows:
        return 0
    tsdb = storage_path(conn) == "timescaledb"
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS _samples_load (LIKE samples) ON COMMIT DELETE ROWS")
        write_rows(cur, "_samples_load", rows)
        got = cur.execute(merge_sql("_samples_load")).fetchone()
        if tsdb:
            cur.execute(mark_dirty_sql("_samples_load"))
        cur.execute("TRUNCATE _samples_load")
    return int(got[0]) if got else 0
