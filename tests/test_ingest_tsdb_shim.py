"""The TimescaleDB path, executed: migrations, writer and rollups on plain PostgreSQL with a shim of the
TimescaleDB API.

TimescaleDB cannot be installed on this machine, so its SQL would otherwise only be parsed. Here the
``*.tsdb.sql`` migrations run for real against a database whose ``yuncang_meta`` says ``timescaledb``,
with stand-ins for the extension's functions (``create_hypertable``, policies, ``time_bucket``,
``drop_chunks``, ``refresh_continuous_aggregate`` = REFRESH MATERIALIZED VIEW) and the extension-only
storage options removed (``timescaledb.continuous`` / ``timescaledb.compress``; continuous aggregates
become materialized views). What this proves: our statements, column lists, views, the data move of
005, and ingest's TimescaleDB branches in Python (staging, ingest-side dirty marking, aggregate refresh).
What it cannot prove: TimescaleDB's own behaviour (chunking, compression, real-time aggregation).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import yuncang.migrations as migrations
from ingest import ddl, rollups
from ingest.batch import Batch
from ingest.samples import COLUMNS
from ingest.storage import apply_retention, storage_path
from ingest.writer import BatchWriter
from registry.seed import SeedParams, seed

SHIM = """
CREATE FUNCTION create_hypertable(relation regclass, time_column_name name,
                                  chunk_time_interval interval DEFAULT NULL) RETURNS text
    LANGUAGE sql AS $$ SELECT relation::text $$;
CREATE FUNCTION add_compression_policy(relation regclass, compress_after interval) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION add_retention_policy(relation regclass, drop_after interval) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION remove_compression_policy(relation regclass, if_exists boolean DEFAULT false) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION remove_retention_policy(relation regclass, if_exists boolean DEFAULT false) RETURNS void
    LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION add_continuous_aggregate_policy(continuous_aggregate regclass, start_offset interval,
                                                end_offset interval, schedule_interval interval) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
-- time_bucket(width, ts[, timezone]): buckets aligned like TimescaleDB's (origin Monday 2000-01-03)
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE AS $$ SELECT date_bin(bucket_width, ts, '2000-01-03 00:00:00+00') $$;
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz, timezone text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE AS $$
    SELECT date_bin(bucket_width, ts AT TIME ZONE timezone, '2000-01-03 00:00:00') AT TIME ZONE timezone $$;
-- drop_chunks: whole days older than the cutoff (chunks are one day)
CREATE FUNCTION drop_chunks(relation regclass, older_than timestamptz) RETURNS SETOF text
    LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('DELETE FROM %s WHERE time < date_trunc(''day'', $1, ''UTC'')', relation) USING older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN RETURN NEXT relation::text || '_chunk'; END IF;
END $$;
CREATE PROCEDURE refresh_continuous_aggregate(continuous_aggregate regclass, window_start timestamptz,
                                              window_end timestamptz)
    LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('REFRESH MATERIALIZED VIEW %s', continuous_aggregate); END $$;
