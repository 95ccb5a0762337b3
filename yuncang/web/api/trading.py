"""Trading API: forward orders (idempotent create, list, amend, cancel), allocations, the public supply
offer, warehouse stock, public trace lookup and grower statements, scoped by role.

Domain errors map to their HTTP status (NotFound 404, Conflict 409, Invalid 422, Forbidden 403) with
English and Chinese messages, ``{"detail": {"error", "message", "message_zh", "detail"}}``, in one
handler (:mod:`yuncang.web.errors`). Money is integer fen; kg are numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from registry.grades import GRADE_CODES
from yuncang.web import trade
from yuncang.web.common import AUTH_ERRORS, NOT_FOUND, Message, Page, limit_q, offset_q, reject_nul
from yuncang.web.deps import CurrentUser, check_csrf

router = APIRouter(prefix="/api/v1", tags=["trading"], dependencies=[Depends(reject_nul)])

TRADING_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    **NOT_FOUND,
    409: {"model": Message, "description": "conflicts with the current state"},
}


def _json(obj: Any, status_code: int = 200) -> Response:
    import json

    return Response(
        json.dumps(trade.plain(obj), ensure_ascii=False), status_code=status_code, media_type="application/json"
    )


def _call(request: Request, fn: Callable[..., Any], *args: Any, write: bool = False, **kw: Any) -> Any:
    """Run a trading call in one transaction (committed when ``write``; rolled back on any error, which
    :mod:`yuncang.web.errors` answers)."""
    with request.app.state.yc.pool.connection() as conn:
        out = fn(conn, *args, **kw)
        if write:
            conn.commit()
        return out


class OrderIn(BaseModel):
    grade: str = Field(description=f"one of {', '.join(GRADE_CODES)}", max_length=8)
    quantity_kg: Decimal = Field(gt=0, le=10_000_000, max_digits=12, decimal_places=3, description="kg")
    week_from: date = Field(description="Monday of the first delivery week")
    week_to: date = Field(description="Monday of the last delivery week")
    destination: str = Field(min_length=1, max_length=200)
    price_fen_per_kg: int = Field(gt=0, le=1_000_000, description="price, fen (0.01 yuan) per kg")
    floor_price_fen_per_kg: int | None = Field(
        default=None, ge=0, le=1_000_000, description="guaranteed floor price (保底价), fen per kg"
    )

    @field_validator("destination", "grade")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v


class OrderAmend(BaseModel):
    quantity_kg: Decimal | None = Field(default=None, gt=0, le=10_000_000, max_digits=12, decimal_places=3)
    week_from: date | None = None
    week_to: date | None = None
    destination: str | None = Field(default=None, min_length=1, max_length=200)
    price_fen_per_kg: int | None = Field(default=None, gt=0, le=1_000_000)
    floor_price_fen_per_kg: int | None = Field(default=None, ge=0, le=1_000_000)


@router.post("/orders", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
def place_order(
    request: Request,
    p: CurrentUser,
    body: OrderIn,
    idempotency_key: str = Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=100,
        pattern=r"^[\x21-\x7e]+$",
        description="a client-chosen unique key; a retry with the same key and body returns the same order",
    ),
) -> Any:
    """Place a forward order for your buyer account (buyers only)."""
    check_csrf(request, p)
    if body.grade not in GRADE_CODES:
        raise HTTPException(status_code=422, detail=f"grade must be one of {list(GRADE_CODES)}")
    out = _call(request, trade.place_order, p, idempotency_key=idempotency_key, write=True, **body.model_dump())
    return _json(out, 201)


@router.get("/orders", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
def list_orders(
    request: Request,
    p: CurrentUser,
    status: str | None = Query(default=None, pattern="^(open|allocated|fulfilled|cancelled)$"),
    season: int | None = Query(default=None, ge=2000, le=2100),
    limit: int = limit_q(),
    offset: int = offset_q(),
) -> Any:
    """Orders, newest first: a buyer's own; managers and admins see all."""
    items, total = _call(request, trade.list_orders, p, status=status, season=season, limit=limit, offset=offset)
    return _json({"items": items, "total": total, "limit": limit, "offset": offset})


@router.get("/orders/{order_id}", response_model=dict[str, Any], responses=TRADING_ERRORS)
def get_order(request: Request, order_id: str, p: CurrentUser) -> Any:
    """One order with its latest allocation figures (committed, expected, shortfall, shipped kg)."""
    return _json(_call(request, trade.get_order, p, order_id))


@router.patch("/orders/{order_id}", response_model=dict[str, Any], responses=TRADING_ERRORS)
def amend_order(request: Request, order_id: str, body: OrderAmend, p: CurrentUser) -> Any:
    """Change quantity, weeks, destination or prices of your open order."""
    check_csrf(request, p)
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    if not changes:
        raise HTTPException(status_code=422, detail="nothing to change")
    return _json(_call(request, trade.amend_order, p, order_id, changes, write=True))


