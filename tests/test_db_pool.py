"""The connection pool survives a PostgreSQL restart: no request gets a connection the server closed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from yuncang.db import make_pool
from yuncang.private_services import PrivatePostgres, pg_bin

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(pg_bin("initdb") is None, reason="needs PostgreSQL's initdb for a private, "
                                 "restartable cluster (the machine's must never be restarted)")]


def test_pooled_connections_killed_by_a_restart_are_replaced_before_use() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="yc-pool-"))
    pg = PrivatePostgres(tmp / "pg", timescaledb=False)
    try:
        pg.init()
        pg.start()
        pool = make_pool(pg.admin_url, min_size=3, max_size=3, name="restart-test")
        try:
            pool.wait(timeout=30)
            pids = set()
            with pool.connection() as a, pool.connection() as b, pool.connection() as c:
                for conn in (a, b, c):
                    pids.add(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
            assert len(pids) == 3
            pg.restart()
            # every idle connection in the pool was closed by the server: each checkout must still work
            for _ in range(3):
                with pool.connection() as conn:
                    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
                    assert pid not in pids
        finally:
            pool.close()
    finally:
        try:
            pg.stop()
        except RuntimeError:
            pg.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def test_check_alive_accepts_a_live_connection() -> None:
    from yuncang.db import check_alive

    tmp = Path(tempfile.mkdtemp(prefix="yc-pool-"))
    pg = PrivatePostgres(tmp / "pg", timescaledb=False)
    try:
        pg.init()
        pg.start()
        with psycopg.connect(pg.admin_url) as conn:
            check_alive(conn)
            conn.execute("SELECT 1")
            pg.restart()
            with pytest.raises(psycopg.OperationalError):
                check_alive(conn)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
