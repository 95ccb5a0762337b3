"""Read queries over ingest's tables: samples (and the narrow ``readings`` view over them), the hourly
and daily rollups, and ``device_health``. The tables are guaranteed by ingest's migrations on both
storage paths (the ``readings``/``readings_hourly``/``readings_daily`` shapes are the same on each).

Every function takes an open psycopg connection and plain values.
Units: sensor values in the unit of :data:`registry.metrics.METRICS` (°C, %, m³/m³, mm, W/m², m/s);
times tz-aware UTC.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from registry.devices import placement_join
from registry.metrics import METRICS
from registry.read import OrchardScope, orchard_devices

#: A requested range up to this long is served from raw readings.
RAW_MAX = timedelta(hours=36)
#: Up to this long from the hourly rollup; beyond it from the daily rollup (so a year is ~366 points).
HOURLY_MAX = timedelta(days=16)

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
    has been stored for this orchard.

    One statement in the usual case: the newest reading time ``device_health`` keeps bounds the search
    to the day before it, so the planner prunes the daily partitions to one or two, and that day's
    sample rows are read once (one index range). Without a ``device_health`` row (readings written by
    hand) each (device, metric) is one index probe; without raw readings, the hourly rollup answers.
    """
    devices = orchard_devices(conn, orchard_id) if devices is None else devices
    out: dict[str, Any] = {"as_of": None, "source": None, "metrics": {}, "rain_24h_mm": None}
    if not devices:
        return out
    # Planning this statement over a partitioned table costs milliseconds (one plan per partition); a
    # generic plan is made once per connection (psycopg prepares repeated statements) and partitions are
    # still pruned at run time from h.newest.
    conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    wide = conn.execute(_LATEST_WIDE, {"d": devices}).fetchone()
    conn.execute("SET LOCAL plan_cache_mode = auto")  # the caller's later statements plan as usual
    rows: list[tuple[Any, ...]] = []
    if wide:
        out["rain_24h_mm"] = wide[0]
        rows = [(m, wide[1 + 2 * i], wide[2 + 2 * i]) for i, m in enumerate(METRICS) if wide[1 + 2 * i]]
    source = "readings" if rows else None
    # without a device_health row (readings written by hand): one index probe per (device, metric);
    # without raw readings, the hourly rollup
    for table, tcol, vcol, rain_col in (("readings", "time", "value", "value"),
                                         ("readings_hourly", "bucket", "avg", "sum")):
        if rows:
            break
        rows = conn.execute(
            f"""SELECT m.metric, r.t, r.v FROM unnest(%s::text[]) AS m(metric)
                CROSS JOIN LATERAL (SELECT {tcol} AS t, {vcol}::float8 AS v FROM {table}
                                    WHERE device_id = ANY(%s) AND metric = m.metric
                                    ORDER BY {tcol} DESC LIMIT 1) r""",
            [list(METRICS), devices],
        ).fetchall()
        if rows:
            source = table
            latest = max(r[1] for r in rows)
            rain = conn.execute(
                f"SELECT sum({rain_col})::float8 FROM {table} WHERE device_id = ANY(%s) AND metric = 'rain_mm' "
                f"AND {tcol} > %s - interval '24 hours' AND {tcol} <= %s",
                (devices, latest, latest),
            ).fetchone()
            out["rain_24h_mm"] = rain[0] if rain else None
    out["source"] = source
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
    row = conn.execute(
        "SELECT max(last_reading_at) FROM device_health WHERE device_id = ANY(%s)", (devices,)
    ).fetchone()
    if row and row[0]:
        return row[0].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    row = conn.execute(
        "SELECT max(bucket) FROM readings_hourly WHERE device_id = ANY(%s) AND metric = 'air_temp_c'", (devices,)
    ).fetchone()
    if row and row[0]:
        return row[0] + timedelta(hours=1)
    row = conn.execute(
        "SELECT max(time) FROM readings WHERE device_id = ANY(%s) AND metric = 'air_temp_c'", (devices,)
    ).fetchone()
    return row[0] if row and row[0] else None


