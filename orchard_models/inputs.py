"""Read what the models need from the database into numpy arrays (orchard x day, NaN for gaps).

Sources: the registry (``orchards``, ``devices``), the ingest rollups ``readings_daily`` and
``readings_hourly`` (columns device_id, metric, bucket, n, min, max, avg, sum; the daily bucket is the
start of the local day in Asia/Shanghai, the hourly bucket the start of the UTC hour), the growers'
``farm_records`` and ``yield_history``, and -- when trading's warehouse tables exist -- the received
harvest lots (``lots`` + ``lot_grades``: orchard, harvest date, grade, kg) as past seasons' harvests
by week and grade. An orchard with several active gateways gets the mean of
their values. Hourly air temperature is used where it exists; elsewhere the models reconstruct it
from daily min/max (:mod:`orchard_models.hourly`, Linvill 1990 as in chillR).

Daily quantities (see :class:`orchard_models.weather.SeasonWeather`): Tmin/Tmax = min/max of
``air_temp_c`` (°C); rain = sum of ``rain_mm`` (mm); soil water = mean of ``soil_vwc_10cm``
(m³/m³); leaf-wetness hours = hours whose mean ``leaf_wetness_pct`` >= 50 % (from hourly rollups;
where fewer than 20 hours are there, 24 h x the daily mean / 100); RH = mean ``air_rh_pct`` (%).
Only data known at the as-of time are read (rows with buckets before it, records entered before it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from orchard_models.forecast import Observations, OrchardTable, SeasonRecord
from orchard_models.weather import SeasonWeather, season_days, season_start
from registry.devices import placement_join
from registry.grades import GRADE_CODES

#: readings joined to the orchard their device was in at the bucket's time (alias d: d.orchard_id)
_PLACED = placement_join("r", "bucket", "d")

__all__ = ["ModelInputs", "local_date", "read_graded_harvests", "read_inputs", "season_of"]

log = logging.getLogger(__name__)
TZ = ZoneInfo("Asia/Shanghai")
WET_PCT = 50.0          #: leaf wetness % above which an hour counts as wet
MAX_HISTORY_SEASONS = 8


def local_date(ts: datetime) -> date:
    """The Asia/Shanghai calendar date of a timestamp (naive timestamps are taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo("UTC"))
    return ts.astimezone(TZ).date()


def season_of(ts: datetime) -> int:
    """The season (harvest year) running at ``ts``: from 1 October on, the next year's."""
    d = local_date(ts)
    return d.year + 1 if d.month >= 10 else d.year


def _local_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=TZ)


@dataclass
class ModelInputs:
    orchards: OrchardTable
    history: list[SeasonRecord]
    target: SeasonWeather
    observations: Observations
    as_of_day: int
    coverage: dict[str, float]


def read_orchards(conn: psycopg.Connection) -> OrchardTable:
    rows = conn.execute(
        "SELECT orchard_id, area_mu::float8, tree_count, planting_year, elevation_m, lat "
        "FROM orchards ORDER BY orchard_id").fetchall()
    if not rows:
        raise ValueError("no orchards in the registry; seed or import it first")
    cols = list(zip(*rows, strict=True))
    return OrchardTable(area_mu=np.array(cols[1], dtype=np.float64), tree_count=np.array(cols[2], dtype=np.float64),
                        planting_year=np.array(cols[3], dtype=np.int64),
                        elevation_m=np.array(cols[4], dtype=np.float64),
                        latitude_deg=np.array(cols[5], dtype=np.float64), orchard_ids=list(cols[0]))


def _empty(n_o: int, n_d: int) -> np.ndarray:
    return np.full((n_o, n_d), np.nan)


