"""Storage facts the ingest code needs: which path runs, retention, partitions.

The storage path (``timescaledb`` or ``postgresql``) is decided once by the composition root and
recorded in ``yuncang_meta``; domain packages read it from the database (they never import
``yuncang``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import psycopg

from ingest.windows import RETENTION_DAYS, drop_before

StoragePath = Literal["timescaledb", "postgresql"]

#: How far back readings are accepted, kept and rolled up: one rule, in :mod:`ingest.windows`.
__all__ = ["MAX_FUTURE_S", "RETENTION_DAYS", "StoragePath", "apply_retention", "ensure_partitions", "storage_path",
           "utc_day"]

#: Readings stamped more than this many seconds after the ingest clock are rejected as ``future_time``.
MAX_FUTURE_S = 600


def storage_path(conn: psycopg.Connection) -> StoragePath:
    """The path recorded by the migration runner (``postgresql`` when none is recorded)."""
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT value FROM yuncang_meta WHERE key = 'storage_path'")
            row = cur.fetchone()
        except psycopg.errors.UndefinedTable:
            conn.rollback()
            return "postgresql"
    return "timescaledb" if row and row[0] == "timescaledb" else "postgresql"


def utc_day(t: datetime) -> datetime:
    """Start of the UTC day containing ``t``."""
    t = t.astimezone(UTC)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def ensure_partitions(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    """Create the daily partitions covering ``[start, end]`` (no-op on TimescaleDB); returns how many.

    Runs in the caller's transaction; rows parked in the default partition for a new day are moved.
    """
    row = conn.execute("SELECT ingest_ensure_partitions(%s, %s)", (start, end)).fetchone()
    return int(row[0]) if row else 0


def apply_retention(conn: psycopg.Connection, now: datetime | None = None,
                    retention_days: int = RETENTION_DAYS) -> int:
    """Drop raw partitions/chunks that end at or before :func:`ingest.windows.drop_before`; returns how many.

    Both paths (TimescaleDB's own retention policy is not used: it does not cut on local days)."""
    now = now or datetime.now(UTC)
    row = conn.execute("SELECT ingest_drop_partitions_before(%s)", (drop_before(now, retention_days),)).fetchone()
    return int(row[0]) if row else 0