def resolution_for(start: datetime, end: datetime) -> str:
    """'raw' for ranges up to 36 h, 'hour' up to 16 days, else 'day' (a year is ~366 points)."""
    span = end - start
    if span <= RAW_MAX:
        return "raw"
    if span <= HOURLY_MAX:
        return "hour"
    return "day"


_ROLLUP = {"hour": "readings_hourly", "day": "readings_daily"}


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
    """
    res = resolution or resolution_for(start, end)
    devices = orchard_devices(conn, orchard_id)
    series: dict[str, list[dict[str, Any]]] = {m: [] for m in metrics}
    used = None
    if devices:
        if res == "raw":
            rows = conn.execute(
                """SELECT metric, time, value::float8, value::float8, value::float8, 1, value::float8
                   FROM readings WHERE device_id = ANY(%s) AND metric = ANY(%s) AND time >= %s AND time < %s
                   ORDER BY metric, time LIMIT 20000""",
                (devices, metrics, start, end),
            ).fetchall()
            used = "readings"
        else:
            table = _ROLLUP[res]
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
    got: dict[str, str] = {}
    used = None
    if devices:
        if res == "raw":
            sql = """SELECT metric, json_agg(json_build_object('t', time, 'avg', value, 'min', value,
                            'max', value, 'n', 1, 'sum', value) ORDER BY time)::text
                     FROM readings WHERE device_id = ANY(%s) AND metric = ANY(%s) AND time >= %s AND time < %s
                     GROUP BY metric"""
            used = "readings"
        else:
            used = _ROLLUP[res]
            sql = f"""SELECT metric, json_agg(json_build_object('t', bucket, 'avg', avg, 'min', min, 'max', max,
                             'n', n, 'sum', sum) ORDER BY bucket)::text
                      FROM {used} WHERE device_id = ANY(%s) AND metric = ANY(%s) AND bucket >= %s AND bucket < %s
                      GROUP BY metric"""
        # prepare=False: planned for these very values each time (~0.1 ms). Prepared, PostgreSQL
        # switches to a generic plan after five executions, and for the hourly rollup that plan
        # took 25 ms instead of 1.7 ms for a 7-day, 3-metric chart (measured, 504 rows).
        got = dict(conn.execute(sql, (devices, metrics, start, end), prepare=False).fetchall())
    head = json.dumps(
        {"orchard_id": orchard_id, "start": start.isoformat(), "end": end.isoformat(), "resolution": res,
         "source": used},
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


def newest_hourly_value(conn: psycopg.Connection, orchard_ids: list[str], metric: str) -> dict[str, float]:
    """Per orchard, the newest hourly mean of ``metric`` among its gateways (orchards without one absent)."""
    if not orchard_ids:
        return {}
    rows = conn.execute(
        """SELECT d.orchard_id, r.avg::float8 FROM devices d
           CROSS JOIN LATERAL (SELECT avg FROM readings_hourly h WHERE h.device_id = d.device_id
                               AND h.metric = %s ORDER BY bucket DESC LIMIT 1) r
           WHERE d.orchard_id = ANY(%s)""",
        (metric, orchard_ids),
    ).fetchall()
    return {oid: v for oid, v in rows}


def device_health(
    conn: psycopg.Connection,
    *,
    scope: OrchardScope,
    silent_after: timedelta = timedelta(hours=2),
    limit: int = 100,
    offset: int = 0,
    only_silent: bool = False,
) -> dict[str, Any]:
    """Gateways in scope with their ``device_health`` row (newest reading time, battery V, RSSI dBm).

    The reference "now" is the newest reading time across all gateways, so simulated (accelerated or
    replayed) time is judged consistently. A gateway is *silent* when it has never reported or its
    newest reading is older than ``silent_after`` before that reference; ``online_rate`` (0-1) is the
    share that is neither silent nor storing nothing. Silent gateways are listed first. ``stores_nothing``:
    a device still heard whose messages stored no value for ``silent_after`` (e.g. keys its profile does
    not map); it is not online and ``only_silent`` lists it. ``unmapped_keys``: how many distinct keys of
    it no profile rule accounts for.
    """
    where, params = scope.sql()
    ref = conn.execute("SELECT max(last_reading_at) FROM device_health").fetchone()[0]  # type: ignore[index]
    cte = f"""WITH d AS (
        SELECT d.device_id, d.orchard_id, o.name AS orchard_name, o.cooperative_id, h.last_reading_at,
               h.last_seen_at, h.battery_v, h.rssi_dbm, h.rejects,
               (h.last_reading_at IS NULL OR h.last_reading_at < %s::timestamptz - %s) AS silent,
               (h.last_seen_at >= coalesce(%s::timestamptz, h.last_seen_at) - %s
                AND (h.last_reading_at IS NULL OR h.last_reading_at < h.last_seen_at - %s)) AS stores_nothing,
               (SELECT count(*) FROM device_unmapped_keys u WHERE u.device_id = d.device_id) AS unmapped_keys
        FROM devices d JOIN orchards o USING (orchard_id) LEFT JOIN device_health h USING (device_id)
        WHERE d.active AND {where})"""
    # stores_nothing: messages keep arriving (heard within the window) but no reading was stored in it,
    # e.g. a device whose profile maps none of its keys (they are counted in device_unmapped_keys)
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


SHANGHAI = ZoneInfo("Asia/Shanghai")
FROST_C = 0.0        #: a day with air temperature minimum below this is a frost day, °C
HOT_C = 35.0         #: a day with air temperature maximum at or above this is a heat day, °C


def _r(v: Any, nd: int = 1) -> float | None:
    return None if v is None else round(float(v), nd)


def season_summary(conn: psycopg.Connection, orchard_id: str, start: date, end: date) -> dict[str, Any]:
    """Summary of the orchard's devices from ``readings_daily`` over local (Asia/Shanghai) days
    ``start``..``end``: air temperature min/max/mean (°C), frost days (minimum < 0 °C) and heat days
    (maximum ≥ 35 °C), rain total (mm), soil moisture mean (m³/m³), days with data. Each day counts for the
    orchard its devices were in that day (:func:`registry.devices.placement_join`): moved and replaced
    devices' history stays with the right orchard."""
    t0 = datetime.combine(start, time(0), SHANGHAI)
    t1 = datetime.combine(end + timedelta(days=1), time(0), SHANGHAI)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT r.metric, count(DISTINCT r.bucket) AS days, sum(r.n) AS n, min(r.min) AS min,
                      max(r.max) AS max, sum(r.avg * r.n) / nullif(sum(r.n), 0) AS avg, sum(r.sum) AS total,
                      count(*) FILTER (WHERE r.min < %s) AS below, count(*) FILTER (WHERE r.max >= %s) AS above
               FROM readings_daily r """ + placement_join("r", "bucket", "d") + """
               WHERE d.orchard_id = %s AND r.bucket >= %s AND r.bucket < %s
               GROUP BY r.metric""", (FROST_C, HOT_C, orchard_id, t0, t1)).fetchall()
    by = {r["metric"]: r for r in rows}
    out: dict[str, Any] = {"from": start, "to": end, "days_with_data": max((r["days"] for r in rows), default=0)}
    t = by.get("air_temp_c")
    if t:
        out.update({"air_temp_min_c": _r(t["min"]), "air_temp_max_c": _r(t["max"]),
                    "air_temp_mean_c": _r(t["avg"]), "frost_days": int(t["below"]), "heat_days": int(t["above"])})
    rain = by.get("rain_mm")
    if rain:
        out["rain_total_mm"] = _r(rain["total"])
    soil = by.get("soil_vwc_10cm")
    if soil:
        out["soil_vwc_10cm_mean"] = _r(soil["avg"], 3)
    return out


def reporting_coverage(conn: psycopg.Connection, *, scope: OrchardScope, start: datetime,
                       end: datetime) -> dict[str, Any]:
    """How much of the orchard network reported over [start, end): active gateways in scope and how many
    sent data, orchards (and their area, mu) with at least one reporting gateway, and data completeness:
    hours with an hourly air-temperature bucket over gateway-hours in the period (0-1)."""
    where, params = scope.sql()
    row = conn.execute(
        f"""WITH d AS (
                SELECT d.device_id, o.orchard_id, o.area_mu,
                       (SELECT count(*) FROM readings_hourly h WHERE h.device_id = d.device_id
                          AND h.metric = 'air_temp_c' AND h.bucket >= %s AND h.bucket < %s) AS hours
                FROM devices d JOIN orchards o USING (orchard_id) WHERE d.active AND {where})
            SELECT count(*), count(*) FILTER (WHERE hours > 0), coalesce(sum(hours), 0),
                   (SELECT count(*) FROM orchards o WHERE {where}),
                   (SELECT coalesce(sum(area_mu), 0)::float8 FROM orchards o WHERE {where}),
                   count(DISTINCT orchard_id) FILTER (WHERE hours > 0),
                   (SELECT coalesce(sum(a), 0)::float8 FROM (SELECT DISTINCT orchard_id, area_mu AS a FROM d
                                                            WHERE hours > 0) x)
            FROM d""",
        [start, end, *params, *params, *params],
    ).fetchone()
    assert row is not None
    hours = max(1.0, (end - start).total_seconds() / 3600)
    devices = int(row[0])
    return {"devices": devices, "devices_reporting": int(row[1]), "orchards": int(row[3]),
            "area_mu": float(row[4]), "orchards_online": int(row[5]), "area_online_mu": float(row[6]),
            "completeness": (float(row[2]) / (devices * hours)) if devices else None}


def room_air_temperatures(conn: psycopg.Connection, cold_room_id: str, t0: datetime, t1: datetime,
                          ) -> list[tuple[datetime, float]]:
    """(time, °C) of the air-temperature readings of devices placed in cold room ``cold_room_id`` at that
    time (registry ``device_placements``), ``t0 <= time < t1``, mean over the room's devices per time."""
    rows = conn.execute(
        """SELECT r.time, avg(r.value) FROM readings r
             JOIN device_placements p ON p.device_id = r.device_id
                                     AND r.time >= p.valid_from AND r.time < p.valid_to
            WHERE p.cold_room_id = %s AND r.metric = 'air_temp_c' AND r.time >= %s AND r.time < %s
            GROUP BY r.time ORDER BY r.time""", (cold_room_id, t0, t1)).fetchall()
    return [(t, float(v)) for t, v in rows]


