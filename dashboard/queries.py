"""Read (and farm-record write) queries shared by the API and the pages.

Every function takes an open psycopg connection and plain values. Tables owned by other packages
(ingest's readings and rollups, orchard_models' forecasts and farm records) are used only when they
exist: :func:`has_table` lets callers show an honest empty state instead of failing before those
packages are installed and migrated.

Units: sensor values in the unit of :data:`registry.metrics.METRICS` (°C, %, m³/m³, mm, W/m², m/s);
masses in kg; areas in mu; times tz-aware UTC.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from registry.metrics import METRICS

#: A requested range up to this long is served from raw readings.
RAW_MAX = timedelta(hours=36)
#: Up to this long from the hourly rollup; beyond it from the daily rollup (so a year is ~366 points).
HOURLY_MAX = timedelta(days=16)

_TABLE_CACHE: dict[str, tuple[float, bool]] = {}


def has_table(conn: psycopg.Connection, name: str) -> bool:
    """Whether a table or view called ``name`` exists (positive answers cached for the process)."""
    hit = _TABLE_CACHE.get(name)
    now = time.monotonic()
    if hit and (hit[1] or now - hit[0] < 10.0):
        return hit[1]
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    found = bool(row and row[0])
    _TABLE_CACHE[name] = (now, found)
    return found


_COLS_CACHE: dict[str, list[str]] = {}


def columns(conn: psycopg.Connection, table: str) -> list[str]:
    """Column names of ``table`` (cached; empty when the table does not exist)."""
    if table not in _COLS_CACHE or not _COLS_CACHE[table]:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            (table,),
        ).fetchall()
        _COLS_CACHE[table] = [r[0] for r in rows]
    return _COLS_CACHE[table]


def _pick(cols: list[str], *names: str) -> str | None:
    for n in names:
        if n in cols:
            return n
    return None


def raw_readings_shape(conn: psycopg.Connection) -> tuple[str, str] | None:
    """(time column, value column) of ingest's raw ``readings`` table, or None if it is not there."""
    if not has_table(conn, "readings"):
        return None
    cols = columns(conn, "readings")
    tcol = _pick(cols, "time", "ts", "observed_at", "measured_at", "recorded_at")
    vcol = _pick(cols, "value", "val", "reading")
    if not tcol or not vcol or "device_id" not in cols or "metric" not in cols:
        return None
    return tcol, vcol


# ----------------------------------------------------------------------------- orchards

ORCHARD_COLS = """o.orchard_id, o.name, o.grower_id, g.name AS grower_name, o.cooperative_id, o.township_id,
       t.name_zh AS township_zh, t.name_en AS township_en, o.area_mu::float8 AS area_mu, o.elevation_m,
       o.lat, o.lon, o.planting_year, o.tree_count, o.variety"""
ORCHARD_FROM = "FROM orchards o JOIN townships t USING (township_id) JOIN growers g ON g.grower_id = o.grower_id"


