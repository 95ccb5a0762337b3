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

from ingest.model import Reading
from registry.metrics import METRICS

#: metric columns of ``samples``, in table order
COLUMNS: tuple[str, ...] = tuple(METRICS)
_INDEX = {m: i for i, m in enumerate(COLUMNS)}
_N = len(COLUMNS)

#: psycopg binary COPY types of a sample row ``(device_id, time, *COLUMNS)``
COPY_TYPES: list[str] = ["text", "timestamptz"] + ["float8"] * _N

_COLS = ", ".join(COLUMNS)

#: A wide row: [device_id, time, value or None per COLUMNS]
Row = list[Any]


def pivot(readings: Iterable[Reading]) -> tuple[list[Row], int]:
    """Group narrow readings into sample rows; returns (rows, values kept).

    Within the input the first value of a (device, metric, time) wins and later ones are dropped (the
    same rule the database applies to values already stored), so ``values kept`` <= readings given.
    Rows come out in order of first appearance.
    """
    rows: dict[tuple[str, datetime], Row] = {}
    get = rows.get
    index = _INDEX
    kept = 0
    for dev, metric, ts, val in readings:
        key = (dev, ts)
        r = get(key)
        if r is None:
            r = rows[key] = [dev, ts, *(None,) * _N]
        i = index[metric] + 2
        if r[i] is None:
            r[i] = val
            kept += 1
    return list(rows.values()), kept


def copy_sql(table: str) -> str:
    """Binary COPY of sample rows into ``table`` (``samples`` or a staging table like it)."""
    return f"COPY {table} (device_id, time, {_COLS}) FROM STDIN (FORMAT BINARY)"


def write_rows(cur: psycopg.Cursor[Any], table: str, rows: list[Row]) -> None:
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


def store_readings(conn: psycopg.Connection, readings: Iterable[Reading]) -> int:
    """Store narrow readings ``(device_id, metric, time, value)`` in the caller's transaction; returns
    the values that were new. For bulk loaders (fixtures, benchmarks, back-fills): pivots in Python,
    COPYs into a temporary staging table and merges, so duplicates and partial samples are handled
    like ingest handles them. On plain PostgreSQL the daily partitions must exist (see
    :func:`ingest.storage.ensure_partitions`; rows of a missing day land in ``samples_default``).
    """
    rows, _ = pivot(readings)
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS _samples_load (LIKE samples) ON COMMIT DELETE ROWS")
        cur.execute("TRUNCATE _samples_load")
        write_rows(cur, "_samples_load", rows)
        got = cur.execute(merge_sql("_samples_load")).fetchone()
        cur.execute("TRUNCATE _samples_load")
    return int(got[0]) if got else 0
