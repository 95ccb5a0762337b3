"""forecast_all end to end on a real database: rollups in, a versioned run out, alerts raised."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from ingest.rollups import refresh
from ingest.samples import store_readings
from orchard_models.run import forecast_all
from orchard_models.synthetic import make_season
from orchard_models.weather import season_start
from registry.grades import GRADE_CODES
from registry.seed import SeedParams, seed
from yuncang.migrations import migrate

TZ = ZoneInfo("Asia/Shanghai")
SEASON = 2026
N = 24


@pytest.fixture(scope="module")
def small_db(make_database: Callable[[], str]) -> Iterator[str]:
    """A migrated DB with a 24-orchard registry, 3 seasons of yield history and this season's readings."""
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams(orchard_count=N, total_area_mu=2400.0, reference_year=SEASON))
        rows = conn.execute("SELECT o.orchard_id, d.device_id, o.area_mu::float8, o.tree_count, o.planting_year, "
                            "o.elevation_m, o.lat FROM orchards o JOIN devices d USING (orchard_id) "
                            "ORDER BY o.orchard_id").fetchall()
        from orchard_models.forecast import OrchardTable

        tab = OrchardTable(np.array([r[2] for r in rows]), np.array([r[3] for r in rows], dtype=float),
                           np.array([r[4] for r in rows]), np.array([r[5] for r in rows], dtype=float),
                           np.array([r[6] for r in rows]))
        rng = np.random.default_rng(3)
        # past yields (no stored weather for those seasons: the model must cope)
        with conn.cursor() as cur:
            for s in (2023, 2024, 2025):
                rec = make_season(tab, s, rng)
                assert rec.total_kg is not None
                cur.executemany("INSERT INTO yield_history (orchard_id, season, harvested_kg) VALUES (%s, %s, %s)",
                                [(r[0], s, float(k)) for r, k in zip(rows, rec.total_kg, strict=True)])
        # this season: raw readings (Tmin at 05:00, Tmax at 14:00 local, soil, leaf wetness, rain),
        # rolled up by ingest's own refresh, through 25 March with a frost on 22-24 March
        cur_season = make_season(tab, SEASON, rng)
        w = cur_season.weather
        s0 = season_start(SEASON)
        last = (date(SEASON, 3, 25) - s0).days
        frost0 = (date(SEASON, 3, 22) - s0).days
        w.tmin_c[:, frost0:frost0 + 3] = -6.0
        recs = []
        for o, r in enumerate(rows):
            dev = r[1]
            for d in range(last + 1):
                day = s0 + timedelta(days=d)
                t5 = datetime(day.year, day.month, day.day, 5, tzinfo=TZ)
                t14 = datetime(day.year, day.month, day.day, 14, tzinfo=TZ)
                if o == 0 and 40 <= d < 50:
                    continue  # a gateway offline for ten days: a gap to fill
                recs += [(dev, "air_temp_c", t5, float(w.tmin_c[o, d])),
                         (dev, "air_temp_c", t14, float(w.tmax_c[o, d])),
                         (dev, "soil_vwc_10cm", t14, float(w.soil_vwc[o, d])),
                         (dev, "leaf_wetness_pct", t5, float(min(100.0, w.leaf_wet_h[o, d] / 24 * 100))),
                         (dev, "rain_mm", t14, float(w.rain_mm[o, d]))]
        store_readings(conn, recs)
        # growers' flower-density records for half of the orchards
        conn.execute(
            "INSERT INTO farm_records (orchard_id, observed_on, kind, value, recorded_by) "
            "SELECT orchard_id, DATE '2026-03-20', 'flower_density', 0.8, 'test' FROM orchards "
            "WHERE orchard_id <= 'WS-0012'")
        conn.commit()
        # rolled up as of the season's end (ingest.windows: buckets older than the accept window are final)
        refresh(conn, since=datetime(SEASON - 1, 9, 30, tzinfo=UTC), now=datetime(SEASON, 3, 26, tzinfo=UTC))
    yield url