def read_season_weather(conn: psycopg.Connection, index: dict[str, int], season: int, until: datetime,
                        *, hourly_days: int | None = None) -> SeasonWeather:
    """One season's daily arrays from the rollups, using buckets that start before ``until``.

    ``hourly_days``: read hourly air temperature for the last this-many days before ``until``
    (None = the whole season, 0 = none).
    """
    n_o = len(index)
    s0 = season_start(season)
    n_d = season_days(season)
    t0 = _local_midnight(s0)
    t1 = min(_local_midnight(s0 + timedelta(days=n_d)), until)
    keys = ("tmin", "tmax", "rain", "soil", "leafpct", "rh", "wind", "solar")
    arr = {k: _empty(n_o, n_d) for k in keys}
    if t1 <= t0:
        return SeasonWeather(season, arr["tmin"], arr["tmax"], arr["rain"], arr["soil"], arr["leafpct"], arr["rh"])
    ids = [""] * n_o
    for oid, i in index.items():
        ids[i] = oid
    # one row per (orchard, local day), metrics pivoted in SQL, NaN for missing: converted to numpy in one go
    rows = conn.execute(
        """
        WITH o AS (SELECT oid, (i - 1)::int AS i FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS t(oid, i))
        SELECT o.i, ((r.bucket AT TIME ZONE 'Asia/Shanghai')::date - %(s0)s::date) AS day,
               coalesce(avg(r.min) FILTER (WHERE r.metric = 'air_temp_c'), 'NaN'),
               coalesce(avg(r.max) FILTER (WHERE r.metric = 'air_temp_c'), 'NaN'),
               coalesce(avg(r.sum) FILTER (WHERE r.metric = 'rain_mm'), 'NaN'),
               coalesce(avg(r.avg) FILTER (WHERE r.metric = 'soil_vwc_10cm'), 'NaN'),
               coalesce(avg(r.avg) FILTER (WHERE r.metric = 'leaf_wetness_pct'), 'NaN'),
               coalesce(avg(r.avg) FILTER (WHERE r.metric = 'air_rh_pct'), 'NaN'),
               coalesce(avg(r.avg) FILTER (WHERE r.metric = 'wind_ms'), 'NaN'),
               coalesce(avg(r.avg) FILTER (WHERE r.metric = 'solar_wm2'), 'NaN')
          FROM readings_daily r
          """ + _PLACED + """
          JOIN o ON o.oid = d.orchard_id
         WHERE r.metric = ANY(%(metrics)s) AND r.bucket >= %(t0)s AND r.bucket < %(t1)s
         GROUP BY 1, 2
        """,
        {"ids": ids, "s0": s0, "t0": t0, "t1": t1,
         "metrics": ["air_temp_c", "rain_mm", "soil_vwc_10cm", "leaf_wetness_pct", "air_rh_pct", "wind_ms",
                     "solar_wm2"]}).fetchall()
    if rows:
        m = np.array(rows, dtype=np.float64)
        oi = m[:, 0].astype(np.int64)
        di = m[:, 1].astype(np.int64)
        ok = (di >= 0) & (di < n_d)
        for col, key in enumerate(keys, start=2):
            arr[key][oi[ok], di[ok]] = m[ok, col]
    # daily mean irradiance W/m² -> daily radiation MJ m⁻² d⁻¹ (x 86,400 s / 10⁶); a day is usable for
    # Penman-Monteith only with humidity, wind and radiation all measured (else Hargreaves)
    solar = arr["solar"] * 0.0864
    measured = np.isfinite(arr["rh"]) & np.isfinite(arr["wind"]) & np.isfinite(solar)
    leaf_h = arr["leafpct"] * 24.0 / 100.0
    # wet hours from hourly rollups where the day is (nearly) complete
    cur = conn.execute(
        """
        SELECT d.orchard_id, ((r.bucket AT TIME ZONE 'Asia/Shanghai')::date - %(s0)s::date) AS day,
               count(DISTINCT r.bucket) FILTER (WHERE r.avg >= %(wet)s), count(DISTINCT r.bucket)
          FROM readings_hourly r """ + _PLACED + """
         WHERE r.metric = 'leaf_wetness_pct' AND r.bucket >= %(t0)s AND r.bucket < %(t1)s
         GROUP BY 1, 2
        """, {"s0": s0, "t0": t0, "t1": t1, "wet": WET_PCT})
    for oid, day, wet, cnt in cur:
        o = index.get(oid)
        if o is not None and 0 <= day < n_d and cnt >= 20:
            leaf_h[o, day] = wet * 24.0 / cnt
    hourly = None
    if hourly_days is None or hourly_days > 0:
        h0 = t0 if hourly_days is None else max(t0, t1 - timedelta(days=hourly_days))
        hourly = np.full((n_o, n_d, 24), np.nan)
        cur = conn.execute(
            """
            SELECT d.orchard_id, ((r.bucket AT TIME ZONE 'Asia/Shanghai')::date - %(s0)s::date) AS day,
                   extract(hour FROM r.bucket AT TIME ZONE 'Asia/Shanghai')::int AS hr, avg(r.avg)
              FROM readings_hourly r """ + _PLACED + """
             WHERE r.metric = 'air_temp_c' AND r.bucket >= %(h0)s AND r.bucket < %(t1)s
             GROUP BY 1, 2, 3
            """, {"s0": s0, "h0": h0, "t1": t1})
        got = 0
        for oid, day, hr, av in cur:
            o = index.get(oid)
            if o is not None and 0 <= day < n_d and av is not None:
                hourly[o, day, hr] = av
                got += 1
        if got == 0:
            hourly = None
    return SeasonWeather(season, arr["tmin"], arr["tmax"], arr["rain"], arr["soil"], leaf_h, arr["rh"],
                         hourly_temp_c=hourly, wind_ms=arr["wind"] if measured.any() else None,
                         solar_mj_m2=solar if measured.any() else None)


