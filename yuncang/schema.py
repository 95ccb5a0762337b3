"""Decides the storage path: TimescaleDB when the extension can be had, plain PostgreSQL otherwise.

This is the one module that picks the path. Its verdict is stored in ``yuncang_meta`` (key
``storage_path``) so that domain packages can read it from the database without importing
``yuncang``.
"""

from __future__ import annotations

from typing import Literal

import psycopg

StoragePath = Literal["timescaledb", "postgresql"]


def detect_timescaledb(conn: psycopg.Connection) -> bool:
    """Return True when the ``timescaledb`` extension is installed or installable in this database.

    Tries ``CREATE EXTENSION IF NOT EXISTS timescaledb`` (inside a savepoint) when the extension
    is available but not yet created; a server without it in ``shared_preload_libraries`` fails
    there and we fall back to plain PostgreSQL.
    """
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if row:
        return True
    avail = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not avail:
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error:
        return False
    return True


def storage_path(conn: psycopg.Connection) -> StoragePath:
    """The path recorded by the migration runner (``postgresql`` if none recorded yet)."""
    try:
        row = conn.execute("SELECT value FROM yuncang_meta WHERE key = 'storage_path'").fetchone()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return "postgresql"
    return "timescaledb" if row and row[0] == "timescaledb" else "postgresql"


def describe(path: StoragePath) -> str:
    """Human label used in logs, health output and the test-run header."""
    return "TimescaleDB (hypertables, continuous aggregates)" if path == "timescaledb" else (
        "plain PostgreSQL (range partitions, scheduler-refreshed rollups)"
    )
