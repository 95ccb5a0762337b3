"""Ingest storage schema: plain-PostgreSQL path against the real server, TimescaleDB SQL parsed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pglast
import psycopg
import pytest

from ingest import rollups
from ingest.storage import RETENTION_DAYS, apply_retention, ensure_partitions, storage_path
from registry.metrics import GATEWAY_METRICS
from yuncang.migrations import discover, migrate

ROLLUP_COLUMNS = [("device_id", "text"), ("metric", "text"), ("bucket", "timestamp with time zone"),
                  ("n", "integer"), ("min", "double precision"), ("max", "double precision"),
                  ("avg", "double precision"), ("sum", "double precision")]


@pytest.fixture
def fresh(make_database: Callable[[], str]) -> Iterator[psycopg.Connection]:
    url = make_database()
    migrate(url, packages=("registry", "ingest"))
    with psycopg.connect(url) as c:
        if storage_path(c) != "postgresql":
            pytest.skip("plain-PostgreSQL path tests need a server without TimescaleDB")
        yield c


def _ins(conn: psycopg.Connection, rows: list[tuple[str, str, datetime, float]]) -> int:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO readings VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", rows)
    conn.commit()
    return len(rows)


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


#: "Now" for the tests with fixed 2025 dates: their buckets lie inside the refresh window then
#: (ingest.windows: buckets older than the accept window are final and never recomputed).
NOW_2025 = T("2025-08-15T00:00")


def test_rollup_tables_have_the_contract_columns(fresh: psycopg.Connection) -> None:
    for table in ("readings_hourly", "readings_daily"):
        cols = fresh.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position", (table,)).fetchall()
        assert cols == ROLLUP_COLUMNS
        # the simulator's history writer upserts daily rows directly
        fresh.execute(f"INSERT INTO {table} VALUES ('gw-0001', 'rain_mm', '2025-01-01T16:00Z', 1, 2, 2, 2, 2)"
                      f" ON CONFLICT (device_id, metric, bucket) DO UPDATE SET n = EXCLUDED.n + 1")
        fresh.execute(f"INSERT INTO {table} VALUES ('gw-0001', 'rain_mm', '2025-01-01T16:00Z', 1, 2, 2, 2, 2)"
                      f" ON CONFLICT (device_id, metric, bucket) DO UPDATE SET n = EXCLUDED.n + 1")
        assert fresh.execute(f"SELECT n FROM {table}").fetchone() == (2,)
    fresh.rollback()


def test_duplicate_readings_are_ignored(fresh: psycopg.Connection) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    _ins(fresh, [("gw-0001", "air_temp_c", t, 20.0)] * 3 + [("gw-0001", "air_temp_c", t, 99.0)])
    assert fresh.execute("SELECT value FROM readings").fetchall() == [(20.0,)]


def test_old_and_future_days_never_fail_and_get_their_partition(fresh: psycopg.Connection) -> None:
    old = T("2021-03-04T05:06:07")
    # no partition for that day: the default partition takes the row instead of failing the write
    _ins(fresh, [("gw-0002", "rain_mm", old, 1.5)])
    where = fresh.execute("SELECT tableoid::regclass::text FROM samples").fetchone()
    assert where == ("samples_default",)
    # creating the day's partition moves the parked row into it
    assert ensure_partitions(fresh, old, old) == 1
    fresh.commit()
    assert fresh.execute("SELECT tableoid::regclass::text, rain_mm FROM samples").fetchall() == [
        ("samples_p20210304", 1.5)]
    assert fresh.execute("SELECT metric, value FROM readings").fetchall() == [("rain_mm", 1.5)]
    assert ensure_partitions(fresh, old, old + timedelta(days=1)) == 1  # the next day only
    assert ensure_partitions(fresh, old, old + timedelta(days=1)) == 0
    fresh.commit()
    # migration created the coming week's partitions ahead
    future = datetime.now(UTC) + timedelta(days=6)
    assert fresh.execute("SELECT to_regclass(%s)", (f"samples_p{future:%Y%m%d}",)).fetchone() != (None,)


def test_retention_drops_old_partitions_only(fresh: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=RETENTION_DAYS + 3)
    recent = now - timedelta(days=1)
    ensure_partitions(fresh, old, old)
    _ins(fresh, [("gw-0003", "rain_mm", old, 1.0), ("gw-0003", "rain_mm", recent, 2.0)])
    rollups.refresh(fresh, now=old + timedelta(days=1))  # rolled up while the old reading was young
    assert apply_retention(fresh, now) >= 1
    fresh.commit()
    assert fresh.execute("SELECT value FROM readings WHERE device_id = 'gw-0003'").fetchall() == [(2.0,)]
    # rollups outlive raw retention
    assert fresh.execute("SELECT count(*) FROM readings_daily WHERE device_id = 'gw-0003'").fetchone() == (2,)


def test_refresh_rollups_hourly_utc_daily_shanghai_including_late_data(fresh: psycopg.Connection) -> None:
    ensure_partitions(fresh, T("2025-07-01T00:00"), T("2025-07-03T00:00"))
    fresh.commit()
    # 2025-07-01T15:30Z is 23:30 in Shanghai on 1 July; 16:30Z is 00:30 on 2 July
    _ins(fresh, [("gw-0005", "air_temp_c", T("2025-07-01T15:10"), 10.0),
                 ("gw-0005", "air_temp_c", T("2025-07-01T15:40"), 20.0),
                 ("gw-0005", "air_temp_c", T("2025-07-01T16:30"), 30.0),
                 ("gw-0005", "rain_mm", T("2025-07-01T16:35"), 1.0)])
    r = rollups.refresh(fresh, now=NOW_2025)
    assert r.hours == 2 and r.days == 2
    hourly = fresh.execute("SELECT metric, bucket, n, min, max, avg, sum FROM readings_hourly"
                           " WHERE device_id = 'gw-0005' ORDER BY metric, bucket").fetchall()
    assert hourly == [("air_temp_c", T("2025-07-01T15:00"), 2, 10.0, 20.0, 15.0, 30.0),
                      ("air_temp_c", T("2025-07-01T16:00"), 1, 30.0, 30.0, 30.0, 30.0),
                      ("rain_mm", T("2025-07-01T16:00"), 1, 1.0, 1.0, 1.0, 1.0)]
    daily = fresh.execute("SELECT metric, bucket, n, min, max, avg, sum FROM readings_daily"
                          " WHERE device_id = 'gw-0005' ORDER BY metric, bucket").fetchall()
    assert daily == [("air_temp_c", T("2025-06-30T16:00"), 2, 10.0, 20.0, 15.0, 30.0),
                     ("air_temp_c", T("2025-07-01T16:00"), 1, 30.0, 30.0, 30.0, 30.0),
                     ("rain_mm", T("2025-07-01T16:00"), 1, 1.0, 1.0, 1.0, 1.0)]
    # nothing changed: nothing recomputed
    assert rollups.refresh(fresh, now=NOW_2025).hours == 0
    # a late reading for the first local day (arrives "a day later") reaches hourly and daily
    _ins(fresh, [("gw-0005", "air_temp_c", T("2025-07-01T02:00"), -6.0)])
    assert rollups.refresh(fresh, now=NOW_2025).hours == 1
    assert fresh.execute("SELECT n, min, max, sum FROM readings_daily WHERE device_id = 'gw-0005'"
                         " AND metric = 'air_temp_c' AND bucket = %s", (T("2025-06-30T16:00"),)).fetchone() == (
        3, -6.0, 20.0, 24.0)
    # a duplicate changes nothing and marks nothing
    _ins(fresh, [("gw-0005", "air_temp_c", T("2025-07-01T02:00"), -6.0)])
    assert rollups.refresh(fresh, now=NOW_2025).hours == 0


def test_refresh_since_recomputes_everything_from_that_time(fresh: psycopg.Connection) -> None:
    ensure_partitions(fresh, T("2025-08-01T00:00"), T("2025-08-01T00:00"))
    _ins(fresh, [("gw-0006", "wind_ms", T("2025-08-01T03:00"), 3.0)])
    rollups.refresh(fresh, now=NOW_2025)
    fresh.execute("UPDATE readings_hourly SET n = 99 WHERE device_id = 'gw-0006'")
    fresh.commit()
    assert rollups.refresh(fresh, now=NOW_2025).hours == 0
    r = rollups.refresh(fresh, since=T("2025-08-01T00:00"), now=NOW_2025)
    assert r.hours >= 1
    assert fresh.execute("SELECT n FROM readings_hourly WHERE device_id = 'gw-0006'").fetchone() == (1,)


def test_timescaledb_migrations_parse_and_define_the_same_objects() -> None:
    tsdb = {m.key: m for m in discover("timescaledb", ("ingest",))}
    pg = {m.key: m for m in discover("postgresql", ("ingest",))}
    generated = ["ingest/010_metric_columns", "ingest/011_unmapped_keys", "ingest/012_counter_state"]
    assert list(tsdb) == ["ingest/001_ingest_common", "ingest/002_readings", "ingest/003_rollups",
                          "ingest/005_wide_samples", "ingest/006_windows", "ingest/007_compression", *generated]
    # 006: TimescaleDB's own retention policy is removed (ingest.windows' rule applies on both paths)
    assert "remove_retention_policy('samples'" in tsdb["ingest/006_windows"].sql
    assert list(pg) == ["ingest/001_ingest_common", "ingest/002_readings", "ingest/003_rollups",
                        "ingest/004_c_collation", "ingest/005_wide_samples", *generated]
    tsdb = {k: m for k, m in tsdb.items() if m.module is None}  # 010 is generated from the catalogue
    text = "\n".join(m.sql for m in tsdb.values())
    for m in tsdb.values():
        assert pglast.parse_sql(m.sql)  # valid PostgreSQL syntax
    wide = tsdb["ingest/005_wide_samples"].sql
    for needle in ("create_hypertable('samples'", "timescaledb.compress_segmentby = 'device_id'",
                   f"add_retention_policy('samples', INTERVAL '{RETENTION_DAYS} days')",
                   "CREATE MATERIALIZED VIEW samples_hourly", "CREATE MATERIALIZED VIEW samples_daily",
                   "time_bucket(INTERVAL '1 day', time, 'Asia/Shanghai')", "WITH NO DATA",
                   "add_continuous_aggregate_policy('samples_hourly'",
                   "add_continuous_aggregate_policy('samples_daily'",
                   "CREATE VIEW readings_hourly", "CREATE VIEW readings_daily", "CREATE VIEW readings ",
                   "FUNCTION ingest_drop_partitions_before", "drop_chunks('samples'"):
        assert needle in wide, needle
    assert "FUNCTION ingest_ensure_partitions" in text
    # the continuous aggregates carry n/min/max/avg/sum for every metric column 005 created (the
    # gateway's; later metrics get aggregates generated by 010, tests/test_ingest_metric_ddl.py), and the
    # contract views unpivot exactly the rollup columns
    caggs = _cagg_columns(wide)
    for name in ("samples_hourly", "samples_daily"):
        assert caggs[name] == ["device_id", "bucket"] + [f"{m}_{a}" for m in GATEWAY_METRICS
                                                         for a in ("n", "min", "max", "avg", "sum")]
    views = _view_columns(wide)
    assert views["readings_hourly"] == views["readings_daily"] == [c for c, _ in ROLLUP_COLUMNS]
    assert views["readings"] == ["device_id", "metric", "time", "value"]
    assert "FROM readings_dirty" not in text  # TimescaleDB marks dirty hours from ingest, no trigger


def _view_columns(sql: str) -> dict[str, list[str]]:
    """Output column names of each CREATE VIEW, from the parse tree."""
    from pglast import ast

    out: dict[str, list[str]] = {}
    for raw in pglast.parse_sql(sql):
        stmt = raw.stmt
        if isinstance(stmt, ast.ViewStmt):
            out[stmt.view.relname] = [t.name or t.val.fields[-1].sval for t in stmt.query.targetList]
    return out


def _cagg_columns(sql: str) -> dict[str, list[str]]:
    """Output column names of each CREATE MATERIALIZED VIEW, from the parse tree."""
    from pglast import ast

    out: dict[str, list[str]] = {}
    for raw in pglast.parse_sql(sql):
        stmt = raw.stmt
        if isinstance(stmt, ast.CreateTableAsStmt):
            names = []
            for target in stmt.query.targetList:
                if target.name:
                    names.append(target.name)
                else:
                    names.append(target.val.fields[-1].sval)
            out[stmt.into.rel.relname] = names
    return out


def test_readings_keys_compare_bytewise_and_old_databases_are_converted(fresh: psycopg.Connection) -> None:
    def collations() -> set[str]:
        rows = fresh.execute(
            "SELECT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation"
            " WHERE a.attrelid = ANY(ARRAY['readings', 'samples', 'readings_hourly', 'readings_daily',"
            " 'readings_staging']::regclass[])"
            " AND a.attname IN ('device_id', 'metric')").fetchall()
        return {r[0] for r in rows}

    assert collations() == {"C"}
    # a database migrated before the columns were declared COLLATE "C"
    for t in ("readings_hourly", "readings_daily", "readings_staging"):  # (samples was born "C")
        fresh.execute(f'ALTER TABLE {t} ALTER COLUMN device_id TYPE text COLLATE "default",'
                      ' ALTER COLUMN metric TYPE text COLLATE "default"')
    assert collations() == {"default", "C"}
    fix = next(m for m in discover("postgresql", ("ingest",)) if m.name == "c_collation")
    fresh.execute(fix.sql.encode())  # type: ignore[call-overload]
    assert collations() == {"C"}
    # joins with the registry's default-collation ids still work
    fresh.execute("INSERT INTO readings VALUES ('gw-0001', 'rain_mm', now(), 1)")
    assert fresh.execute("SELECT count(*) FROM readings r JOIN (VALUES ('gw-0001'::text)) v(device_id)"
                         " ON v.device_id = r.device_id").fetchone() == (1,)
    fresh.rollback()
