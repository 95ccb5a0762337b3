"""Read queries over trading's tables the web pages need beyond the domain modules' own readers
(:func:`trading.orders.list_orders`, :func:`trading.allocation.get_allocations`,
:func:`trading.warehouse.stock`, ...): shipments by buyer and a grower's contracted kg by week.

Every function takes an open psycopg connection and plain values. Masses in kg, money in fen.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from orchard_models.read import latest_season


def current_season(conn: psycopg.Connection) -> int:
    """The season of the newest forecast run, else this calendar year."""
    return latest_season(conn) or date.today().year


def shipments(conn: psycopg.Connection, *, buyer_id: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """Shipments (with trace codes) of one buyer's orders (all with ``buyer_id`` None), newest first."""
    where, args = ("WHERE o.buyer_id = %s", [buyer_id]) if buyer_id is not None else ("", [])
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""SELECT s.trace_code, s.order_id, s.grade, s.kg, s.shipped_at, o.destination
            FROM shipments s JOIN orders o USING (order_id) {where}
            ORDER BY s.shipped_at DESC LIMIT %s""",
            [*args, limit],
        )
        .fetchall()
    )


def grower_contracts(conn: psycopg.Connection, grower_id: str) -> list[dict[str, Any]]:
    """The latest allocation run's kg from one grower's orchards by harvest week, grade and status
    (committed / expected), with the orders' count, destinations and contract value (fen)."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT a.harvest_week, a.grade, a.status, sum(a.kg) AS kg, count(DISTINCT a.order_id) AS orders,
                  string_agg(DISTINCT o.destination, ', ') AS destination,
                  round(sum(a.kg * o.price_fen_per_kg))::bigint AS revenue_fen
           FROM allocations a JOIN orders o USING (order_id) JOIN orchards orc USING (orchard_id)
           WHERE orc.grower_id = %s AND a.alloc_run_id = (SELECT max(alloc_run_id) FROM allocation_runs)
           GROUP BY a.harvest_week, a.grade, a.status
           ORDER BY a.harvest_week, a.grade, a.status""",
            (grower_id,),
        )
        .fetchall()
    )


def order_figures(conn: psycopg.Connection, *, season: int, start: datetime, end: datetime) -> dict[str, Any]:
    """Forward orders of a season (cancelled ones left out): count, ordered kg, committed and expected kg
    of the latest allocation run, kg shipped over [start, end) and in the whole season, and the fill
    rates committed / ordered and shipped / ordered (0-1, None without orders)."""
    row = conn.execute(
        """WITH o AS (SELECT order_id, quantity_kg FROM orders WHERE season = %(s)s AND status <> 'cancelled'),
                run AS (SELECT max(alloc_run_id) AS id FROM allocation_runs WHERE season = %(s)s)
           SELECT (SELECT count(*) FROM o), (SELECT coalesce(sum(quantity_kg), 0) FROM o),
                  (SELECT coalesce(sum(kg) FILTER (WHERE status = 'committed'), 0) FROM allocations a, run
                    WHERE a.alloc_run_id = run.id AND a.order_id IN (SELECT order_id FROM o)),
                  (SELECT coalesce(sum(kg) FILTER (WHERE status = 'expected'), 0) FROM allocations a, run
                    WHERE a.alloc_run_id = run.id AND a.order_id IN (SELECT order_id FROM o)),
                  (SELECT coalesce(sum(kg), 0) FROM shipments WHERE order_id IN (SELECT order_id FROM o)
                    AND shipped_at >= %(a)s AND shipped_at < %(b)s),
                  (SELECT coalesce(sum(kg), 0) FROM shipments WHERE order_id IN (SELECT order_id FROM o))""",
        {"s": season, "a": start, "b": end},
    ).fetchone()
    assert row is not None
    ordered = float(row[1])
    return {"orders": int(row[0]), "ordered_kg": ordered, "committed_kg": float(row[2]),
            "expected_kg": float(row[3]), "shipped_in_period_kg": float(row[4]), "shipped_kg": float(row[5]),
            "committed_share": float(row[2]) / ordered if ordered else None,
            "shipped_share": float(row[5]) / ordered if ordered else None}


def received_by_grade(conn: psycopg.Connection, *, season: int, until: datetime,
                      cooperative_id: str | None = None) -> dict[str, float]:
    """kg received into the warehouse per grade from the season's lots received before ``until`` (all
    orchards, or one cooperative's): the harvest as the warehouse weighed it."""
    rows = conn.execute(
        """SELECT g.grade, sum(g.received_kg)::float8 FROM lots l JOIN lot_grades g USING (lot_id)
           JOIN orchards o USING (orchard_id)
           WHERE l.season = %s AND l.received_at < %s AND (%s::text IS NULL OR o.cooperative_id = %s)
           GROUP BY g.grade""", (season, until, cooperative_id, cooperative_id)).fetchall()
    return {g: kg for g, kg in rows}
