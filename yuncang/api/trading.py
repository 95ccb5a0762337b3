"""Trading API: forward orders (idempotent create, list, amend, cancel), allocations, supply offer,
warehouse stock, public trace lookup and grower statements.

Routes appear only for the trading modules that are installed (``trading.orders``, ...), so the
OpenAPI document lists what actually works. Trading errors map to 404/409/422/403 with the
trading package's English and Chinese messages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field, field_validator

from dashboard import trade
from dashboard.access import Principal, check_csrf, require_roles, require_user
from registry.grades import GRADE_CODES
from yuncang.api._common import AUTH_ERRORS, NOT_FOUND, Message, Page, limit_q, offset_q, reject_nul

router = APIRouter(prefix="/api/v1", tags=["trading"], dependencies=[Depends(reject_nul)])

TRADING_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    **NOT_FOUND,
    409: {"model": Message, "description": "conflicts with the current state"},
}


def _run(fn: Callable[..., Any], conn: Any, **kw: Any) -> Any:
    err = trade.error_class()
    try:
        out = trade.call(fn, conn, **kw)
        conn.commit()
        return out
    except err as exc:
        conn.rollback()
        raise HTTPException(status_code=int(getattr(exc, "http_status", 400)), detail=exc.to_dict()) from None  # type: ignore[attr-defined]


def _season(season: int | None) -> int:
    return season if season is not None else date.today().year


def _page(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    return {"items": items[offset : offset + limit], "total": len(items), "limit": limit, "offset": offset}


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


def _order_owner_check(p: Principal, order: dict[str, Any]) -> None:
    if p.role == "buyer" and order.get("buyer_id") != p.buyer_id:
        raise HTTPException(status_code=403, detail="another buyer's order is not yours to see")


if trade.available("orders"):

    @router.post("/orders", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
    def place_order(
        request: Request,
        body: OrderIn,
        idempotency_key: str = Header(
            alias="Idempotency-Key",
            min_length=8,
            max_length=100,
            description="a client-chosen unique key; retries with the same key and body return the same order",
        ),
        p: Principal = Depends(require_user),
    ) -> Any:
        """Place a forward order for your buyer account (buyers only)."""
        require_roles(p, "buyer")
        check_csrf(request, p)
        if body.grade not in GRADE_CODES:
            raise HTTPException(status_code=422, detail=f"grade must be one of {list(GRADE_CODES)}")
        fn = trade.function("orders", "place_order")
        assert fn is not None
        with request.app.state.yc.pool.connection() as conn:
            return trade.plain(
                _run(fn, conn, buyer_id=p.buyer_id, idempotency_key=idempotency_key, **body.model_dump())
            )

    @router.get("/orders", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
    def list_orders(
        request: Request,
        status: str | None = Query(default=None, max_length=32),
        season: int | None = Query(default=None, ge=2000, le=2100),
        limit: int = limit_q(),
        offset: int = offset_q(),
        p: Principal = Depends(require_user),
    ) -> Any:
        """Orders: a buyer's own; managers and admins see all."""
        require_roles(p, "buyer", "manager", "admin")
        fn = trade.function("orders", "list_orders")
        assert fn is not None
        with request.app.state.yc.pool.connection() as conn:
            items = trade.rows(
                _run(fn, conn, buyer_id=p.buyer_id if p.role == "buyer" else None, status=status, season=season)
            )
        if p.role == "buyer":
            items = [o for o in items if o.get("buyer_id") == p.buyer_id]
        return _page(items, limit, offset)

    @router.get("/orders/{order_id}", response_model=dict[str, Any], responses=TRADING_ERRORS)
    def get_order(request: Request, order_id: str, p: Principal = Depends(require_user)) -> Any:
        require_roles(p, "buyer", "manager", "admin")
        fn = trade.function("orders", "get_order")
        assert fn is not None
        with request.app.state.yc.pool.connection() as conn:
            order = trade.plain(_run(fn, conn, order_id=order_id))
        _order_owner_check(p, order)
        return order

    @router.patch("/orders/{order_id}", response_model=dict[str, Any], responses=TRADING_ERRORS)
    def amend_order(request: Request, order_id: str, body: OrderAmend, p: Principal = Depends(require_user)) -> Any:
        """Change quantity, weeks, destination or prices of your order while it can still change."""
        require_roles(p, "buyer")
        check_csrf(request, p)
        get_fn, fn = trade.function("orders", "get_order"), trade.function("orders", "amend_order")
        assert get_fn is not None and fn is not None
        with request.app.state.yc.pool.connection() as conn:
            _order_owner_check(p, trade.plain(_run(get_fn, conn, order_id=order_id)))
            changes = {k: v for k, v in body.model_dump().items() if v is not None}
            if not changes:
                raise HTTPException(status_code=422, detail="nothing to change")
            return trade.plain(_run(fn, conn, order_id=order_id, buyer_id=p.buyer_id, **changes))

    @router.post("/orders/{order_id}/cancel", response_model=dict[str, Any], responses=TRADING_ERRORS)
    def cancel_order(request: Request, order_id: str, p: Principal = Depends(require_user)) -> Any:
        require_roles(p, "buyer")
        check_csrf(request, p)
        get_fn, fn = trade.function("orders", "get_order"), trade.function("orders", "cancel_order")
        assert get_fn is not None and fn is not None
        with request.app.state.yc.pool.connection() as conn:
            _order_owner_check(p, trade.plain(_run(get_fn, conn, order_id=order_id)))
            return trade.plain(_run(fn, conn, order_id=order_id, buyer_id=p.buyer_id))


