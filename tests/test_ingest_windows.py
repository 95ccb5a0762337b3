"""Accept, refresh and retain windows agree (ingest.windows), on both storage paths: a late reading on
the oldest accepted day and the normal rollup refresh never shrink a kept daily rollup (issue 12,
defect 1: n = 288 became 193 on TimescaleDB)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import rollups
from ingest.batch import Batch
from ingest.storage import apply_retention
from ingest.validate import DeviceCache, Validator
from ingest.windows import (
    LOCAL_TZ,
    RETENTION_DAYS,
    SLACK_DAYS,
    accept_from,
    drop_before,
    local_day_start_epoch,
    refresh_from,
)
from ingest.writer import BatchWriter
from registry.seed import SeedParams, seed
from yuncang.migrations import migrate
from yuncang.tsdb_jobs import stop_scheduler_of

SHANGHAI = ZoneInfo(LOCAL_TZ)


@given(st.datetimes(min_value=datetime(1993, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)))
def test_windows_start_on_local_midnights_and_nest(now: datetime) -> None:
    a = accept_from(now)
    local = a.astimezone(SHANGHAI)
    assert local.time() == time(0)                                        # a local midnight (tz database)
    assert (now.astimezone(SHANGHAI).date() - local.date()).days == RETENTION_DAYS
    assert refresh_from(now) == a and drop_before(now) == a - timedelta(days=SLACK_DAYS)
    assert local_day_start_epoch(now.timestamp()) <= now.timestamp()


def test_validator_accepts_from_the_oldest_local_day_exactly() -> None:
    now = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)   # 18:30 in Shanghai
    v = Validator(DeviceCache(), clock=now.timestamp)
    lo, _ = v.window()
    assert lo == datetime(2025, 10, 27, 16, 0, tzinfo=UTC).timestamp()  # 2025-10-28 00:00 local
    assert v.check_time(lo, lo, now.timestamp()) == ("", "")
    assert v.check_time(lo - 1, lo, now.timestamp())[0] == "too_old"


@pytest.fixture
def fresh(make_database: Callable[[], str]) -> Iterator[str]:
    url = make_database()
    migrate(url, packages=("registry", "ingest"))
    stop_scheduler_of(url)  # TimescaleDB: no policy runs behind the test's back (no-op on plain PostgreSQL)
    with psycopg.connect(url) as c:
        seed(c, SeedParams(orchard_count=12, total_area_mu=1_200))
    yield url


def _daily(c: psycopg.Connection, day: datetime) -> tuple[int, float] | None:
    row = c.execute("SELECT n, sum FROM readings_daily WHERE device_id = 'gw-0001' AND metric = 'rain_mm'"
                    " AND bucket = %s", (day,)).fetchone()
    return None if row is None else (row[0], round(row[1], 6))


def test_late_reading_on_oldest_accepted_day_never_shrinks_a_kept_daily_rollup(fresh: str) -> None:
    now = datetime.now(UTC)
    oldest = accept_from(now)                                  # L: the oldest accepted local day
    days = [oldest - timedelta(days=2), oldest - timedelta(days=1), oldest]
    w = BatchWriter(fresh)
    try:
        b = Batch()
        b.add_readings([("gw-0001", "rain_mm", d + timedelta(minutes=5 * k), 0.1) for d in days for k in range(288)])
        assert w.write(b) == 3 * 288
        with psycopg.connect(fresh, autocommit=True) as c:
            rollups.refresh(c, now=now - timedelta(days=3))    # rolled up while all three days were accepted
            assert [_daily(c, d) for d in days] == [(288, 28.8)] * 3
            assert apply_retention(c, now) >= 1
            raw = [c.execute("SELECT count(*) FROM samples WHERE device_id = 'gw-0001' AND time >= %s"
                             " AND time < %s", (d, d + timedelta(days=1))).fetchone()[0] for d in days]  # type: ignore[index]
            # retention cut into L-2 (UTC chunks), kept L-1 whole (the slack day) and of course L
            assert raw[0] < 288 and raw[1:] == [288, 288]
        # a gateway's late buffer: one new reading on the oldest accepted day, then the normal refresh
        late = Batch()
        late.add_readings([("gw-0001", "rain_mm", oldest + timedelta(minutes=2), 0.5)])
        assert w.write(late) == 1
    finally:
        w.close()
    with psycopg.connect(fresh, autocommit=True) as c:
        rollups.refresh(c, now=now)
        assert _daily(c, oldest) == (289, 29.3)
        assert [_daily(c, d) for d in days[:2]] == [(288, 28.8)] * 2
        # an operator's full recompute from before the window keeps the final rows too
        rollups.refresh(c, since=oldest - timedelta(days=5), now=now)
        assert [_daily(c, d) for d in days] == [(288, 28.8), (288, 28.8), (289, 29.3)]
        # a stray mark for a final bucket is dropped and counted, the row stays
        c.execute("INSERT INTO readings_dirty (device_id, hour) VALUES ('gw-0001', %s)", (days[0],))
        res = rollups.refresh(c, now=now)
        assert res.final_skipped == 1 and _daily(c, days[0]) == (288, 28.8)
        assert c.execute("SELECT count(*) FROM readings_dirty").fetchone() == (0,)