def list_orchards(
    conn: psycopg.Connection,
    *,
    scope: tuple[str, list[Any]],
    township: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Orchards visible in ``scope`` (SQL condition on alias ``o``), in id order; returns (page, total)."""
    where, params = scope[0], list(scope[1])
    if township:
        where += " AND o.township_id = %s"
        params.append(township)
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        f"SELECT {ORCHARD_COLS} {ORCHARD_FROM} WHERE {where} ORDER BY o.orchard_id LIMIT %s OFFSET %s",
        [*params, limit, offset],
    ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM orchards o WHERE {where}", params).fetchone()[0]  # type: ignore[index]
    return rows, int(total)


def get_orchard(conn: psycopg.Connection, orchard_id: str) -> dict[str, Any] | None:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(f"SELECT {ORCHARD_COLS} {ORCHARD_FROM} WHERE o.orchard_id = %s", (orchard_id,))
        .fetchone()
    )


def orchard_devices(conn: psycopg.Connection, orchard_id: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT device_id FROM devices WHERE orchard_id = %s AND active ORDER BY device_id", (orchard_id,)
        ).fetchall()
    ]


# The newest value of each metric among the orchard's gateways' samples of the day before their newest
# reading (ingest's wide ``samples``: a column per metric, NULL when not measured), and the rain sum.
_LATEST_WIDE = (
    "WITH h AS (SELECT max(last_reading_at) AS newest FROM device_health WHERE device_id = ANY(%(d)s))"
    " SELECT (sum(s.rain_mm) FILTER (WHERE s.time > h.newest - interval '24 hours'))::float8, "
    + ", ".join(f"max(s.time) FILTER (WHERE s.{m} IS NOT NULL),"
                f" ((array_agg(s.{m} ORDER BY s.time DESC) FILTER (WHERE s.{m} IS NOT NULL))[1])::float8"
                for m in METRICS)
    + " FROM h JOIN samples s ON s.device_id = ANY(%(d)s) AND s.time > h.newest - interval '1 day'"
      " AND s.time <= h.newest GROUP BY h.newest"
)


def latest_conditions(conn: psycopg.Connection, orchard_id: str, devices: list[str] | None = None) -> dict[str, Any]:
    """The latest value of every metric from the orchard's gateways, plus rain over the 24 h before it.

    Returns ``{"as_of": datetime|None, "source": "readings"|"readings_hourly"|None, "metrics": {name:
    {"value", "unit", "time"}}, "rain_24h_mm": float|None}``. ``source`` None means no sensor data
    has been stored for this orchard (or ingest is not installed).

    With ingest's ``device_health`` present this is one statement: the newest reading time it keeps
    bounds the search to the day before it, so the planner prunes the daily partitions to one or two.
    With ingest's wide ``samples`` it reads that day's sample rows once (one index range) and takes
    each metric's newest value from them; otherwise each (device, metric) is one index probe.
    """
    devices = orchard_devices(conn, orchard_id) if devices is None else devices
    out: dict[str, Any] = {"as_of": None, "source": None, "metrics": {}, "rain_24h_mm": None}
    if not devices:
        return out
    shape = raw_readings_shape(conn)
    rows: list[tuple[Any, ...]] = []
    if shape and has_table(conn, "samples") and has_table(conn, "device_health"):
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # see below
        wide = conn.execute(_LATEST_WIDE, {"d": devices}).fetchone()
        conn.execute("SET LOCAL plan_cache_mode = auto")
        if wide:
            out["rain_24h_mm"] = wide[0]
            rows = [(m, wide[1 + 2 * i], wide[2 + 2 * i]) for i, m in enumerate(METRICS) if wide[1 + 2 * i]]
            if rows:
                out["source"] = "readings"
        shape = None if rows else shape
    if shape:
        tcol, vcol = shape
        if has_table(conn, "device_health"):
            # Planning this statement over a partitioned table costs milliseconds (one plan per
            # partition); a generic plan is made once per connection (psycopg prepares repeated
            # statements) and partitions are still pruned at run time from h.newest.
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            rows = conn.execute(
                f"""WITH h AS (SELECT max(last_reading_at) AS newest FROM device_health WHERE device_id = ANY(%(d)s))
                    SELECT m.metric, r.t, r.v,
                           (SELECT sum({vcol})::float8 FROM readings WHERE device_id = ANY(%(d)s)
                              AND metric = 'rain_mm' AND {tcol} > h.newest - interval '24 hours'
                              AND {tcol} <= h.newest) AS rain
                    FROM h CROSS JOIN unnest(%(m)s::text[]) AS m(metric)
                    CROSS JOIN LATERAL (SELECT {tcol} AS t, {vcol}::float8 AS v FROM readings
                                        WHERE device_id = ANY(%(d)s) AND metric = m.metric
                                          AND {tcol} > h.newest - interval '1 day' AND {tcol} <= h.newest
                                        ORDER BY {tcol} DESC LIMIT 1) r""",
                {"d": devices, "m": list(METRICS)},
            ).fetchall()
            conn.execute("SET LOCAL plan_cache_mode = auto")  # the caller's later statements plan as usual
            if rows:
                out["rain_24h_mm"] = rows[0][3]
        if not rows:
            # one index probe per (device, metric): LATERAL + LIMIT 1 uses the (device, metric, time) index
            rows = conn.execute(
                f"""SELECT m.metric, r.t, r.v FROM unnest(%s::text[]) AS m(metric)
                    CROSS JOIN LATERAL (SELECT {tcol} AS t, {vcol}::float8 AS v FROM readings
                                        WHERE device_id = ANY(%s) AND metric = m.metric
                                        ORDER BY {tcol} DESC LIMIT 1) r""",
                [list(METRICS), devices],
            ).fetchall()
            if rows:
                latest = max(r[1] for r in rows)
                rain = conn.execute(
                    f"SELECT sum({vcol})::float8 FROM readings WHERE device_id = ANY(%s) AND metric = 'rain_mm' "
                    f"AND {tcol} > %s - interval '24 hours' AND {tcol} <= %s",
                    (devices, latest, latest),
                ).fetchone()
                out["rain_24h_mm"] = rain[0] if rain else None
        if rows:
            out["source"] = "readings"
    if not rows and has_table(conn, "readings_hourly"):
        rows = conn.execute(
            """SELECT m.metric, r.t, r.v FROM unnest(%s::text[]) AS m(metric)
               CROSS JOIN LATERAL (SELECT bucket AS t, avg::float8 AS v FROM readings_hourly
                                   WHERE device_id = ANY(%s) AND metric = m.metric
                                   ORDER BY bucket DESC LIMIT 1) r""",
            (list(METRICS), devices),
        ).fetchall()
        if rows:
            out["source"] = "readings_hourly"
            latest = max(r[1] for r in rows)
            rain = conn.execute(
                "SELECT sum(sum)::float8 FROM readings_hourly WHERE device_id = ANY(%s) AND metric = 'rain_mm' "
                "AND bucket > %s - interval '24 hours' AND bucket <= %s",
                (devices, latest, latest),
            ).fetchone()
            out["rain_24h_mm"] = rain[0] if rain else None
    for row in rows:
        metric, t, v = row[0], row[1], row[2]
        m = METRICS[metric]
        out["metrics"][metric] = {"value": v, "unit": m.unit, "time": t, "label_zh": m.label_zh, "label_en": m.label_en}
    if rows:
        out["as_of"] = max(r[1] for r in rows)
    return out


def latest_data_time(conn: psycopg.Connection, orchard_id: str, devices: list[str] | None = None) -> datetime | None:
    """Time just after the orchard's newest reading (hour-aligned), None without data."""
    devices = orchard_devices(conn, orchard_id) if devices is None else devices
    if not devices:
        return None
    if has_table(conn, "device_health"):
        row = conn.execute(
            "SELECT max(last_reading_at) FROM device_health WHERE device_id = ANY(%s)", (devices,)
        ).fetchone()
        if row and row[0]:
            return row[0].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if has_table(conn, "readings_hourly"):
        row = conn.execute(
            "SELECT max(bucket) FROM readings_hourly WHERE device_id = ANY(%s) AND metric = 'air_temp_c'", (devices,)
        ).fetchone()
        if row and row[0]:
            return row[0] + timedelta(hours=1)
    shape = raw_readings_shape(conn)
    if shape:
        row = conn.execute(
            f"SELECT max({shape[0]}) FROM readings WHERE device_id = ANY(%s) AND metric = 'air_temp_c'", (devices,)
        ).fetchone()
        if row and row[0]:
            return row[0]
    return None


def resolution_for(start: datetime, end: datetime) -> str:
    """'raw' for ranges up to 36 h, 'hour' up to 16 days, else 'day' (a year is ~366 points)."""
    span = end - start
    if span <= RAW_MAX:
        return "raw"
    if span <= HOURLY_MAX:
        return "hour"
    return "day"


def sensor_series(
    conn: psycopg.Connection,
    orchard_id: str,
    metrics: list[str],
    start: datetime,
    end: datetime,
    resolution: str | None = None,
) -> dict[str, Any]:
    """Bucketed series of ``metrics`` for the orchard over [start, end): one query per metric set.

    Points are ``{"t", "avg", "min", "max", "n", "sum"}``; for raw readings avg = min = max = value.
    If the raw table is absent a short range falls back to the hourly rollup.
    """
    res = resolution or resolution_for(start, end)
    devices = orchard_devices(conn, orchard_id)
    series: dict[str, list[dict[str, Any]]] = {m: [] for m in metrics}
    used = None
    if devices:
        shape = raw_readings_shape(conn) if res == "raw" else None
        if res == "raw" and shape is None:
            res = "hour"
        if res == "raw" and shape:
            tcol, vcol = shape
            rows = conn.execute(
                f"""SELECT metric, {tcol}, {vcol}::float8, {vcol}::float8, {vcol}::float8, 1, {vcol}::float8
                    FROM readings WHERE device_id = ANY(%s) AND metric = ANY(%s) AND {tcol} >= %s AND {tcol} < %s
                    ORDER BY metric, {tcol} LIMIT 20000""",
                (devices, metrics, start, end),
            ).fetchall()
            used = "readings"
        else:
            table = "readings_hourly" if res == "hour" else "readings_daily"
            rows = []
            if has_table(conn, table):
                rows = conn.execute(
                    f"""SELECT metric, bucket, avg::float8, min::float8, max::float8, n, sum::float8 FROM {table}
                        WHERE device_id = ANY(%s) AND metric = ANY(%s) AND bucket >= %s AND bucket < %s
                        ORDER BY metric, bucket LIMIT 20000""",
                    (devices, metrics, start, end),
                ).fetchall()
                used = table
        for metric, t, avg, lo, hi, n, s in rows:
            series[metric].append({"t": t, "avg": avg, "min": lo, "max": hi, "n": int(n), "sum": s})
    return {
        "orchard_id": orchard_id,
        "start": start,
        "end": end,
        "resolution": res,
        "source": used,
        "series": [
            {
                "metric": m,
                "unit": METRICS[m].unit,
                "label_zh": METRICS[m].label_zh,
                "label_en": METRICS[m].label_en,
                "points": series[m],
            }
            for m in metrics
        ],
    }


def sensor_series_json(
    conn: psycopg.Connection,
    orchard_id: str,
    devices: list[str],
    metrics: list[str],
    start: datetime,
    end: datetime,
    resolution: str | None = None,
) -> str:
    """:func:`sensor_series` as a JSON document built by PostgreSQL (``json_agg``), for the API's hot
    path: no Python object per point. Same shape: ``{orchard_id, start, end, resolution, source,
    series: [{metric, unit, label_zh, label_en, points: [{t, avg, min, max, n, sum}]}]}``."""
    res = resolution or resolution_for(start, end)
    shape = raw_readings_shape(conn) if res == "raw" else None
    if res == "raw" and shape is None:
        res = "hour"
    got: dict[str, str] = {}
    used = None
    if devices:
        if res == "raw" and shape:
            tcol, vcol = shape
            sql = f"""SELECT metric, json_agg(json_build_object('t', {tcol}, 'avg', {vcol}, 'min', {vcol},
                             'max', {vcol}, 'n', 1, 'sum', {vcol}) ORDER BY {tcol})::text
                      FROM readings WHERE device_id = ANY(%s) AND metric = ANY(%s) AND {tcol} >= %s AND {tcol} < %s
                      GROUP BY metric"""
            used = "readings"
        else:
            table = "readings_hourly" if res == "hour" else "readings_daily"
            sql = f"""SELECT metric, json_agg(json_build_object('t', bucket, 'avg', avg, 'min', min, 'max', max,
                             'n', n, 'sum', sum) ORDER BY bucket)::text
                      FROM {table} WHERE device_id = ANY(%s) AND metric = ANY(%s) AND bucket >= %s AND bucket < %s
                      GROUP BY metric"""
            used = table if has_table(conn, table) else None
        if used:
            # prepare=False: planned for these very values each time (~0.1 ms). Prepared, PostgreSQL
            # switches to a generic plan after five executions, and for the hourly rollup that plan
            # took 25 ms instead of 1.7 ms for a 7-day, 3-metric chart (measured, 504 rows).
            got = dict(conn.execute(sql, (devices, metrics, start, end), prepare=False).fetchall())
    head = json.dumps(
        {
            "orchard_id": orchard_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "resolution": res,
            "source": used,
        },
        ensure_ascii=False,
    )
    parts = []
    for m in metrics:
        meta = METRICS[m]
        parts.append(
            json.dumps(
                {"metric": m, "unit": meta.unit, "label_zh": meta.label_zh, "label_en": meta.label_en},
                ensure_ascii=False,
            )[:-1]
            + ',"points":'
            + got.get(m, "[]")
            + "}"
        )
    return head[:-1] + ',"series":[' + ",".join(parts) + "]}"


# ----------------------------------------------------------------------------- alerts

ALERT_COLS = """a.alert_id, a.kind, a.severity, a.orchard_id, a.device_id, a.cooperative_id, a.title_zh, a.title_en,
       a.advice_zh, a.advice_en, a.detail, a.raised_at, a.updated_at, a.resolved_at"""


def list_alerts(
    conn: psycopg.Connection,
    *,
    role: str,
    grower_id: str | None,
    cooperative_id: str | None,
    orchard_id: str | None = None,
    open_only: bool = True,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Alerts visible to the role: a grower's orchards; a manager's cooperative (its orchards, and
    cooperative-wide alerts); admin all. Newest first."""
    conds, params = [], []
    if role == "grower":
        conds.append("o.grower_id = %s")
        params.append(grower_id)
    elif role == "manager":
        conds.append("(o.cooperative_id = %s OR a.cooperative_id = %s)")
        params += [cooperative_id, cooperative_id]
    elif role != "admin":
        conds.append("FALSE")
    if orchard_id:
        conds.append("a.orchard_id = %s")
        params.append(orchard_id)
    if open_only:
        conds.append("a.resolved_at IS NULL")
    if kind:
        conds.append("a.kind = %s")
        params.append(kind)
    where = " AND ".join(conds) or "TRUE"
    base = f"FROM alerts a LEFT JOIN orchards o ON o.orchard_id = a.orchard_id WHERE {where}"
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {ALERT_COLS} {base} ORDER BY a.raised_at DESC, a.alert_id DESC LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        .fetchall()
    )
    total = conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]  # type: ignore[index]
    return rows, int(total)


# ----------------------------------------------------------------------------- forecasts


def orchard_forecast(conn: psycopg.Connection, orchard_id: str) -> dict[str, Any] | None:
    """Latest forecast of one orchard: summary (bloom, harvest window, totals, risk) and weekly rows by grade.

    None when orchard_models is not installed or has produced no forecast for the orchard.
    """
    if not (has_table(conn, "latest_forecast_orchards") and has_table(conn, "latest_forecasts")):
        return None
    cur = conn.cursor(row_factory=dict_row)
    head = cur.execute(
        """SELECT run_id, orchard_id, bloom_date, harvest_start, harvest_end, total_p10_kg::float8 AS total_p10_kg,
                  total_p50_kg::float8 AS total_p50_kg, total_p90_kg::float8 AS total_p90_kg, risk
           FROM latest_forecast_orchards WHERE orchard_id = %s""",
        (orchard_id,),
    ).fetchone()
    if head is None:
        return None
    weeks = cur.execute(
        """SELECT week_start, grade, p10_kg::float8 AS p10_kg, p50_kg::float8 AS p50_kg, p90_kg::float8 AS p90_kg
           FROM latest_forecasts WHERE orchard_id = %s ORDER BY week_start, grade""",
        (orchard_id,),
    ).fetchall()
    head["weeks"] = weeks
    return head


def forecast_supply(conn: psycopg.Connection, *, cooperative_id: str | None = None) -> list[dict[str, Any]]:
    """Forecast supply by harvest week and grade over all orchards (or one cooperative's), kg.

    P50s add up; P10/P90 of a sum are not sums of P10/P90 (orchard errors partly cancel), so the
    band here is the sum of the orchards' bands: a conservative (wide) envelope, labelled as such.
    """
    if not has_table(conn, "latest_forecasts"):
        return []
    where, params = "", []
    if cooperative_id:
        where, params = " JOIN orchards o USING (orchard_id) WHERE o.cooperative_id = %s", [cooperative_id]
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""SELECT f.week_start, f.grade, sum(f.p10_kg)::float8 AS p10_kg, sum(f.p50_kg)::float8 AS p50_kg,
                   sum(f.p90_kg)::float8 AS p90_kg, count(DISTINCT f.orchard_id) AS orchards
            FROM latest_forecasts f{where} GROUP BY f.week_start, f.grade ORDER BY f.week_start, f.grade""",
            params,
        )
        .fetchall()
    )


def orchard_overview(conn: psycopg.Connection, *, scope: tuple[str, list[Any]]) -> list[dict[str, Any]]:
    """Every visible orchard with position, elevation, newest soil moisture (hourly rollup), open alert
    count and forecast risk, for the manager's scatter. One query per source, no per-orchard round trips."""
    where, params = scope
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""SELECT o.orchard_id, o.name, o.elevation_m, o.lat, o.lon, o.area_mu::float8 AS area_mu,
                   (SELECT count(*) FROM alerts a
                     WHERE a.orchard_id = o.orchard_id AND a.resolved_at IS NULL) AS open_alerts
            FROM orchards o WHERE {where} ORDER BY o.orchard_id""",
            params,
        )
        .fetchall()
    )
    by_id = {r["orchard_id"]: r for r in rows}
    for r in rows:
        r["soil_vwc"] = None
        r["risk"] = None
        r["total_p50_kg"] = None
    if has_table(conn, "readings_hourly") and rows:
        vals = conn.execute(
            """SELECT d.orchard_id, r.avg::float8 FROM devices d
               CROSS JOIN LATERAL (SELECT avg FROM readings_hourly h WHERE h.device_id = d.device_id
                                   AND h.metric = 'soil_vwc_10cm' ORDER BY bucket DESC LIMIT 1) r
               WHERE d.orchard_id = ANY(%s)""",
            (list(by_id),),
        ).fetchall()
        for oid, v in vals:
            by_id[oid]["soil_vwc"] = v
    if has_table(conn, "latest_forecast_orchards") and rows:
        for oid, risk, p50 in conn.execute(
            "SELECT orchard_id, risk, total_p50_kg::float8 FROM latest_forecast_orchards WHERE orchard_id = ANY(%s)",
            (list(by_id),),
        ).fetchall():
            by_id[oid]["risk"] = risk
            by_id[oid]["total_p50_kg"] = p50
    return rows


# ----------------------------------------------------------------------------- farm records

FARM_KINDS = ("work", "flower_density", "fruit_set", "pest", "note")


def list_farm_records(
    conn: psycopg.Connection, orchard_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int] | None:
    """Records of one orchard, newest observation first; None when the table does not exist."""
    if not has_table(conn, "farm_records"):
        return None
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT record_id, orchard_id, recorded_at, observed_on, kind, value::float8 AS value, note, recorded_by
           FROM farm_records WHERE orchard_id = %s ORDER BY observed_on DESC, record_id DESC LIMIT %s OFFSET %s""",
            (orchard_id, limit, offset),
        )
        .fetchall()
    )
    total = conn.execute("SELECT count(*) FROM farm_records WHERE orchard_id = %s", (orchard_id,)).fetchone()[0]  # type: ignore[index]
    return rows, int(total)


