"""Read queries over orchard_models' tables: the latest forecasts (``latest_forecast_orchards``,
``latest_forecasts``) and the growers' farm records (``farm_records``, which this package also writes
for the web layer: the records feed its forecasts). Guaranteed by this package's migrations.

Every function takes an open psycopg connection and plain values. Masses in kg; dates are calendar
days (Asia/Shanghai); ``week_start`` is a harvest week's Monday.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

#: kinds of farm record (see sql/002_records.sql): the rules' own tuple, re-exported
from orchard_models.observation_rules import FARM_KINDS as FARM_KINDS
from orchard_models.observation_rules import check_farm_record


def orchard_forecast(conn: psycopg.Connection, orchard_id: str) -> dict[str, Any] | None:
    """Latest forecast of one orchard: summary (bloom, harvest window, totals, risk) and weekly rows by grade.

    None when no forecast has been produced for the orchard yet.
    """
    cur = conn.cursor(row_factory=dict_row)
    head = cur.execute(
        """SELECT run_id, orchard_id, bloom_date, harvest_start, harvest_end, total_p10_kg::float8 AS total_p10_kg,
                  total_p50_kg::float8 AS total_p50_kg, total_p90_kg::float8 AS total_p90_kg, risk
           FROM latest_forecast_orchards WHERE orchard_id = %s""",
        (orchard_id,),
    ).fetchone()
    if head is None:
        return None
    head["weeks"] = cur.execute(
        """SELECT week_start, grade, p10_kg::float8 AS p10_kg, p50_kg::float8 AS p50_kg, p90_kg::float8 AS p90_kg
           FROM latest_forecasts WHERE orchard_id = %s ORDER BY week_start, grade""",
        (orchard_id,),
    ).fetchall()
    return head


def forecast_supply(conn: psycopg.Connection, *, cooperative_id: str | None = None) -> list[dict[str, Any]]:
    """Forecast supply by harvest week and grade over all orchards (or one cooperative's), kg.

    P50s add up; P10/P90 of a sum are not sums of P10/P90 (orchard errors partly cancel), so the
    band here is the sum of the orchards' bands: a conservative (wide) envelope, labelled as such.
    """
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


def forecast_totals(conn: psycopg.Connection, orchard_ids: list[str]) -> dict[str, tuple[Any, float | None]]:
    """Per orchard with a forecast: (risk indices, total P50 kg)."""
    if not orchard_ids:
        return {}
    rows = conn.execute(
        "SELECT orchard_id, risk, total_p50_kg::float8 FROM latest_forecast_orchards WHERE orchard_id = ANY(%s)",
        (orchard_ids,),
    ).fetchall()
    return {oid: (risk, p50) for oid, risk, p50 in rows}


def latest_season(conn: psycopg.Connection) -> int | None:
    """The season of the newest forecast run, None before any run."""
    row = conn.execute("SELECT max(season) FROM forecast_runs").fetchone()
    return int(row[0]) if row and row[0] else None


# ----------------------------------------------------------------------------- farm records

_RECORD_COLS = "record_id, orchard_id, recorded_at, observed_on, kind, value::float8 AS value, note, recorded_by"


def list_farm_records(
    conn: psycopg.Connection, orchard_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Records of one orchard, newest observation first; returns (page, total)."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""SELECT {_RECORD_COLS} FROM farm_records WHERE orchard_id = %s
                ORDER BY observed_on DESC, record_id DESC LIMIT %s OFFSET %s""",
            (orchard_id, limit, offset),
        )
        .fetchall()
    )
    total = conn.execute("SELECT count(*) FROM farm_records WHERE orchard_id = %s", (orchard_id,)).fetchone()[0]  # type: ignore[index]
    return rows, int(total)


def recent_fruit_counts(conn: psycopg.Connection, orchard_id: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """One orchard's latest sample-tree fruit counts (table ``fruit_counts``), newest first: ``counted_on``,
    ``trees`` (number of sample trees), ``mean_fruit_per_tree`` (fruits a tree) and ``mean_fruit_g`` (g, or
    None)."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT count_id, counted_on, cardinality(tree_ids) AS trees,
                      (SELECT avg(f) FROM unnest(fruit_per_tree) f)::float8 AS mean_fruit_per_tree, mean_fruit_g
               FROM fruit_counts WHERE orchard_id = %s ORDER BY counted_on DESC, count_id DESC LIMIT %s""",
            (orchard_id, limit),
        )
        .fetchall()
    )


def add_farm_record(
    conn: psycopg.Connection,
    *,
    orchard_id: str,
    observed_on: date,
    kind: str,
    value: float | None,
    note: str,
    recorded_by: str,
) -> dict[str, Any]:
    """Insert one record (the caller commits); :class:`~orchard_models.observation_rules.InvalidRecord`
    (422, also a ``ValueError``) for an unknown kind, a day outside 2000..today, or a value that is not
    finite or out of its kind's range."""
    check_farm_record(kind, value, observed_on)
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""INSERT INTO farm_records (orchard_id, observed_on, kind, value, note, recorded_by)
                VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_RECORD_COLS}""",
            (orchard_id, observed_on, kind, value, note, recorded_by),
        )
        .fetchone()
    )
    assert row is not None
    return row