def read_observations(conn: psycopg.Connection, index: dict[str, int], season: int, until: datetime) -> Observations:
    """Mean flower-density and fruit-set records of the season entered before ``until`` (day = latest record)."""
    n_o = len(index)
    obs = Observations.empty(n_o)
    s0 = season_start(season)
    s1 = s0 + timedelta(days=season_days(season))
    cur = conn.execute(
        """
        SELECT orchard_id, kind, avg(value), max(observed_on) - %(s0)s::date
          FROM farm_records
         WHERE kind IN ('flower_density', 'fruit_set') AND value IS NOT NULL
           AND observed_on >= %(s0)s AND observed_on < %(s1)s AND observed_on <= %(asof)s
           AND recorded_at <= %(until)s
         GROUP BY 1, 2
        """, {"s0": s0, "s1": s1, "asof": local_date(until), "until": until})
    for oid, kind, val, day in cur:
        o = index.get(oid)
        if o is None:
            continue
        if kind == "flower_density":
            obs.flower_density[o], obs.flower_density_day[o] = val, day
        else:
            obs.fruit_set[o], obs.fruit_set_day[o] = val, day
    return obs


def read_bloom_records(conn: psycopg.Connection, index: dict[str, int], season: int,
                       until: datetime | None = None) -> np.ndarray:
    """Recorded full bloom per orchard (day index, -1 = none): the first flower-density record of the
    season in February-April (growers score flowering at bloom), used to fit the bloom model in past
    seasons and, in the target season, as the observed bloom that times the harvest. ``until``: only
    records observed on or before its local day and entered by then (a run as of a past day)."""
    out = np.full(len(index), -1, dtype=np.int64)
    s0 = season_start(season)
    hi = date(season, 5, 1) if until is None else min(date(season, 5, 1), local_date(until) + timedelta(days=1))
    cur = conn.execute(
        "SELECT orchard_id, min(observed_on) - %(s0)s::date FROM farm_records "
        "WHERE kind = 'flower_density' AND observed_on >= %(lo)s AND observed_on < %(hi)s"
        " AND (%(until)s::timestamptz IS NULL OR recorded_at <= %(until)s) GROUP BY 1",
        {"s0": s0, "lo": date(season, 2, 1), "hi": hi, "until": until})
    for oid, day in cur:
        o = index.get(oid)
        if o is not None:
            out[o] = day
    return out