def add_farm_record(
    conn: psycopg.Connection,
    *,
    orchard_id: str,
    observed_on: date,
    kind: str,
    value: float | None,
    note: str,
    recorded_by: str,
) -> dict[str, Any] | None:
    """Insert one record (caller commits); None when the table does not exist."""
    if not has_table(conn, "farm_records"):
        return None
    if kind not in FARM_KINDS:
        raise ValueError(f"kind must be one of {FARM_KINDS}")
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """INSERT INTO farm_records (orchard_id, observed_on, kind, value, note, recorded_by)
           VALUES (%s, %s, %s, %s, %s, %s)
           RETURNING record_id, orchard_id, recorded_at, observed_on, kind, value::float8 AS value, note,
                     recorded_by""",
            (orchard_id, observed_on, kind, value, note, recorded_by),
        )
        .fetchone()
    )


# ----------------------------------------------------------------------------- devices


def device_health(
    conn: psycopg.Connection,
    *,
    scope: tuple[str, list[Any]],
    silent_after: timedelta = timedelta(hours=2),
    limit: int = 100,
    offset: int = 0,
    only_silent: bool = False,
) -> dict[str, Any]:
    """Gateways in scope with ingest's ``device_health`` row (newest reading time, battery V, RSSI dBm).

    The reference "now" is the newest reading time across all gateways, so simulated (accelerated or
    replayed) time is judged consistently. A gateway is *silent* when it has never reported or its
    newest reading is older than ``silent_after`` before that reference; ``online_rate`` (0-1) is the
    share that is neither silent nor storing nothing. Silent gateways are listed first. ``stores_nothing``:
    a device still heard whose messages stored no value for ``silent_after`` (e.g. keys its profile does
    not map); it is not online and ``only_silent`` lists it. ``unmapped_keys``: how many distinct keys of
    it no profile rule accounts for.
    """
    where, params = scope
    if not has_table(conn, "device_health"):
        total = conn.execute(
            f"SELECT count(*) FROM devices d JOIN orchards o USING (orchard_id) WHERE d.active AND {where}", params
        ).fetchone()[0]  # type: ignore[index]
        return {
            "reference_time": None,
            "devices": int(total),
            "online": None,
            "online_rate": None,
            "items": [],
            "total": 0,
            "source": None,
        }
    ref = conn.execute("SELECT max(last_reading_at) FROM device_health").fetchone()[0]  # type: ignore[index]
    # stores_nothing: messages keep arriving (heard within the window) but no reading was stored in it,
    # e.g. a device whose profile maps none of its keys (they are counted in device_unmapped_keys)
    cte = f"""WITH d AS (
        SELECT d.device_id, d.orchard_id, o.name AS orchard_name, o.cooperative_id, h.last_reading_at,
               h.last_seen_at, h.battery_v, h.rssi_dbm, h.rejects,
               (h.last_reading_at IS NULL OR h.last_reading_at < %s::timestamptz - %s) AS silent,
               (h.last_seen_at >= coalesce(%s::timestamptz, h.last_seen_at) - %s
                AND (h.last_reading_at IS NULL OR h.last_reading_at < h.last_seen_at - %s)) AS stores_nothing,
               (SELECT count(*) FROM device_unmapped_keys u WHERE u.device_id = d.device_id) AS unmapped_keys
        FROM devices d JOIN orchards o USING (orchard_id) LEFT JOIN device_health h USING (device_id)
        WHERE d.active AND {where})"""
    cparams = [ref, silent_after, ref, silent_after, silent_after, *params]
    # a device that reports but stores nothing is not healthy: not online, listed with the silent ones
    agg = conn.execute(cte + " SELECT count(*), count(*) FILTER (WHERE NOT silent AND NOT coalesce(stores_nothing,"
                             " false)) FROM d", cparams).fetchone()
    assert agg is not None
    cond = " WHERE silent OR coalesce(stores_nothing, false)" if only_silent else ""
    items = (
        conn.cursor(row_factory=dict_row)
        .execute(
            cte
            + f""" SELECT device_id, orchard_id, orchard_name, cooperative_id, last_reading_at, last_seen_at,
                          battery_v, rssi_dbm, coalesce(rejects, 0) AS rejects, silent,
                          coalesce(stores_nothing, false) AS stores_nothing, unmapped_keys FROM d{cond}
                   ORDER BY silent DESC, stores_nothing DESC NULLS LAST, last_reading_at NULLS FIRST, device_id
                   LIMIT %s OFFSET %s""",
            [*cparams, limit, offset],
        )
        .fetchall()
    )
    total_q = conn.execute(cte + f" SELECT count(*) FROM d{cond}", cparams).fetchone()[0]  # type: ignore[index]
    n, online = int(agg[0]), int(agg[1])
    return {
        "reference_time": ref,
        "devices": n,
        "online": online,
        "online_rate": (online / n) if (n and ref) else None,
        "items": items,
        "total": int(total_q),
        "source": "device_health",
    }


def recent_job_runs(conn: psycopg.Connection, *, job: str | None = None, limit: int = 50,
                    offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Scheduled job runs (table ``job_runs``), newest first, for managers."""
    where, params = ("WHERE job = %s", [job]) if job else ("", [])
    rows = conn.cursor(row_factory=dict_row).execute(
        f"SELECT run_id, job, scheduled_for, started_at, finished_at, outcome, error, detail, host, pid "
        f"FROM job_runs {where} ORDER BY started_at DESC, run_id DESC LIMIT %s OFFSET %s",
        [*params, limit, offset]).fetchall()
    row = conn.execute(f"SELECT count(*) FROM job_runs {where}", params).fetchone()
    total = int(row[0]) if row else 0
    return rows, total