"""

_ONLY_IN_TIMESCALEDB = [
    (re.compile(r"WITH \(timescaledb\.continuous[^)]*\)\s*AS"), "AS"),
    (re.compile(r"ALTER TABLE \w+ SET \(\s*timescaledb\.compress[^;]*;", re.S), ""),
]


@pytest.fixture
def tsdb_shim(make_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch, run_facts: dict[str, str]) -> str:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(SHIM)
        c.execute("CREATE TABLE yuncang_meta (key text PRIMARY KEY, value text NOT NULL)")
        c.execute("INSERT INTO yuncang_meta VALUES ('storage_path', 'timescaledb')")
    real = migrations.discover

    def discover(path: str, packages: tuple[str, ...] = migrations.PACKAGES) -> list[migrations.Migration]:
        out = real(path, packages)  # type: ignore[arg-type]
        for mg in out:
            for pat, repl in _ONLY_IN_TIMESCALEDB:
                object.__setattr__(mg, "sql", pat.sub(repl, mg.sql))
        return out

    monkeypatch.setattr(migrations, "discover", discover)
    monkeypatch.setattr(ddl, "CONTINUOUS_WITH", "")  # aggregates generated from the catalogue (010)
    applied = migrations.migrate(url, packages=("registry", "ingest"))
    assert "ingest/002_readings" in applied and "ingest/005_wide_samples" in applied
    assert "ingest/004_c_collation" not in applied  # plain-path only
    with psycopg.connect(url) as c:
        assert storage_path(c) == "timescaledb"
        seed(c, SeedParams(orchard_count=12, total_area_mu=1_200))
    run_facts["tsdb_shim"] = "ran"
    return url


def _batch(rows: list[tuple[str, str, datetime, float]]) -> Batch:
    b = Batch()
    b.add_readings(rows)
    return b


def test_timescaledb_path_stores_merges_and_rolls_up(tsdb_shim: str) -> None:
    t0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    w = BatchWriter(tsdb_shim)
    try:
        first = [("gw-0001", "air_temp_c", t0 + timedelta(minutes=5 * k), 10.0 + k) for k in range(12)]
        first += [("gw-0001", "rain_mm", t0 + timedelta(minutes=5 * k), 0.5) for k in range(12)]
        assert w.write(_batch(first)) == 24
        assert w.path == "timescaledb" and w.fast_batches == 1
        # a re-send of two values plus a late soil value for a stored sample: only the soil value is new
        late = [*first[:2], ("gw-0001", "soil_vwc_10cm", t0, 0.31)]
        assert w.write(_batch(late)) == 1 and w.slow_batches == 1
    finally:
        w.close()
    with psycopg.connect(tsdb_shim) as c:
        assert c.execute("SELECT count(*) FROM readings").fetchone() == (25,)
        assert c.execute("SELECT value FROM readings WHERE metric = 'air_temp_c' AND time = %s",
                         (t0,)).fetchone() == (10.0,)
        # ingest marked the hour itself (no statement triggers on hypertables)
        assert c.execute("SELECT hour FROM readings_dirty").fetchall() == [(t0,)]
        c.commit()
        res = rollups.refresh(c)
        assert res.hours >= 1
        hourly = {r[0]: r[1:] for r in c.execute(
            "SELECT metric, n, min, max, avg, sum FROM readings_hourly WHERE device_id = 'gw-0001' AND bucket = %s",
            (t0,))}
        assert hourly["air_temp_c"] == (12, 10.0, 21.0, 15.5, 186.0)
        assert hourly["rain_mm"][0] == 12 and hourly["rain_mm"][4] == pytest.approx(6.0)
        assert hourly["soil_vwc_10cm"][0] == 1 and set(hourly) == {"air_temp_c", "rain_mm", "soil_vwc_10cm"}
        local_day = c.execute("SELECT date_trunc('day', %s::timestamptz, 'Asia/Shanghai')", (t0,)).fetchone()
        daily = c.execute("SELECT n, sum FROM readings_daily WHERE device_id = 'gw-0001' AND metric = 'rain_mm'"
                          " AND bucket = %s", (local_day[0] if local_day else None,)).fetchone()
        assert daily is not None and daily[0] == 12 and daily[1] == pytest.approx(6.0)
        # a narrow insert through the view marks its hour too, then the rollup sees it
        c.execute("DELETE FROM readings_dirty")
        c.execute("INSERT INTO readings VALUES ('gw-0002', 'wind_ms', %s, 2.5)", (t0,))
        assert c.execute("SELECT device_id FROM readings_dirty").fetchall() == [("gw-0002",)]
        c.commit()
        rollups.refresh(c)
        assert c.execute("SELECT n, avg FROM readings_hourly WHERE device_id = 'gw-0002'").fetchall() == [(1, 2.5)]
        # retention drops whole days beyond the window
        c.execute("INSERT INTO readings VALUES ('gw-0003', 'wind_ms', now() - interval '500 days', 1)")
        assert apply_retention(c) == 1
        assert c.execute("SELECT count(*) FROM readings WHERE device_id = 'gw-0003'").fetchone() == (0,)
        assert [r[0] for r in c.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'samples'"
            " ORDER BY ordinal_position")] == ["device_id", "time", *COLUMNS]
        c.rollback()