@router.post("/orders/{order_id}/cancel", response_model=dict[str, Any], responses=TRADING_ERRORS)
def cancel_order(request: Request, order_id: str, p: CurrentUser) -> Any:
    """Cancel your order (before it is fulfilled)."""
    check_csrf(request, p)
    return _json(_call(request, trade.cancel_order, p, order_id, write=True))


@router.get("/allocations", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
def allocations(
    request: Request,
    p: CurrentUser,
    order_id: str | None = Query(default=None, max_length=64),
    season: int | None = Query(default=None, ge=2000, le=2100),
    limit: int = limit_q(100, 1000),
    offset: int = offset_q(),
) -> Any:
    """Allocation rows (orchard, harvest and delivery week, grade, kg, committed/expected) of the latest
    allocation run: a buyer's own orders, a manager's cooperative orchards, all for admin."""
    items, total = _call(request, trade.allocations, p, order_id=order_id, season=season, limit=limit, offset=offset)
    return _json({"items": items, "total": total, "limit": limit, "offset": offset})


@router.get("/supply/offer", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
def supply_offer(
    request: Request,
    p: CurrentUser,
    season: int | None = Query(default=None, ge=2000, le=2100),
    limit: int = limit_q(200),
    offset: int = offset_q(),
) -> Any:
    """The supply offer by week and grade: forecast P10/P50/P90, committed and expected kg, and
    ``offered_kg`` still available (blacklisted suppliers excluded). Any signed-in user."""
    rows = _call(request, lambda conn: trade.supply_offer(conn, season))
    return _json({"items": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset})


@router.get("/warehouse/stock", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
def stock(
    request: Request, p: CurrentUser, limit: int = limit_q(), offset: int = offset_q()
) -> Any:
    """Cloud-warehouse stock per cold room and grade (kg, lots) with each room's capacity (kg)."""
    rows = _call(request, trade.stock, p)
    return _json({"items": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset})


@router.get(
    "/trace/{code}",
    response_model=dict[str, Any],
    responses={**NOT_FOUND, 422: {"model": Message, "description": "malformed code"}},
)
def trace_code(request: Request, code: str) -> Any:
    """Public, no sign-in: what the trace code on a box says (orchard, township, harvest day, grade,
    lot, cold room, shipment; the grower's name masked)."""
    if not (1 <= len(code) <= 64) or not code.replace("-", "").isalnum() or not code.isascii():
        raise HTTPException(status_code=404, detail=f"no product with trace code {code!r}")
    return _json(_call(request, trade.resolve_trace, code))


@router.get("/statements", response_model=dict[str, Any], responses=TRADING_ERRORS)
def statements(
    request: Request,
    p: CurrentUser,
    season: int | None = Query(default=None, ge=2000, le=2100),
    grower_id: str | None = Query(default=None, max_length=64),
    limit: int = limit_q(),
    offset: int = offset_q(),
) -> Any:
    """Grower statements for a season (management fee, picking fee, dividend, total; fen), a page of
    ``items`` plus ``totals`` and the part reaching poverty-alleviated households (``poverty_alleviated``)
    over everything in scope: a grower's own, a manager's cooperative, all for admin."""
    rep = _call(request, trade.statements, p, season=season, grower_id=grower_id)
    items = rep["statements"]
    return _json(
        {
            "season": rep["season"],
            "items": items[offset : offset + limit],
            "total": len(items),
            "limit": limit,
            "offset": offset,
            "totals": rep["totals"],
            "poverty_alleviated": rep["poverty_alleviated"],
        }
    )


@router.get("/notifications", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
def notifications(
    request: Request,
    p: CurrentUser,
    unread_only: bool = Query(default=False),
    limit: int = limit_q(50, 200),
    offset: int = offset_q(),
) -> Any:
    """Your allocation notices (a buyer's orders, a grower's orchards): what was allocated, changed or
    dropped when forecasts moved, in zh and en, newest first."""
    rows = _call(request, trade.notifications, p, unread_only=unread_only, limit=min(1000, offset + limit))
    return _json({"items": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset})


@router.post("/notifications/{notification_id}/read", status_code=204, responses=TRADING_ERRORS)
def notification_read(request: Request, notification_id: int, p: CurrentUser) -> Response:
    """Mark one of your notices read."""
    check_csrf(request, p)
    if not (1 <= notification_id <= 2**62):
        raise HTTPException(status_code=404, detail="no such notification")
    _call(request, trade.mark_read, p, notification_id, write=True)
    return Response(status_code=204)
