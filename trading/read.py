"""Read queries over trading's tables the web pages need beyond the domain modules' own readers
(:func:`trading.orders.list_orders`, :func:`trading.allocation.get_allocations`,
:func:`trading.warehouse.stock`, ...): shipments by buyer and a grower's contracted kg by week.

Every function takes an open psycopg connection and plain values. Masses in kg, money in fen.
"""

from __future__ import annotations

from datetime import date
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
