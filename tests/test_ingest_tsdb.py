"""The TimescaleDB path on a real TimescaleDB: writer, ingest-side dirty marks, continuous-aggregate refresh,
compression and retention, each policy exercised explicitly (never the background scheduler).

Replaces the former shim tests (TimescaleDB's API stubbed on plain PostgreSQL): CI's first run now has
TimescaleDB 2.28.3, so these run there and are skipped on the plain path (embedded PostgreSQL).
"""

from __future__ import annotations

import threading
import time
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
        from ingest import ddl

        # the original pair plus the pairs generated for metrics added to the catalogue later (ingest.ddl)
        assert {r[0] for r in c.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates")} == {
            "samples_hourly", "samples_daily", *(v for pair in ddl.extra_aggregates(c) for v in pair)}
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


def _waiting_on_lock(c: psycopg.Connection, app: str, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if c.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
                     (app,)).fetchone():
            return True
        time.sleep(0.05)
    return False


def test_batch_committing_mid_refresh_keeps_its_marks(tsdb: str) -> None:
    """Defect 2: the refresh deleted marks by a timestamp taken without the writers' lock, so a batch whose
    transaction began before the refresh and committed during it lost its mark, and its data never
    reached the materialized rollup."""
    t0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    late = psycopg.connect(tsdb, autocommit=False)
    hold = psycopg.connect(tsdb)
    watch = psycopg.connect(tsdb, autocommit=True)
    try:
        late.execute("SET statement_timeout = '30s'")
        late.execute("SELECT 1")  # the late batch's transaction begins before anything else here
        w = BatchWriter(tsdb)
        try:
            assert w.write(_batch([("gw-0005", "air_temp_c", t0 + timedelta(minutes=5 * k), 20.0)
                                   for k in range(6)])) == 6
        finally:
            w.close()
        # pause the refresh after it took the marks: its first write into the hourly rollup waits on this lock
        hold.execute(f"LOCK TABLE {materialized(hold, 'samples_hourly')} IN ACCESS EXCLUSIVE MODE")
        app = "yc-test-refresh-mid"
        errors: list[BaseException] = []

        def run_refresh() -> None:
            try:
                with psycopg.connect(tsdb, application_name=app) as rc:
                    rollups.refresh(rc)
            except BaseException as exc:  # reported below
                errors.append(exc)

        th = threading.Thread(target=run_refresh)
        th.start()
        try:
            assert _waiting_on_lock(watch, app), "the refresh should be waiting inside refresh_continuous_aggregate"
            assert watch.execute("SELECT count(*) FROM readings_dirty").fetchone() == (1,)  # not deleted yet
            # the late batch stores a value in the same hour and commits while the refresh runs
            late.execute("INSERT INTO readings VALUES ('gw-0005', 'wind_ms', %s, 3.0)", (t0 + timedelta(minutes=30),))
            late.commit()
        finally:
            hold.rollback()
            th.join(60)
        assert not th.is_alive() and not errors, errors
        # its mark survived the refresh that was running, so the next refresh materializes its value
        assert watch.execute("SELECT device_id, hour FROM readings_dirty").fetchall() == [("gw-0005", t0)]
        rollups.refresh(watch)
        assert watch.execute(f"SELECT air_temp_c_n, wind_ms_n FROM {materialized(watch, 'samples_hourly')}"
                             " WHERE device_id = 'gw-0005' AND bucket = %s", (t0,)).fetchone() == (6, 1)
        assert watch.execute("SELECT count(*) FROM readings_dirty").fetchone() == (0,)
    finally:
        for c in (late, hold, watch):
            c.close()