def read_graded_harvests(conn: psycopg.Connection, index: dict[str, int], season: int, until: datetime
                         ) -> tuple[np.ndarray, list[date]] | None:
    """Past harvest by orchard x week x grade from the warehouse's received lots: kg (orchard, week,
    grade in GRADE_CODES order) and the weeks' Mondays, or None when the season has no lots (or the
    tables do not exist). A lot counts in the week of its harvest date (``harvested_on``, within the
    season 1 Oct - 30 Sep) if it was received before ``until`` (a back-filled run sees only lots
    received by then). Lots hold what reached the warehouse, so their totals are a lower bound of the
    harvest: the yield model takes ``yield_history`` where it is recorded."""
    s0 = season_start(season)
    s1 = s0 + timedelta(days=season_days(season))
    rows = conn.execute(
        """
        SELECT l.orchard_id, date_trunc('week', l.harvested_on)::date AS wk, g.grade, sum(g.received_kg)::float8
          FROM lots l JOIN lot_grades g USING (lot_id)
         WHERE l.harvested_on >= %(s0)s AND l.harvested_on < %(s1)s AND l.received_at <= %(until)s
         GROUP BY 1, 2, 3
        """, {"s0": s0, "s1": s1, "until": until}).fetchall()
    gi = {g: k for k, g in enumerate(GRADE_CODES)}
    rows = [r for r in rows if r[0] in index and r[2] in gi]
    if not rows:
        return None
    first = min(r[1] for r in rows)
    n_w = (max(r[1] for r in rows) - first).days // 7 + 1
    weeks = [first + timedelta(days=7 * k) for k in range(n_w)]
    kg = np.zeros((len(index), n_w, len(GRADE_CODES)))
    for oid, wk, grade, v in rows:
        kg[index[oid], (wk - first).days // 7, gi[grade]] += v
    return kg, weeks


def read_inputs(conn: psycopg.Connection, as_of: datetime, season: int, *,
                hourly_days: int | None = 60, max_history: int = MAX_HISTORY_SEASONS) -> ModelInputs:
    """Everything for one forecast run: registry, up to ``max_history`` past seasons with recorded
    yields (their weather and observations, where stored) and the target season up to ``as_of``."""
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=ZoneInfo("UTC"))
    tab = read_orchards(conn)
    ids = tab.orchard_ids or []
    index = {oid: i for i, oid in enumerate(ids)}
    n_o = len(ids)
    yh = conn.execute(
        "SELECT season, orchard_id, harvested_kg FROM yield_history WHERE season < %s AND season >= %s",
        (season, season - max_history)).fetchall()
    by_season: dict[int, np.ndarray] = {}
    for s, oid, kg in yh:
        o = index.get(oid)
        if o is None:
            continue
        by_season.setdefault(int(s), np.full(n_o, np.nan))[o] = kg
    graded: dict[int, tuple[np.ndarray, list[date]]] = {}
    for s in range(season - max_history, season):
        g = read_graded_harvests(conn, index, s, as_of)
        if g is not None:
            graded[s] = g
    history = []
    for s in sorted(set(by_season) | set(graded)):
        end = min(as_of, _local_midnight(season_start(s) + timedelta(days=season_days(s))))
        w = read_season_weather(conn, index, s, end, hourly_days=0)
        wg, weeks = graded.get(s, (None, None))
        total = by_season.get(s)
        if wg is not None:
            # recorded season totals first; the received lots where no total was recorded
            lot_kg = wg.sum(axis=(1, 2))
            lot_total = np.where(lot_kg > 0, lot_kg, np.nan)
            total = lot_total if total is None else np.where(np.isfinite(total), total, lot_total)
        history.append(SeasonRecord(w, read_observations(conn, index, s, end), total, wg, weeks,
                                    bloom_day=read_bloom_records(conn, index, s)))
    target = read_season_weather(conn, index, season, as_of, hourly_days=hourly_days)
    obs = read_observations(conn, index, season, as_of)
    obs.bloom_day = read_bloom_records(conn, index, season, until=as_of)  # observed bloom times the harvest
    as_of_day = (local_date(as_of) - season_start(season)).days
    # the as-of day itself is only partly observed: use days before it
    as_of_day = min(as_of_day - 1, season_days(season) - 1)
    cov = {f"season_{r.season}_weather": round(r.weather.coverage(), 4) for r in history}
    cov["target_weather"] = round(target.coverage(max(as_of_day + 1, 0)), 4) if as_of_day >= 0 else 0.0
    log.info("forecast inputs read", extra={"orchards": n_o, "history_seasons": [r.season for r in history],
                                            "as_of_day": as_of_day, "coverage": cov})
    return ModelInputs(tab, history, target, obs, as_of_day, cov)