def test_forecast_all_writes_a_consistent_versioned_run(small_db: str) -> None:
    as_of = datetime(SEASON, 3, 26, 2, 0, tzinfo=TZ)
    with psycopg.connect(small_db) as conn:
        run_id = forecast_all(conn, as_of, alerts=True)
        run = conn.execute("SELECT season, orchard_count, model_version, meta FROM forecast_runs WHERE run_id = %s",
                           (run_id,)).fetchone()
        assert run is not None
        season, count, version, meta = run
        assert season == SEASON and count == N and version
        assert meta["history_seasons"] == [2023, 2024, 2025]
        assert meta["coverage"]["target_weather"] > 0.9
        # the county total has its own interval: narrower than the sums of the orchards' P10/P90 (those
        # would have every orchard at its P10 at once), wider than nothing
        c = meta["county_total_kg"]
        sums = conn.execute("SELECT sum(total_p10_kg), sum(total_p50_kg), sum(total_p90_kg) FROM forecast_orchards "
                            "WHERE run_id = %s", (run_id,)).fetchone()
        assert sums[0] <= c["p10"] < c["p50"] < c["p90"] <= sums[2]
        assert c["p50"] == pytest.approx(sums[1], rel=0.15)
        orch = conn.execute("SELECT orchard_id, bloom_date, harvest_start, harvest_end, total_p10_kg, total_p50_kg, "
                            "total_p90_kg, risk FROM forecast_orchards WHERE run_id = %s ORDER BY orchard_id",
                            (run_id,)).fetchall()
        assert len(orch) == N
        cells = conn.execute("SELECT orchard_id, week_start, grade, p10_kg, p50_kg, p90_kg FROM forecasts "
                             "WHERE run_id = %s", (run_id,)).fetchall()
        assert cells, "no forecast cells written"
        assert {c[2] for c in cells} <= set(GRADE_CODES)
        assert all(c[1].weekday() == 0 for c in cells), "week_start must be a Monday"
        # the cells of an orchard add up to its P50 total; harvest in summer
        by = {}
        for c in cells:
            by[c[0]] = by.get(c[0], 0.0) + c[4]
        for oid, _bloom, hs, he, p10, p50, p90, risk in orch:
            assert 0 <= p10 <= p50 <= p90
            assert by.get(oid, 0.0) == pytest.approx(p50, rel=1e-6, abs=1e-6)
            if p50 > 0:
                assert date(SEASON, 5, 15) <= hs <= he <= date(SEASON, 10, 15)
            assert {"frost_kill_frac", "water_stress_index", "brown_rot_infection_days",
                    "heat_degree_hours", "root_zone_stress_index"} <= set(risk)
        # frost of -6 °C around bloom shows in the risk indices and as alerts with advice in both languages
        kills = [r[7]["frost_kill_frac"] for r in orch]
        assert max(kills) > 0.1
        alerts = conn.execute("SELECT kind, severity, title_zh, title_en, advice_zh, advice_en FROM alerts "
                              "WHERE kind = 'frost' AND resolved_at IS NULL").fetchall()
        assert alerts, "the frost should have raised alerts"
        assert all(a[2] and a[3] and a[4] and a[5] for a in alerts)
        # the latest views show this run
        latest = conn.execute("SELECT DISTINCT run_id FROM latest_forecasts WHERE season = %s", (SEASON,)).fetchall()
        assert latest == [(run_id,)]