def test_refresh_waits_for_a_batch_that_marked_but_has_not_committed(tsdb: str) -> None:
    """The other half of the lock: marks of a batch still open when the refresh starts are taken only after it
    commits, so its rows are in that refresh (never deleted unseen)."""
    t0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    open_batch = psycopg.connect(tsdb)
    watch = psycopg.connect(tsdb, autocommit=True)
    try:
        watch.execute("INSERT INTO readings VALUES ('gw-0006', 'wind_ms', %s, 1.0)", (t0 - timedelta(hours=1),))
        open_batch.execute("INSERT INTO readings VALUES ('gw-0006', 'wind_ms', %s, 4.0)", (t0,))  # marked, open
        app = "yc-test-refresh-wait"

        def run_refresh() -> None:
            with psycopg.connect(tsdb, application_name=app, autocommit=True) as rc:
                rollups.refresh(rc)

        th = threading.Thread(target=run_refresh)
        th.start()
        assert _waiting_on_lock(watch, app), "the refresh waits for the open batch (EXCLUSIVE lock on marks)"
        open_batch.commit()
        th.join(60)
        assert not th.is_alive()
        assert watch.execute(f"SELECT wind_ms_n FROM {materialized(watch, 'samples_hourly')}"
                             " WHERE device_id = 'gw-0006' AND bucket = %s", (t0,)).fetchone() == (1,)
        assert watch.execute("SELECT count(*) FROM readings_dirty").fetchone() == (0,)
    finally:
        open_batch.close()
        watch.close()


def test_compressed_days_roll_up_into_weekly_compressed_chunks(tsdb: str) -> None:
    """007: consecutive 1-day raw chunks compress into one 7-day compressed chunk, values intact."""
    start = (datetime.now(UTC) - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=(start - datetime(2000, 1, 3, tzinfo=UTC)).days % 7)   # a compression-week start
    w = BatchWriter(tsdb)
    try:
        assert w.write(_batch([("gw-0007", "air_temp_c", start + timedelta(days=d, hours=h), float(d))
                               for d in range(3) for h in range(24)])) == 72
    finally:
        w.close()
    with psycopg.connect(tsdb, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM show_chunks('samples')").fetchone() == (3,)
        for (ch,) in c.execute("SELECT show_chunks('samples')").fetchall():
            c.execute("SELECT compress_chunk(%s)", (ch,))
        assert c.execute("SELECT count(*) FROM show_chunks('samples')").fetchone() == (1,)
        assert c.execute("SELECT count(*), sum(value) FROM readings WHERE device_id = 'gw-0007'").fetchone() == (
            72, 24.0 * (0 + 1 + 2))


def test_a_back_fill_through_store_readings_is_rolled_up(tsdb: str) -> None:
    """Bulk loaders (back-fills, fixtures, benchmarks) write with ``store_readings``; on TimescaleDB the
    hypertable has no statement trigger, so before this fix nothing marked their buckets and
    ``rollups.refresh`` materialized nothing: a back-filled week stayed out of the continuous aggregates
    (the API read it through real-time aggregation over raw chunks, ~10 ms a chart instead of ~2 ms;
    older than the refresh policies' window it would never be rolled up)."""
    from ingest.samples import store_readings

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    rows = [("gw-0001", "air_temp_c", end - timedelta(minutes=15 * k), 20.0 + k % 4) for k in range(4 * 24 * 7)]
    with psycopg.connect(tsdb) as c:
        assert store_readings(c, rows) == len(rows)
        c.commit()
        res = rollups.refresh(c)
        assert res.hours >= 7 * 24
        hourly, daily = materialized(c, "samples_hourly"), materialized(c, "samples_daily")
        hours = {t.replace(minute=0) for _, _, t, _ in rows}
        assert c.execute(f"SELECT count(*) FROM {hourly}").fetchone() == (len(hours),)
        assert c.execute(f"SELECT count(*) FROM {daily}").fetchone()[0] >= 7  # type: ignore[index]
        # what the rollup says equals the raw readings, bucket by bucket
        got = c.execute("SELECT sum(n), round(sum(sum)::numeric, 6) FROM readings_hourly"
                        " WHERE device_id = 'gw-0001' AND metric = 'air_temp_c'").fetchone()
        assert got == (len(rows), round(sum(v for *_, v in rows), 6))
        assert rollups.refresh(c).hours == 0  # marks taken: nothing left to do
