"""The TimescaleDB path on a real TimescaleDB: writer, ingest-side dirty marks, continuous-aggregate refresh,
compression and retention, each policy exercised explicitly (never the background scheduler).

Replaces the former shim tests (TimescaleDB's API stubbed on plain PostgreSQL): CI's first run now has
TimescaleDB 2.28.3, so these run there and are skipped on the plain path (embedded PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest import rollups
from ingest.batch import Batch
from ingest.samples import COLUMNS
from ingest.storage import apply_retention, storage_path
from ingest.writer import BatchWriter
from registry.seed import SeedParams, seed
from yuncang.migrations import migrate
from yuncang.tsdb_jobs import stop_scheduler_of


@pytest.fixture
def tsdb(make_database: Callable[[], str]) -> Iterator[str]:
    url = make_database()
    migrate(url, packages=("registry", "ingest"))
    with psycopg.connect(url) as c:
        if storage_path(c) != "timescaledb":
            pytest.skip("TimescaleDB path only (this server has no TimescaleDB; the plain path has its own tests)")
    stop_scheduler_of(url)  # policies run explicitly below, never by the background scheduler
    with psycopg.connect(url) as c:
        seed(c, SeedParams(orchard_count=12, total_area_mu=1_200))
    yield url


def _batch(rows: list[tuple[str, str, datetime, float]]) -> Batch:
    b = Batch()
    b.add_readings(rows)
    return b


def materialized(c: psycopg.Connection, view: str) -> str:
    """The materialization hypertable of a continuous aggregate (what a refresh writes)."""
    row = c.execute("SELECT format('%%I.%%I', materialization_hypertable_schema, materialization_hypertable_name)"
                    " FROM timescaledb_information.continuous_aggregates WHERE view_name = %s", (view,)).fetchone()
    assert row is not None
    return str(row[0])


def test_samples_is_a_compressed_hypertable_with_continuous_aggregates(tsdb: str) -> None:
    with psycopg.connect(tsdb) as c:
        assert c.execute("SELECT hypertable_name FROM timescaledb_information.hypertables").fetchall() == [
            ("samples",)]
        assert {r[0] for r in c.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates")} == {
            "samples_hourly", "samples_daily"}
        assert [r[0] for r in c.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'samples'"
            " ORDER BY ordinal_position")] == ["device_id", "time", *COLUMNS]
        seg = c.execute("SELECT attname FROM timescaledb_information.compression_settings"
                        " WHERE hypertable_name = 'samples' AND segmentby_column_index IS NOT NULL").fetchall()
        assert seg == [("device_id",)]


def test_timescaledb_path_stores_merges_and_rolls_up(tsdb: str) -> None:
    t0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    w = BatchWriter(tsdb)
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
    with psycopg.connect(tsdb) as c:
        assert c.execute("SELECT count(*) FROM readings").fetchone() == (25,)
        assert c.execute("SELECT value FROM readings WHERE metric = 'air_temp_c' AND time = %s",
                         (t0,)).fetchone() == (10.0,)
        # ingest marked the hour itself (no statement triggers on hypertables)
        assert c.execute("SELECT hour FROM readings_dirty").fetchall() == [(t0,)]
        c.commit()
        res = rollups.refresh(c)
        assert res.hours >= 1
        assert c.execute("SELECT count(*) FROM readings_dirty").fetchone() == (0,)
        # the refresh materialized the buckets (not only real-time aggregation over raw rows)
        assert c.execute(f"SELECT air_temp_c_n, rain_mm_sum FROM {materialized(c, 'samples_hourly')}"
                         " WHERE device_id = 'gw-0001' AND bucket = %s", (t0,)).fetchone() == (12, 6.0)
        hourly = {r[0]: r[1:] for r in c.execute(
            "SELECT metric, n, min, max, avg, sum FROM readings_hourly WHERE device_id = 'gw-0001' AND bucket = %s",
            (t0,))}
        assert hourly["air_temp_c"] == (12, 10.0, 21.0, 15.5, 186.0)
        assert hourly["rain_mm"][0] == 12 and hourly["rain_mm"][4] == pytest.approx(6.0)
        assert hourly["soil_vwc_10cm"][0] == 1 and set(hourly) == {"air_temp_c", "rain_mm", "soil_vwc_10cm"}
        local_day = c.execute("SELECT date_trunc('day', %s::timestamptz, 'Asia/Shanghai')", (t0,)).fetchone()
        assert local_day is not None
        daily = c.execute("SELECT n, sum FROM readings_daily WHERE device_id = 'gw-0001' AND metric = 'rain_mm'"
                          " AND bucket = %s", (local_day[0],)).fetchone()
        assert daily is not None and daily[0] == 12 and daily[1] == pytest.approx(6.0)
        # a narrow insert through the view marks its hour too, then the rollup sees it
        c.execute("INSERT INTO readings VALUES ('gw-0002', 'wind_ms', %s, 2.5)", (t0,))
        assert c.execute("SELECT device_id FROM readings_dirty").fetchall() == [("gw-0002",)]
        c.commit()
        rollups.refresh(c)
        assert c.execute("SELECT n, avg FROM readings_hourly WHERE device_id = 'gw-0002'").fetchall() == [(1, 2.5)]


def test_late_value_into_a_compressed_chunk_is_stored_and_rolled_up(tsdb: str) -> None:
    day = (datetime.now(UTC) - timedelta(days=20)).replace(hour=4, minute=0, second=0, microsecond=0)
    rows = [("gw-0003", "air_temp_c", day + timedelta(minutes=5 * k), 15.0) for k in range(12)]
    w = BatchWriter(tsdb)
    try:
        assert w.write(_batch(rows)) == 12
        with psycopg.connect(tsdb, autocommit=True) as c:
            rollups.refresh(c)
            # the compression policy's work, run explicitly
            n = c.execute("SELECT count(compress_chunk(ch)) FROM show_chunks('samples', older_than => now()"
                          " - interval '7 days') ch").fetchone()
            assert n is not None and n[0] >= 1
            assert c.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'samples'"
                             " AND is_compressed").fetchone() != (0,)
        # a gateway's late buffer: one re-sent value and one new metric for stored samples
        assert w.write(_batch([rows[0], ("gw-0003", "rain_mm", day, 1.5)])) == 1
    finally:
        w.close()
    with psycopg.connect(tsdb, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM readings WHERE device_id = 'gw-0003'").fetchone() == (13,)
        rollups.refresh(c)
        assert c.execute("SELECT n, sum FROM readings_hourly WHERE device_id = 'gw-0003' AND metric = 'rain_mm'"
                         ).fetchall() == [(1, 1.5)]
        assert c.execute("SELECT n FROM readings_hourly WHERE device_id = 'gw-0003' AND metric = 'air_temp_c'"
                         ).fetchall() == [(12,)]


def test_retention_drops_whole_old_chunks_only(tsdb: str) -> None:
    with psycopg.connect(tsdb) as c:
        c.execute("INSERT INTO readings VALUES ('gw-0004', 'wind_ms', now() - interval '500 days', 1)")
        c.execute("INSERT INTO readings VALUES ('gw-0004', 'wind_ms', now() - interval '10 days', 1)")
        c.commit()
        assert apply_retention(c) == 1
        c.commit()
        assert c.execute("SELECT count(*) FROM readings WHERE device_id = 'gw-0004'").fetchone() == (1,)