if trade.available("allocation"):

    @router.get("/allocations", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
    def allocations(
        request: Request,
        order_id: str | None = Query(default=None, max_length=64),
        limit: int = limit_q(),
        offset: int = offset_q(),
        p: Principal = Depends(require_user),
    ) -> Any:
        """Allocations of forecast supply to orders: a buyer's own orders; all for managers/admins."""
        require_roles(p, "buyer", "manager", "admin")
        fn = trade.function("allocation", "get_allocations")
        if fn is None:
            raise HTTPException(status_code=404, detail="allocations are not available")
        with request.app.state.yc.pool.connection() as conn:
            items = trade.rows(_run(fn, conn, buyer_id=p.buyer_id if p.role == "buyer" else None, order_id=order_id))
        if p.role == "buyer":
            items = [a for a in items if a.get("buyer_id") in (None, p.buyer_id)]
        return _page(items, limit, offset)

    @router.get("/supply/offer", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
    def supply_offer(
        request: Request,
        season: int | None = Query(default=None, ge=2000, le=2100),
        limit: int = limit_q(200),
        offset: int = offset_q(),
        p: Principal = Depends(require_user),
    ) -> Any:
        """The public supply offer by week and grade: forecast supply not yet committed to orders (kg)."""
        fn = trade.function("allocation", "supply_offer")
        if fn is None:
            raise HTTPException(status_code=404, detail="the supply offer is not available")
        with request.app.state.yc.pool.connection() as conn:
            items = trade.rows(_run(fn, conn, season=_season(season)))
        return _page(items, limit, offset)


if trade.available("warehouse"):

    @router.get("/warehouse/stock", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
    def stock(
        request: Request, limit: int = limit_q(), offset: int = offset_q(), p: Principal = Depends(require_user)
    ) -> Any:
        """Cloud-warehouse stock (kg by grade and room) with capacity, for managers and admins."""
        require_roles(p, "manager", "admin")
        fn = trade.function("warehouse", "stock")
        if fn is None:
            raise HTTPException(status_code=404, detail="warehouse stock is not available")
        with request.app.state.yc.pool.connection() as conn:
            items = trade.rows(_run(fn, conn))
        return _page(items, limit, offset)


if trade.available("trace"):

    @router.get(
        "/trace/{code}",
        response_model=dict[str, Any],
        responses={**NOT_FOUND, 422: {"model": Message, "description": "malformed code"}},
    )
    def trace(request: Request, code: str) -> Any:
        """Public: what a trace code on a box says: orchard, township, harvest, grade, lot and shipment."""
        if not (1 <= len(code) <= 64) or not code.replace("-", "").isalnum():
            raise HTTPException(status_code=404, detail=f"no product with trace code {code!r}")
        fn = trade.function("trace", "resolve_trace")
        assert fn is not None
        with request.app.state.yc.pool.connection() as conn:
            out = _run(fn, conn, code=code)
        if out is None:
            raise HTTPException(status_code=404, detail=f"no product with trace code {code!r}")
        return trade.plain(out)


if trade.available("settlement"):

    @router.get("/statements", response_model=Page[dict[str, Any]], responses=TRADING_ERRORS)
    def statements(
        request: Request,
        season: int | None = Query(default=None, ge=2000, le=2100),
        grower_id: str | None = Query(default=None, max_length=64),
        limit: int = limit_q(),
        offset: int = offset_q(),
        p: Principal = Depends(require_user),
    ) -> Any:
        """Grower statements (fees, picking pay, dividends; money in fen): a grower's own, a manager's
        cooperative, all for admin."""
        require_roles(p, "grower", "manager", "admin")
        if p.role == "grower":
            if grower_id not in (None, p.grower_id):
                raise HTTPException(status_code=403, detail="another grower's statement is not yours to see")
            grower_id = p.grower_id
        fn = trade.function("settlement", "statements")
        assert fn is not None
        with request.app.state.yc.pool.connection() as conn:
            items = trade.rows(
                _run(
                    fn,
                    conn,
                    season=_season(season),
                    grower_id=grower_id,
                    cooperative_id=p.cooperative_id if p.role == "manager" else None,
                )
            )
        if p.role == "grower":
            items = [s for s in items if s.get("grower_id") in (None, p.grower_id)]
        if p.role == "manager":
            items = [s for s in items if s.get("cooperative_id") in (None, p.cooperative_id)]
        return _page(items, limit, offset)