def daily_weather(conn: psycopg.Connection, orchard_ids: list[str], start: date, end: date) -> dict[str, list[Any]]:
    """Daily series over local (Asia/Shanghai) days ``start``..``end`` from the orchards' gateways:
    ``day`` (ISO dates), ``tmin_c``/``tmax_c`` (°C, mean over devices), ``rain_mm`` (mm, never below 0)."""
    t0 = datetime.combine(start, time(0), SHANGHAI)
    t1 = datetime.combine(end + timedelta(days=1), time(0), SHANGHAI)
    rows = conn.execute(
        """SELECT (r.bucket AT TIME ZONE 'Asia/Shanghai')::date AS day,
                  avg(r.min) FILTER (WHERE r.metric = 'air_temp_c'),
                  avg(r.max) FILTER (WHERE r.metric = 'air_temp_c'),
                  avg(r.sum) FILTER (WHERE r.metric = 'rain_mm')
             FROM readings_daily r JOIN devices d USING (device_id)
            WHERE d.orchard_id = ANY(%s) AND r.bucket >= %s AND r.bucket < %s
              AND r.metric IN ('air_temp_c', 'rain_mm')
            GROUP BY 1 ORDER BY 1""", (orchard_ids, t0, t1)).fetchall()
    return {"day": [r[0].isoformat() for r in rows], "tmin_c": [_r(r[1]) for r in rows],
            "tmax_c": [_r(r[2]) for r in rows], "rain_mm": [max(0.0, _r(r[3]) or 0.0) for r in rows]}
