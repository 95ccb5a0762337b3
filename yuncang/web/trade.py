"""The pages' and the API's calls into ``trading``, scoped by the signed-in user.

Every function takes a connection, the :class:`~yuncang.auth.Principal` and plain values, applies the
access rules of :mod:`yuncang.web.access` and returns JSON-ready dicts (Decimal kg and dates kept as
values; :func:`plain` converts for JSON). Refusals are ``Forbidden``; trading's own errors pass
unchanged; :mod:`yuncang.web.errors` maps both to HTTP.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from ingest.read import season_summary
from registry.read import grower_cooperative
from trading import allocation, orders, settlement, trace, warehouse
from trading import read as trading_read
from trading import warnings as unsold
from trading.errors import Forbidden, TradingError
from yuncang.auth import Principal
from yuncang.web import access

__all__ = ["Forbidden", "TradingError", "plain"]

current_season = trading_read.current_season


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


# ----------------------------------------------------------------------------- orders


def place_order(conn: psycopg.Connection, p: Principal, *, idempotency_key: str, **body: Any) -> dict[str, Any]:
    if not access.may_place_orders(p):
        raise Forbidden("only buyers place orders", "只有采购商可以下单")
    o = orders.place_order(conn, buyer_id=p.buyer_id, idempotency_key=idempotency_key, **body)  # type: ignore[arg-type]
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
    if not access.has_role(p, *access.ORDER_READERS):
        raise Forbidden("orders are for buyers and managers", "订单只对采购商和管理者开放")
    items, total = orders.list_orders(
        conn, buyer_id=access.order_buyer(p), status=status, season=season, limit=limit, offset=offset
    )
    return [dataclasses.asdict(o) for o in items], int(total)


def get_order(conn: psycopg.Connection, p: Principal, order_id: str) -> dict[str, Any]:
    o = dataclasses.asdict(orders.get_order(conn, order_id))
    if not access.may_see_order(p, o["buyer_id"]):
        raise Forbidden("another buyer's order is not yours to see", "这不是您的订单")
    return o


def amend_order(conn: psycopg.Connection, p: Principal, order_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    get_order(conn, p, order_id)
    if not access.may_place_orders(p):
        raise Forbidden("only the buyer amends an order", "只有下单的采购商可以修改订单")
    return dataclasses.asdict(orders.amend_order(conn, order_id, p.buyer_id, **changes))  # type: ignore[arg-type]


def cancel_order(conn: psycopg.Connection, p: Principal, order_id: str) -> dict[str, Any]:
    get_order(conn, p, order_id)
    if not access.may_place_orders(p):
        raise Forbidden("only the buyer cancels an order", "只有下单的采购商可以取消订单")
    return dataclasses.asdict(orders.cancel_order(conn, order_id, p.buyer_id))  # type: ignore[arg-type]


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
    scope = access.allocation_filter(p)
    if scope is None:
        raise Forbidden("allocations are for buyers and managers", "分配结果只对采购商和管理者开放")
    if order_id is not None:
        get_order(conn, p, order_id)
    rows = allocation.get_allocations(conn, order_id=order_id, season=season, limit=100_000,
                                      buyer_id=scope.get("buyer_id"), cooperative_id=scope.get("cooperative_id"))
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
    if not access.has_role(p, "manager", "admin"):
        raise Forbidden("warehouse stock is for managers", "库存只对管理者开放")
    return warehouse.stock(conn)


def shipments(conn: psycopg.Connection, p: Principal, limit: int = 100) -> list[dict[str, Any]]:
    """Shipments (with trace codes) of a buyer's orders (all for managers and admins), newest first."""
    return trading_read.shipments(conn, buyer_id=access.order_buyer(p), limit=limit)


def resolve_trace(conn: psycopg.Connection, code: str) -> dict[str, Any]:
    """Public view of a trace code (grower name masked) with the orchard's season of sensor data;
    NotFound for an unknown code."""
    return trace.resolve_trace(conn, code, public=True, sensor_summary=season_summary)


def statements(
    conn: psycopg.Connection, p: Principal, *, season: int | None = None, grower_id: str | None = None
) -> dict[str, Any]:
    """Grower statements (fen): a grower's own, a manager's cooperative, all (or one grower) for admin.
    Returns ``{season, statements: [...], totals, poverty_alleviated}``."""
    season = season or current_season(conn)
    coop = grower_cooperative(conn, grower_id)[1] if grower_id is not None and p.role == "manager" else None
    scope = access.statement_scope(p, grower_id, coop)
    if scope is None:
        raise Forbidden("those statements are not yours to see", "无权查看这些结算单")
    return dataclasses.asdict(settlement.statements(conn, season=season, **scope))


def notifications(
    conn: psycopg.Connection, p: Principal, *, unread_only: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    """Allocation notices (new, changed, dropped) addressed to this buyer or grower, newest first."""
    who = access.notification_recipient(p)
    if who is None:
        return []
    return allocation.list_notifications(
        conn, recipient_kind=who[0], recipient_id=who[1], unread_only=unread_only, limit=limit
    )


def mark_read(conn: psycopg.Connection, p: Principal, notification_id: int) -> None:
    """Mark one of *your* notifications read (Forbidden for anyone else's)."""
    who = access.notification_recipient(p) or ("", "")
    row = conn.execute(
        "SELECT 1 FROM trading_notifications WHERE notification_id = %s AND recipient_kind = %s AND recipient_id = %s",
        (notification_id, *who),
    ).fetchone()
    if row is None:
        raise Forbidden("no such notification of yours", "没有这条通知")
    allocation.mark_notification_read(conn, notification_id)
