"""Storage generated from the metrics catalogue (ingest.ddl, migration ingest/010_metric_columns.py): the
schema matches registry.metrics.METRICS on the storage path that runs, and adding a quantity later adds
its column, its place in the narrow view and (TimescaleDB) a new rollup aggregate, with nothing dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from ingest import ddl, rollups
from ingest.samples import store_readings
from ingest.storage import storage_path
from registry.metrics import METRICS
from yuncang.migrations import migrate
from yuncang.tsdb_jobs import stop_scheduler_of


def _columns(conn: psycopg.Connection, rel: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum", (rel,)).fetchall()]


def test_schema_matches_the_catalogue_and_a_new_metric_needs_no_sql(make_database: Callable[[], str]) -> None:
    url = make_database()
    migrate(url)
    stop_scheduler_of(url)  # policies never run in the background here: refreshes below are explicit (issue 12)
    t0 = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(url) as c:
        path = storage_path(c)
        c.rollback()
        assert _columns(c, "samples") == ["device_id", "time", *METRICS]
        assert c.execute("SELECT checksum FROM schema_migrations WHERE key = 'ingest/010_metric_columns'"
                         ).fetchone() == (ddl.catalogue_checksum(),)
        # every catalogue metric is readable through the narrow view and rolled up on this path
        rows = [("gw-x", m, t0 + timedelta(minutes=5), METRICS[m].lo) for m in METRICS]
        assert store_readings(c, rows) == len(METRICS)
        c.commit()
        rollups.refresh(c, since=t0)
        stored = c.execute("SELECT metric FROM readings WHERE device_id = 'gw-x'").fetchall()
        assert sorted(r[0] for r in stored) == sorted(METRICS)
        assert sorted(r[0] for r in c.execute("SELECT metric FROM readings_hourly WHERE device_id = 'gw-x'")
                      ) == sorted(METRICS)
        c.commit()
        # a quantity added to the catalogue later: the generated DDL adds it without touching the rest
        more = [*METRICS, "leaf_temp_c"]
        sql = ddl.sync_sql(c, path, more)
        assert "DROP" not in sql.upper() and "ALTER TABLE samples ADD COLUMN leaf_temp_c double precision" in sql
        c.execute(sql.encode())
        c.commit()
        assert _columns(c, "samples") == ["device_id", "time", *METRICS, "leaf_temp_c"]
        c.execute("INSERT INTO samples (device_id, time, leaf_temp_c) VALUES ('gw-x', %s, 21.5)",
                  (t0 + timedelta(minutes=10),))
        if path == "timescaledb":
            c.execute("INSERT INTO readings_dirty (device_id, hour) VALUES ('gw-x', %s) ON CONFLICT DO NOTHING",
                      (t0,))
            gens = ddl.aggregate_generations(c)
            assert gens[0][2] == [m for m in METRICS if m in gens[0][2]] and gens[-1][2] == ["leaf_temp_c"]
        c.commit()
        rollups.refresh(c, since=t0)
        assert c.execute("SELECT value FROM readings WHERE device_id = 'gw-x' AND metric = 'leaf_temp_c'"
                         ).fetchall() == [(21.5,)]
        hourly = dict(c.execute("SELECT metric, n FROM readings_hourly WHERE device_id = 'gw-x'").fetchall())
        assert hourly["leaf_temp_c"] == 1 and set(hourly) == {*METRICS, "leaf_temp_c"}
        # the earlier rollups are still there (nothing was rebuilt), and running it again adds nothing
        again = ddl.sync_sql(c, path, more)
        assert "ADD COLUMN" not in again and "CREATE MATERIALIZED VIEW" not in again
        c.rollback()
