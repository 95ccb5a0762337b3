"""psycopg 3 connection pool helpers."""

from __future__ import annotations

import psycopg
from psycopg.pq import ConnStatus
from psycopg_pool import ConnectionPool


def check_alive(conn: psycopg.Connection) -> None:
    """Raise when the server has closed this idle pooled connection (e.g. PostgreSQL restarted).

    Reads whatever is pending on the socket without a round trip (libpq ``PQconsumeInput``, non-blocking): a server
    that shut down sent its FATAL message and closed the socket, which marks the connection bad here.
    The pool then replaces it instead of handing it to a request (without this check the first request
    on each stale connection failed after a database restart: found by the production rehearsal).
    """
    pg = conn.pgconn
    # a closed socket shows as its last message (the FATAL) and then end of file: two reads see both
    # (raising OperationalError); on a live idle connection each read finds nothing and returns at once
    for _ in range(2):
        pg.consume_input()
    if pg.status != ConnStatus.OK or conn.closed:
        raise psycopg.OperationalError("connection closed by the server")


def make_pool(url: str, *, min_size: int = 1, max_size: int = 10, name: str = "yuncang") -> ConnectionPool:
    """Open a connection pool and wait until its first connection works (raises on failure). Connections
    are checked (:func:`check_alive`, no round trip) each time they leave the pool."""
    pool = ConnectionPool(url, min_size=min_size, max_size=max_size, name=name, open=False, check=check_alive)
    pool.open(wait=True, timeout=30)
    return pool