def test_later_run_supersedes_and_earlier_data_cutoff_is_respected(small_db: str) -> None:
    with psycopg.connect(small_db) as conn:
        early = forecast_all(conn, datetime(SEASON, 3, 10, tzinfo=TZ), alerts=False)
        late = forecast_all(conn, datetime(SEASON, 3, 26, 2, tzinfo=TZ), alerts=False)
        again = forecast_all(conn, datetime(SEASON, 3, 10, tzinfo=TZ), alerts=False)
        n_latest = conn.execute("SELECT DISTINCT run_id FROM latest_forecast_orchards WHERE season = %s",
                                (SEASON,)).fetchall()
        assert n_latest == [(late,)], "the run with the newest as-of is the latest"
        # a re-run with the same as-of gives the same numbers (data after as-of are ignored)
        a = conn.execute("SELECT orchard_id, total_p50_kg, risk->>'frost_kill_frac' FROM forecast_orchards "
                         "WHERE run_id = %s ORDER BY 1", (early,)).fetchall()
        b = conn.execute("SELECT orchard_id, total_p50_kg, risk->>'frost_kill_frac' FROM forecast_orchards "
                         "WHERE run_id = %s ORDER BY 1", (again,)).fetchall()
        assert a == b
        # before the frost nobody has frost damage
        assert all(float(r[2]) < 0.01 for r in a)


def test_cli_forecast(small_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from yuncang.cli import main

    monkeypatch.setenv("YUNCANG_DATABASE_URL", small_db)
    assert main(["forecast", "--as-of", "2026-03-26T02:00+08:00", "--alerts", "off"]) == 0
    out = capsys.readouterr().out
    assert "season 2026" in out and f"{N} orchards" in out
    with pytest.raises(SystemExit):
        main(["forecast", "--as-of", "not-a-date"])


def test_first_run_without_any_data_uses_priors(make_database: Callable[[], str]) -> None:
    """A fresh deployment (registry only: no readings, no yield history, no records) still gets a
    forecast from the priors: bearing orchards about 1,200 kg/mu at P50, young ones none."""
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams(orchard_count=12, total_area_mu=1200.0, reference_year=SEASON))
        run_id = forecast_all(conn, datetime(SEASON, 4, 20, tzinfo=TZ))
        rows = conn.execute(
            "SELECT f.total_p10_kg, f.total_p50_kg, f.total_p90_kg, o.area_mu::float8, %s - o.planting_year "
            "FROM forecast_orchards f JOIN orchards o USING (orchard_id) WHERE run_id = %s",
            (SEASON, run_id)).fetchall()
        assert len(rows) == 12
        for p10, p50, p90, area, age in rows:
            assert 0 <= p10 <= p50 <= p90
            if age >= 5:
                assert 600 <= p50 / area <= 2400 and p90 / p10 < 10
            if age <= 2:
                assert p90 == 0
        meta = conn.execute("SELECT meta FROM forecast_runs WHERE run_id = %s", (run_id,)).fetchone()[0]
        assert meta["history_seasons"] == [] and meta["climatology"] == "default"


