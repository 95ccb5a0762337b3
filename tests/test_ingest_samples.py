"""Wide sample rows keep the narrow table's per-value semantics: first value stored wins, re-sends are
no-ops, a late value for a stored sample fills its column, the writer reports exactly the new values.
Property tests of the pivot, and the real writer (fast COPY path and merge path) against PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.batch import Batch
from ingest.samples import COLUMNS, merge, pivot, row_of, store_readings
from ingest.storage import ensure_partitions
from ingest.writer import BatchWriter
from registry.seed import SeedParams, seed
from yuncang.migrations import migrate

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
DEVICES = ["gw-0001", "gw-0002", "gw-0003"]

reading = st.tuples(st.sampled_from(DEVICES), st.sampled_from(COLUMNS),
                    st.integers(0, 5).map(lambda k: T0 + timedelta(minutes=5 * k)),
                    st.floats(0, 50, allow_nan=False).map(lambda v: round(v, 3)))
batches = st.lists(st.lists(reading, max_size=25), min_size=1, max_size=5)


def first_wins(readings: list[tuple[str, str, datetime, float]], stored: dict | None = None) -> dict:
    """The narrow table's semantics: (device, metric, time) -> first value."""
    out = dict(stored or {})
    for d, m, t, v in readings:
        out.setdefault((d, m, t), v)
    return out


@given(st.lists(reading, max_size=60))
def test_pivot_keeps_the_first_value_of_every_reading(rs: list) -> None:
    rows, kept = pivot(rs)
    got = {(r[0], COLUMNS[i], r[1]): v for r in rows for i, v in enumerate(r[2:]) if v is not None}
    assert got == first_wins(rs)
    assert kept == len(got)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)  # one row per (device, time)


@given(st.lists(reading, max_size=60))
def test_merge_with_a_known_count_gives_the_same_rows(rs: list) -> None:
    # the writer passes the batch's value count: distinct keys skip the per-value pass, others merge
    rows = [row_of(r) for r in rs]
    want = merge([list(r) for r in rows])
    assert merge([list(r) for r in rows], len(rs)) == want


@pytest.fixture(scope="module")
def wide_db(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate(url, packages=("registry", "ingest"))
    with psycopg.connect(url) as c:
        seed(c, SeedParams(orchard_count=12, total_area_mu=1_200))
        ensure_partitions(c, T0 - timedelta(days=1), T0 + timedelta(days=1))
    return url


@pytest.fixture
def db(wide_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(wide_db) as c:
        c.execute("TRUNCATE samples, readings_dirty")
        c.commit()
        yield c


def narrow(conn: psycopg.Connection) -> dict:
    return {(d, m, t): v for d, m, t, v in conn.execute("SELECT device_id, metric, time, value FROM readings")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches)
def test_writer_stores_exactly_the_first_value_of_each_reading(db: psycopg.Connection, bs: list) -> None:
    db.execute("TRUNCATE samples")
    db.commit()
    w = BatchWriter(db.info.dsn)
    expect: dict = {}
    try:
        for rs in bs:
            before = len(expect)
            expect = first_wins(rs, expect)
            b = Batch()
            b.add_readings(rs)  # one row per reading: the writer merges rows of the same sample
            assert w.write(b) == len(expect) - before  # the new values, whichever path stored them
    finally:
        w.close()
    assert narrow(db) == expect


def test_a_late_partial_sample_fills_and_a_resend_changes_nothing(db: psycopg.Connection) -> None:
    w = BatchWriter(db.info.dsn)
    try:
        first = Batch()
        first.add_readings([("gw-0001", "air_temp_c", T0, 12.5), ("gw-0001", "air_rh_pct", T0, 80.0)])
        assert w.write(first) == 2 and w.fast_batches == 1
        late = Batch()  # the soil sensor's value for the same sample arrives later, with a re-send
        late_readings = [("gw-0001", "soil_vwc_10cm", T0, 0.31), ("gw-0001", "air_temp_c", T0, 99.0)]
        late.add_readings(late_readings)
        assert w.write(late) == 1 and w.slow_batches == 1
        again = Batch()
        again.add_readings(late_readings)
        assert w.write(again) == 0
    finally:
        w.close()
    assert narrow(db) == {("gw-0001", "air_temp_c", T0): 12.5, ("gw-0001", "air_rh_pct", T0): 80.0,
                          ("gw-0001", "soil_vwc_10cm", T0): 0.31}
    row = db.execute("SELECT air_temp_c, air_rh_pct, soil_vwc_10cm, rain_mm FROM samples").fetchall()
    assert row == [(12.5, 80.0, 0.31, None)]  # one sample row, the unmeasured metric NULL
    # the late fill marked its hour for the rollups
    assert db.execute("SELECT hour FROM readings_dirty").fetchall() == [(T0,)]


def test_bulk_loader_and_narrow_view_insert_follow_the_same_rule(db: psycopg.Connection) -> None:
    assert store_readings(db, [("gw-0002", "rain_mm", T0, 1.0), ("gw-0002", "rain_mm", T0, 2.0)]) == 1
    assert store_readings(db, [("gw-0002", "rain_mm", T0, 3.0), ("gw-0002", "wind_ms", T0, 1.5)]) == 1
    cur = db.execute("INSERT INTO readings VALUES ('gw-0002', 'rain_mm', %s, 4.0), ('gw-0002', 'solar_wm2', %s, 300)",
                     (T0, T0))
    assert cur.rowcount == 1  # the stored rain value is kept, only solar is new
    db.commit()
    assert narrow(db) == {("gw-0002", "rain_mm", T0): 1.0, ("gw-0002", "wind_ms", T0): 1.5,
                          ("gw-0002", "solar_wm2", T0): 300.0}
    with pytest.raises(psycopg.errors.UndefinedColumn):
        db.execute("INSERT INTO readings VALUES ('gw-0002', 'no_such_metric', %s, 1)", (T0,))
    db.rollback()


def test_samples_has_a_column_per_catalogue_metric(db: psycopg.Connection) -> None:
    cols = [r[0] for r in db.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                     "'samples' ORDER BY ordinal_position")]
    assert cols == ["device_id", "time", *COLUMNS]
