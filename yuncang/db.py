"""psycopg 3 connection pool helpers."""

from __future__ import annotations

from psycopg_pool import ConnectionPool


def make_pool(url: str, *, min_size: int = 1, max_size: int = 10, name: str = "yuncang") -> ConnectionPool:
    """Open a connection pool and wait until its first connection works (raises on failure)."""
    pool = ConnectionPool(url, min_size=min_size, max_size=max_size, name=name, open=False)
    pool.open(wait=True, timeout=30)
    return pool