def test_warehouse_lots_give_past_harvest_weeks_and_grades(small_db: str) -> None:
    """Trading's received lots are the past harvest by week and grade: with them the forecast's harvest
    window and grade shares follow the orchards' own history instead of the defaults; a lot received
    after the as-of time is not used (back-filled runs stay honest)."""
    from orchard_models.inputs import read_inputs

    as_of = datetime(SEASON, 3, 26, 2, tzinfo=TZ)
    with psycopg.connect(small_db) as conn:
        before = forecast_all(conn, as_of, alerts=False)
        conn.execute("INSERT INTO warehouses VALUES ('WH-T', 'test', 31.07, 109.88)")
        conn.execute("INSERT INTO cold_rooms (cold_room_id, warehouse_id, name, capacity_kg) "
                     "VALUES ('CR-T', 'WH-T', 'test', 1e9)")
        ids = [r[0] for r in conn.execute("SELECT orchard_id FROM orchards ORDER BY 1")]
        lots = []
        for s in (2024, 2025):
            for oid in ids:   # every orchard picked in the week of 18 August, mostly premium fruit
                lots.append((f"LOT-T-{s}-{oid}", oid, s, date(s, 8, 20), datetime(s, 8, 21, tzinfo=TZ)))
        late = ("LOT-T-LATE", ids[0], 2025, date(2025, 7, 1), datetime(SEASON, 4, 1, tzinfo=TZ))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO lots (lot_id, orchard_id, season, harvested_on, received_at, cold_room_id) "
                            "VALUES (%s, %s, %s, %s, %s, 'CR-T')", [*lots, late])
            cur.executemany("INSERT INTO lot_grades (lot_id, grade, received_kg, remaining_kg) "
                            "VALUES (%s, %s, %s, %s)",
                            [(lot[0], g, kg, kg) for lot in [*lots, late] for g, kg in
                             (("XL", 800.0), ("L", 150.0), ("M", 50.0))])
        conn.commit()
        try:
            inp = read_inputs(conn, as_of, SEASON)
            rec = {r.season: r for r in inp.history}
            assert rec[2025].week_starts == [date(2025, 8, 18)], "the lot received after the as-of is ignored"
            assert rec[2025].week_grade_kg is not None
            assert rec[2025].week_grade_kg.sum(axis=(0, 1)).tolist() == [800.0 * N, 150.0 * N, 50.0 * N]
            # recorded season totals are kept (lots are what reached the warehouse)
            assert rec[2024].total_kg is not None and rec[2024].total_kg.sum() > 1000.0 * N
            after = forecast_all(conn, as_of, alerts=False)
            q = ("SELECT avg((risk->'grade_share'->>'XL')::float8), avg(harvest_start - DATE '2026-01-01'), "
                 "avg(harvest_end - DATE '2026-01-01') FROM forecast_orchards WHERE run_id = %s AND total_p50_kg > 0")
            xl0, start0, end0 = conn.execute(q, (before,)).fetchone()
            xl1, start1, end1 = conn.execute(q, (after,)).fetchone()
            assert xl0 < 0.45 and xl1 > 0.6, (xl0, xl1)
            mid1 = date(SEASON, 1, 1) + timedelta(days=float(start1 + end1) / 2)
            assert date(SEASON, 8, 5) <= mid1 <= date(SEASON, 9, 5), (mid1, start0, end0)
        finally:
            conn.execute("DELETE FROM lots WHERE lot_id LIKE 'LOT-T-%'")
            conn.execute("DELETE FROM cold_rooms WHERE cold_room_id = 'CR-T'")
            conn.execute("DELETE FROM warehouses WHERE warehouse_id = 'WH-T'")
            conn.commit()


def test_a_recorded_bloom_reaches_the_target_season_only_from_its_day(make_registry_db: Callable[..., str]) -> None:
    """Issue 16: the grower's flowering score (taken at full bloom) is the target season's observed bloom,
    which times the harvest; a run as of an earlier day, or before the record was entered, does not see it."""
    from orchard_models.inputs import read_inputs
    from orchard_models.weather import season_start

    url = make_registry_db(orchards=3)
    with psycopg.connect(url) as conn:
        oid = conn.execute("SELECT orchard_id FROM orchards ORDER BY 1 LIMIT 1").fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO farm_records (orchard_id, observed_on, kind, value, recorded_at)"
                     " VALUES (%s, '2026-03-18', 'flower_density', 0.8, '2026-03-18 10:00+08')", (oid,))
        conn.commit()
        before = read_inputs(conn, datetime(2026, 3, 15, 12, tzinfo=UTC), 2026)
        after = read_inputs(conn, datetime(2026, 4, 10, 12, tzinfo=UTC), 2026)
    o = (before.orchards.orchard_ids or []).index(oid)
    assert before.observations.bloom_day is not None and before.observations.bloom_day[o] == -1
    assert after.observations.bloom_day is not None
    assert after.observations.bloom_day[o] == (date(2026, 3, 18) - season_start(2026)).days
    assert (after.observations.bloom_day == -1).sum() == len(after.observations.bloom_day) - 1
