"""The pages' and the API's bridge to the ``trading`` package, scoped by role.

Every function takes a connection, the :class:`~dashboard.access.Principal` and plain values and
returns JSON-ready dicts (Decimal kg and dates kept as values; :func:`plain` converts for JSON). It
raises ``trading.errors.TradingError`` subclasses unchanged (the API maps them to 404/409/422/403),
plus ``PermissionError`` when the role may not see the thing (buyers: only their own orders).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from dashboard.access import Principal
from trading import allocation, orders, settlement, trace, warehouse
from trading import warnings as unsold
from trading.errors import TradingError

__all__ = ["TradingError", "plain"]


def plain(obj: Any) -> Any:
    """JSON-ready copy: dataclasses to dicts, Decimal to float (kg) unless it is integral, dates to ISO."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    return obj


def current_season(conn: psycopg.Connection) -> int:
    """The season of the newest forecast run, else this calendar year."""
    row = conn.execute(
        "SELECT max(season) FROM forecast_runs" if _has(conn, "forecast_runs") else "SELECT NULL"
    ).fetchone()
    return int(row[0]) if row and row[0] else date.today().year


def _has(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


# ----------------------------------------------------------------------------- orders


def place_order(conn: psycopg.Connection, p: Principal, *, idempotency_key: str, **body: Any) -> dict[str, Any]:
    if p.role != "buyer" or not p.buyer_id:
        raise PermissionError("only buyers place orders")
    o = orders.place_order(conn, buyer_id=p.buyer_id, idempotency_key=idempotency_key, **body)
    return dataclasses.asdict(o)


def list_orders(
    conn: psycopg.Connection,
    p: Principal,
    *,
    status: str | None = None,
    season: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A buyer's own orders; every order for managers and admins. Newest first."""
    if p.role not in ("buyer", "manager", "admin"):
        raise PermissionError("orders are for buyers and managers")
    buyer = p.buyer_id if p.role == "buyer" else None
    items, total = orders.list_orders(conn, buyer_id=buyer, status=status, season=season, limit=limit, offset=offset)
    return [dataclasses.asdict(o) for o in items], int(total)


def get_order(conn: psycopg.Connection, p: Principal, order_id: str) -> dict[str, Any]:
    o = dataclasses.asdict(orders.get_order(conn, order_id))
    if p.role == "buyer" and o["buyer_id"] != p.buyer_id:
        raise PermissionError("another buyer's order is not yours to see")
    if p.role not in ("buyer", "manager", "admin"):
        raise PermissionError("orders are for buyers and managers")
    return o


def amend_order(conn: psycopg.Connection, p: Principal, order_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    get_order(conn, p, order_id)
    if p.role != "buyer" or not p.buyer_id:
        raise PermissionError("only the buyer amends an order")
    return dataclasses.asdict(orders.amend_order(conn, order_id, p.buyer_id, **changes))


def cancel_order(conn: psycopg.Connection, p: Principal, order_id: str) -> dict[str, Any]:
    get_order(conn, p, order_id)
    if p.role != "buyer" or not p.buyer_id:
        raise PermissionError("only the buyer cancels an order")
    return dataclasses.asdict(orders.cancel_order(conn, order_id, p.buyer_id))


# ----------------------------------------------------------------------------- allocations, supply


def allocations(
    conn: psycopg.Connection,
    p: Principal,
    *,
    order_id: str | None = None,
    season: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Allocation rows of the latest allocation run: a buyer's own orders; a manager's cooperative
    orchards; all for admin. Returns (page, total)."""
    if p.role == "grower":
        raise PermissionError("allocations are for buyers and managers")
    if order_id is not None:
        get_order(conn, p, order_id)
    rows = allocation.get_allocations(conn, order_id=order_id, season=season, limit=100_000)
    if p.role == "buyer":
        rows = [r for r in rows if r["buyer_id"] == p.buyer_id]
    elif p.role == "manager":
        mine = {
            r[0]
            for r in conn.execute(
                "SELECT orchard_id FROM orchards WHERE cooperative_id = %s", (p.cooperative_id,)
            ).fetchall()
        }
        rows = [r for r in rows if r["orchard_id"] in mine]
    return rows[offset : offset + limit], len(rows)


def supply_offer(conn: psycopg.Connection, season: int | None = None) -> list[dict[str, Any]]:
    """Public offer by week and grade (P10/P50/P90, committed, expected, offered kg); [] before any forecast."""
    season = season or current_season(conn)
    try:
        return allocation.supply_offer(conn, season)
    except TradingError:
        conn.rollback()
        return []


def unsold_risk(conn: psycopg.Connection, season: int, as_of: date, horizon_weeks: int = 8) -> list[dict[str, Any]]:
    """trading.warnings' unsold-risk weeks (read only: no alerts raised from a page view)."""
    try:
        ws = unsold.evaluate_unsold_risk(
            conn, season=season, as_of=as_of, horizon_weeks=horizon_weeks, raise_alert=False
        )
    except TradingError:
        conn.rollback()
        return []
    return [dataclasses.asdict(w) for w in ws]


# ----------------------------------------------------------------------------- warehouse, trace, statements


def stock(conn: psycopg.Connection, p: Principal) -> list[dict[str, Any]]:
    if p.role not in ("manager", "admin"):
        raise PermissionError("warehouse stock is for managers")
    return warehouse.stock(conn)


def shipments(conn: psycopg.Connection, p: Principal, limit: int = 100) -> list[dict[str, Any]]:
    """Shipments (with trace codes) of a buyer's orders, newest first."""
    if not _has(conn, "shipments"):
        return []
    from psycopg.rows import dict_row

    where, args = ("WHERE o.buyer_id = %s", [p.buyer_id]) if p.role == "buyer" else ("", [])
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


def resolve_trace(conn: psycopg.Connection, code: str) -> dict[str, Any]:
    """Public view of a trace code (grower name masked); NotFound for an unknown code."""
    return trace.resolve_trace(conn, code, public=True)


def statements(
    conn: psycopg.Connection, p: Principal, *, season: int | None = None, grower_id: str | None = None
) -> dict[str, Any]:
    """Grower statements (fen): a grower's own, a manager's cooperative, all (or one grower) for admin.
    Returns ``{season, statements: [...], totals, poverty_alleviated}``."""
    season = season or current_season(conn)
    if p.role == "grower":
        if grower_id not in (None, p.grower_id):
            raise PermissionError("another grower's statement is not yours to see")
        rep = settlement.statements(conn, season=season, grower_id=p.grower_id)
    elif p.role == "manager":
        if grower_id is not None:
            row = conn.execute("SELECT cooperative_id FROM growers WHERE grower_id = %s", (grower_id,)).fetchone()
            if row is not None and row[0] != p.cooperative_id:
                raise PermissionError("that grower is not in your cooperative")
        rep = settlement.statements(conn, season=season, cooperative_id=p.cooperative_id, grower_id=grower_id)
    elif p.role == "admin":
        rep = settlement.statements(conn, season=season, grower_id=grower_id)
    else:
        raise PermissionError("statements are for growers and managers")
    return dataclasses.asdict(rep)


def notifications(
    conn: psycopg.Connection, p: Principal, *, unread_only: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    """Allocation notices (new, changed, dropped) addressed to this buyer or grower, newest first."""
    if p.role == "buyer" and p.buyer_id:
        return allocation.list_notifications(
            conn, recipient_kind="buyer", recipient_id=p.buyer_id, unread_only=unread_only, limit=limit
        )
    if p.role == "grower" and p.grower_id:
        return allocation.list_notifications(
            conn, recipient_kind="grower", recipient_id=p.grower_id, unread_only=unread_only, limit=limit
        )
    return []


def mark_read(conn: psycopg.Connection, p: Principal, notification_id: int) -> None:
    """Mark one of *your* notifications read (NotFound-like PermissionError for anyone else's)."""
    kind, rid = ("buyer", p.buyer_id) if p.role == "buyer" else ("grower", p.grower_id)
    row = conn.execute(
        "SELECT 1 FROM trading_notifications WHERE notification_id = %s AND recipient_kind = %s AND recipient_id = %s",
        (notification_id, kind, rid),
    ).fetchone()
    if row is None:
        raise PermissionError("no such notification of yours")
    allocation.mark_notification_read(conn, notification_id)
