"""Historical seasons: physical plausibility, yield process, determinism and the rows written."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from registry.grades import GRADE_CODES
from registry.seed import SeedParams, generate
from sim_sensors.history import (
    DAILY_METRICS,
    SCENARIO_DEFAULT,
    History,
    bearing_share,
    default_device_id,
    generate_history,
    history_rows,
    write_history,
)

SEASONS = [2021, 2022, 2023, 2024, 2025]


@pytest.fixture(scope="module")
def orchards() -> list[dict]:
    return generate(SeedParams()).orchards


@pytest.fixture(scope="module")
def hist(orchards: list[dict]) -> History:
    return generate_history(orchards[:400], SEASONS, seed=3)


def _tmean(h: History, s: int) -> np.ndarray:
    return (h.tmin_c[s] + h.tmax_c[s]) / 2


def _month_mask(h: History, s: int, month: int) -> np.ndarray:
    return (h.dates[s].astype("datetime64[M]").astype(int) % 12 + 1) == month


def test_shapes_and_calendar(hist: History) -> None:
    n = 400
    assert hist.seasons == SEASONS
    assert hist.scenarios == SCENARIO_DEFAULT
    for s in SEASONS:
        d = hist.dates[s]
        assert d[0] == np.datetime64(f"{s - 1}-10-01") and d[-1] == np.datetime64(f"{s}-09-30")
        nd = len(d)
        for arr in (hist.tmin_c, hist.tmax_c, hist.rain_mm, hist.soil_vwc, hist.leaf_wet_h, hist.rh_pct):
            assert arr[s].shape == (n, nd)
            assert np.isfinite(arr[s]).all()
        assert (hist.tmax_c[s] > hist.tmin_c[s]).all()
        assert ((hist.rain_mm[s] >= 0) & (hist.rain_mm[s] < 200)).all()
        assert ((hist.soil_vwc[s] > 0.02) & (hist.soil_vwc[s] < 0.6)).all()
        assert ((hist.leaf_wet_h[s] >= 0) & (hist.leaf_wet_h[s] <= 24)).all()
        assert ((hist.rh_pct[s] > 15) & (hist.rh_pct[s] <= 100)).all()
        ws = hist.week_starts[s]
        assert ws.dtype == np.dtype("datetime64[D]")
        assert ((ws.astype(int) - 4) % 7 == 0).all(), "week starts are Mondays"
        assert hist.yield_kg[s].shape == (n, len(ws), len(GRADE_CODES))
        assert (hist.yield_kg[s] >= 0).all()
        assert hist.bloom_date[s].shape == (n,) and hist.flower_density[s].shape == (n,)
        fd = hist.flower_density[s]
        assert ((fd[~np.isnan(fd)] >= 0) & (fd[~np.isnan(fd)] <= 1)).all()
        assert hist.truth
        bearing = hist.truth[s]["bearing"] > 0
        assert np.isnan(fd[~bearing]).all(), "no flower scores for trees that do not flower yet"
        seen = ~np.isnan(fd[bearing])
        assert 0.4 < seen.mean() < 0.95, "some growers record, some don't"


def test_seasonal_cycle_and_lapse_rate(hist: History, orchards: list[dict]) -> None:
    elev = np.array([o["elevation_m"] for o in orchards[:400]], dtype=float)
    low = elev < 480
    for s in SEASONS:
        jan = _tmean(hist, s)[low][:, _month_mask(hist, s, 1)].mean()
        jul = _tmean(hist, s)[low][:, _month_mask(hist, s, 7)].mean()
        assert 1.0 < jan < 8.5, jan
        assert 24.0 < jul < 31.0, jul
        annual = _tmean(hist, s).mean(axis=1)
        slope = np.polyfit(elev, annual, 1)[0]
        assert -0.0075 < slope < -0.0045, f"lapse rate {slope * 100:.2f} °C/100 m"


def test_spatially_correlated_weather(hist: History) -> None:
    t = _tmean(hist, 2024)
    anomalies = t - t.mean(axis=1, keepdims=True)
    c = np.corrcoef(anomalies[:50])
    assert np.median(c[np.triu_indices(50, 1)]) > 0.8, "a county cold snap reaches every orchard"
    wet = hist.rain_mm[2024] >= 1
    assert 0.25 < wet.mean() < 0.5
    # rain days coincide across orchards far more than chance
    both = (wet[0] & wet[1]).mean()
    assert both > 1.5 * wet[0].mean() * wet[1].mean()


def test_late_frost_around_bloom(orchards: list[dict]) -> None:
    frost = generate_history(orchards[:300], [2022], {2022: "late_frost"}, seed=5)
    normal = generate_history(orchards[:300], [2022], {2022: "normal"}, seed=5)
    b = frost.bloom_date[2022]
    days = frost.dates[2022]
    rel = days[None, :] - b[:, None]
    near = (rel >= np.timedelta64(-10, "D")) & (rel <= np.timedelta64(10, "D"))
    min_near = np.where(near, frost.tmin_c[2022], np.inf).min(axis=1)
    assert (min_near < -2.0).mean() > 0.7, "most orchards see a damaging frost near bloom"
    months = b.astype("datetime64[M]").astype(int) % 12 + 1
    assert ((months >= 2) & (months <= 4)).all() and np.median(months) in (3, 4)
    assert frost.truth and normal.truth
    assert np.median(frost.truth[2022]["frost_survival"]) < 0.8
    assert np.median(normal.truth[2022]["frost_survival"]) > 0.95
    assert frost.yield_kg[2022].sum() < 0.9 * normal.yield_kg[2022].sum()


def test_drought_dries_soil_and_cuts_yield(orchards: list[dict]) -> None:
    dry = generate_history(orchards[:300], [2023], {2023: "drought"}, seed=8)
    norm = generate_history(orchards[:300], [2023], {2023: "normal"}, seed=8)
    d = dry.dates[2023]
    summer = (d >= np.datetime64("2023-06-01")) & (d < np.datetime64("2023-09-01"))
    assert dry.soil_vwc[2023][:, summer].mean() < norm.soil_vwc[2023][:, summer].mean() - 0.02
    assert dry.rain_mm[2023].sum() < 0.8 * norm.rain_mm[2023].sum()
    assert dry.yield_kg[2023].sum() < 0.85 * norm.yield_kg[2023].sum()
    # water-stressed fruit is smaller: a smaller share of the top grade
    share = lambda h: h.yield_kg[2023][:, :, 0].sum() / h.yield_kg[2023].sum()  # noqa: E731
    assert share(dry) < share(norm)


def test_wet_harvest_brings_brown_rot(orchards: list[dict]) -> None:
    wet = generate_history(orchards[:200], [2025], {2025: "wet"}, seed=2)
    norm = generate_history(orchards[:200], [2025], {2025: "normal"}, seed=2)
    assert wet.truth and norm.truth
    assert np.median(wet.truth[2025]["rot_loss"]) > 1.5 * np.median(norm.truth[2025]["rot_loss"])
    assert wet.leaf_wet_h[2025].mean() > norm.leaf_wet_h[2025].mean()


def test_soil_dries_between_rains(hist: History) -> None:
    s = 2024
    rain = hist.rain_mm[s]
    vwc = hist.soil_vwc[s]
    months = hist.dates[s].astype("datetime64[M]").astype(int) % 12 + 1
    checked = 0
    for i in range(0, 400, 20):
        d = 0
        while d < rain.shape[1] - 6:
            if 5 <= months[d] <= 9 and rain[i, d] >= 10 and (rain[i, d + 1:d + 6] == 0).all():
                seg = vwc[i, d + 1:d + 6]
                assert (np.diff(seg) <= 1e-9).all(), f"orchard {i} day {d}: soil must dry without rain"
                assert seg[-1] < seg[0]
                checked += 1
                d += 6
            else:
                d += 1
    assert checked >= 5
    # and rain wets it: VWC rises on days with ≥ 15 mm
    big = (rain >= 15)[:, 1:]
    assert (np.diff(vwc, axis=1)[big] > 0).mean() > 0.9


def test_bloom_and_harvest_timing(hist: History, orchards: list[dict]) -> None:
    elev = np.array([o["elevation_m"] for o in orchards[:400]], dtype=float)
    assert hist.truth
    for s in SEASONS:
        b = hist.bloom_date[s]
        doy = (b - b.astype("datetime64[Y]")).astype(int) + 1
        assert 55 < np.median(doy) < 100, f"{s}: bloom in March"
        assert np.corrcoef(elev, doy)[0, 1] > 0.5, "higher orchards bloom later"
        m = hist.truth[s]["maturity_date"]
        mdoy = (m - m.astype("datetime64[Y]")).astype(int) + 1
        assert 195 < np.median(mdoy) < 228, f"{s}: harvest mid-July to mid-August"
        weekly = hist.yield_kg[s].sum(axis=(0, 2))
        peak = hist.week_starts[s][int(np.argmax(weekly))]
        assert np.datetime64(f"{s}-07-06") <= peak <= np.datetime64(f"{s}-08-20")


def test_bearing_by_age_and_full_bearing_yield(hist: History, orchards: list[dict]) -> None:
    assert list(bearing_share(np.array([0, 1, 2, 3, 4, 5, 10]))) == [0, 0, 0, 0.25, 0.65, 1, 1]
    rows = orchards[:400]
    area = np.array([o["area_mu"] for o in rows])
    planted = np.array([o["planting_year"] for o in rows])
    for s in (2021, 2024):
        kg = hist.yield_kg[s].sum(axis=(1, 2))
        age = s - planted
        assert (kg[age < 3] == 0).all(), "no crop before the third leaf"
        full = age >= 6
        per_mu = kg[full] / area[full]
        assert 700 < np.median(per_mu) < 1600
        if (age == 3).sum() >= 3:
            assert np.median(kg[age == 3] / area[age == 3]) < 0.5 * np.median(per_mu)


def test_alternate_bearing(orchards: list[dict]) -> None:
    h = generate_history(orchards[:400], [2021, 2022, 2023, 2024], {s: "normal" for s in range(2021, 2025)},
                         seed=11)
    assert h.truth
    planted = np.array([o["planting_year"] for o in orchards[:400]])
    mature = (2021 - planted) >= 6
    load = np.stack([h.truth[s]["flower_index"] for s in h.seasons])[:, mature]
    lag = np.corrcoef(load[:-1].ravel(), load[1:].ravel())[0, 1]
    assert lag < -0.1, f"a heavy year is followed by a light one (lag-1 corr {lag:.2f})"


def test_determinism_and_subset_consistency(orchards: list[dict]) -> None:
    a = generate_history(orchards[:60], [2024], seed=1)
    b = generate_history(orchards[:60], [2024], seed=1)
    c = generate_history(orchards[:60], [2024], seed=2)
    sub = generate_history(orchards[10:20], [2024], seed=1)
    assert np.array_equal(a.tmin_c[2024], b.tmin_c[2024])
    assert np.array_equal(a.yield_kg[2024], b.yield_kg[2024])
    assert not np.array_equal(a.tmin_c[2024], c.tmin_c[2024])
    assert np.array_equal(a.tmin_c[2024][10:20], sub.tmin_c[2024])
    assert np.array_equal(a.rain_mm[2024][10:20], sub.rain_mm[2024])


def test_unknown_scenario_is_rejected(orchards: list[dict]) -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        generate_history(orchards[:2], [2024], {2024: "hail"})


def test_history_rows(orchards: list[dict]) -> None:
    h = generate_history(orchards[:5], [2024, 2025], seed=4)
    rows = history_rows(h)
    ys = rows["yield_history"]
    assert len(ys) == 10
    assert {r[0] for r in ys} == {o["orchard_id"] for o in orchards[:5]}
    for oid, season, kg, src in ys:
        i = h.orchard_ids.index(oid)
        assert kg == pytest.approx(h.yield_kg[season][i].sum(), abs=0.1)
        assert src == "sim"
    daily = rows["readings_daily"]
    days = len(h.dates[2024]) + len(h.dates[2025])
    assert len(daily) == 5 * days * len(DAILY_METRICS)
    sh = ZoneInfo("Asia/Shanghai")
    first = [r for r in daily if r[0] == "gw-0001" and r[2] == dt.datetime(2023, 10, 1, tzinfo=sh)]
    by_metric = {r[1]: r for r in first}
    assert set(by_metric) == set(DAILY_METRICS)
    t = by_metric["air_temp_c"]
    assert t[4] == pytest.approx(h.tmin_c[2024][0, 0]) and t[5] == pytest.approx(h.tmax_c[2024][0, 0])
    assert t[2].utcoffset() == dt.timedelta(hours=8)
    assert by_metric["rain_mm"][7] == pytest.approx(h.rain_mm[2024][0, 0])
    assert by_metric["soil_vwc_10cm"][6] == pytest.approx(h.soil_vwc[2024][0, 0])
    assert by_metric["leaf_wetness_pct"][6] * 24 / 100 == pytest.approx(h.leaf_wet_h[2024][0, 0], abs=1e-3)
    for r in daily:
        assert r[3] == 288 and r[4] <= r[6] <= r[5]


def _has_tables(url: str, *names: str) -> bool:
    with psycopg.connect(url) as c:
        return all(c.execute("SELECT to_regclass(%s)", (n,)).fetchone()[0] for n in names)  # type: ignore[index]


def test_write_history_to_database(db_url: str, orchards: list[dict]) -> None:
    if not _has_tables(db_url, "yield_history", "readings_daily"):
        pytest.skip("yield_history (orchard_models) / readings_daily (ingest) migrations "
                    "not merged into this branch")
    picked = [o for o in orchards if o["planting_year"] <= 2017][-3:]        # bearing trees: observations
    h = generate_history(picked, [2024], seed=4)
    devs = [default_device_id(o["orchard_id"]) for o in picked]
    with psycopg.connect(db_url) as conn:
        write_history(conn, h)
        write_history(conn, h)      # idempotent
        n = conn.execute("SELECT count(*) FROM yield_history WHERE orchard_id = ANY(%s) AND season = 2024",
                         (h.orchard_ids,)).fetchone()
        assert n and n[0] == 3
        d = conn.execute("SELECT count(*), sum(sum) FILTER (WHERE metric = 'rain_mm') FROM readings_daily "
                         "WHERE device_id = ANY(%s)", (devs,)).fetchone()
        assert d and d[0] == 3 * len(h.dates[2024]) * len(DAILY_METRICS)
        assert d[1] == pytest.approx(h.rain_mm[2024].sum(), rel=1e-6)
        if _has_tables(db_url, "farm_records"):
            write_history(conn, h, observations=True)
            write_history(conn, h, observations=True)     # replaces, does not pile up
            got = conn.execute("SELECT kind, count(*), sum(value) FROM farm_records WHERE orchard_id = ANY(%s) "
                               "AND recorded_by = 'sim-history' GROUP BY kind", (h.orchard_ids,)).fetchall()
            want_fd = h.flower_density[2024][~np.isnan(h.flower_density[2024])]
            want_fs = h.fruit_set_per_m[2024][~np.isnan(h.fruit_set_per_m[2024])]
            by = {k: (n, v) for k, n, v in got}
            assert by.get("flower_density", (0, 0.0))[0] == len(want_fd)
            assert by.get("fruit_set", (0, 0.0))[0] == len(want_fs)
            assert len(want_fd) and by["flower_density"][1] == pytest.approx(want_fd.sum())


def test_compact_readings_roll_up_to_the_daily_rows(orchards: list[dict]) -> None:
    """On TimescaleDB, history goes in as a few raw readings per day; their daily rollup must give the
    same min/max/avg/sum as the daily rows written on the plain path."""
    from collections import defaultdict

    from sim_sensors.history import iter_compact_readings, iter_daily_rows

    h = generate_history(orchards[:3], [2024], seed=4)
    sh = ZoneInfo("Asia/Shanghai")
    groups: dict[tuple, list[float]] = defaultdict(list)
    for dev, metric, t, v in iter_compact_readings(h):
        local = t.astimezone(sh)
        groups[(dev, metric, dt.datetime(local.year, local.month, local.day, tzinfo=sh))].append(v)
    daily = {(r[0], r[1], r[2]): r for r in iter_daily_rows(h)}
    assert set(groups) == set(daily)
    for key, vals in groups.items():
        row = daily[key]
        metric = key[1]
        if metric == "air_temp_c":
            assert min(vals) == pytest.approx(row[4]) and max(vals) == pytest.approx(row[5])
            assert sum(vals) / len(vals) == pytest.approx(row[6], abs=1e-3)
        elif metric == "rain_mm":
            assert sum(vals) == pytest.approx(row[7])
        else:
            assert sum(vals) / len(vals) == pytest.approx(row[6], abs=1e-3)
