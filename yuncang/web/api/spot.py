"""Spot trading over HTTP (``/api/v1/spot``): the stock offer, list prices, online reservations
(hold -> confirm -> pickup/shipment), buyer offers, hall-counter sales, losses, hall-staff grants.

Who may do what:

* any signed-in user: read the stock offer and the day's list prices;
* buyers: reserve, confirm and cancel their own holds, make offers, read their own sales;
* hall staff (an account a manager granted ``hall_staff`` at a site), managers and admins: record
  counter sales at the site and hand over collected/shipped sales;
* managers and admins: set list prices, decide offers, record losses, grant hall staff.

Every write carries the client's ``client_request_id``: a retry returns the first result. Domain
errors keep their status (409 conflict, 404, 422, 403) with bilingual messages (``trading.errors``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from trading import spot
from yuncang.auth import Principal
from yuncang.web.api.trading import TRADING_ERRORS, _call, _json
from yuncang.web.common import reject_nul
from yuncang.web.deps import CurrentUser, check_csrf, require_roles

router = APIRouter(prefix="/api/v1/spot", tags=["spot"], dependencies=[Depends(reject_nul)])

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_RID = Field(min_length=8, max_length=100, pattern=r"^[\x21-\x7e]+$",
             description="client-chosen unique id; a retry with the same id and body returns the first result")


class LineIn(BaseModel):
    lot_id: str = Field(pattern=_ID)
    grade: Literal["XL", "L", "M"]
    kg: Decimal = Field(gt=0, le=1_000_000, max_digits=10, decimal_places=3, description="kg")


class ReserveIn(BaseModel):
    client_request_id: str = _RID
    lines: list[LineIn] = Field(min_length=1, max_length=spot.MAX_LINES)
    fulfilment: Literal["pickup", "shipment"] = "pickup"
    destination: str | None = Field(default=None, max_length=200)
    hold_minutes: int = Field(default=spot.DEFAULT_HOLD_MINUTES, ge=1, le=spot.MAX_HOLD_MINUTES)


class HallSaleIn(BaseModel):
    warehouse_id: str = Field(pattern=_ID)
    client_request_id: str = _RID
    lines: list[LineIn] = Field(min_length=1, max_length=spot.MAX_LINES)
    payment_method: Literal["cash", "transfer"]
    buyer_id: str | None = Field(default=None, pattern=_ID, description="a registered buyer, or none for walk-ins")
    walk_in_name: str | None = Field(default=None, max_length=100)


class PriceIn(BaseModel):
    warehouse_id: str = Field(pattern=_ID)
    grade: Literal["XL", "L", "M"]
    price_fen_per_kg: int = Field(gt=0, le=1_000_000, description="list price, fen per kg")
    price_date: date | None = Field(default=None, description="Asia/Shanghai day; default today")


class OfferIn(BaseModel):
    client_request_id: str = _RID
    lot_id: str = Field(pattern=_ID)
    grade: Literal["XL", "L", "M"]
    kg: Decimal = Field(gt=0, le=1_000_000, max_digits=10, decimal_places=3)
    price_fen_per_kg: int = Field(gt=0, le=1_000_000)
    note: str = Field(default="", max_length=500)


class DecisionIn(BaseModel):
    accept: bool
    hold_minutes: int = Field(default=24 * 60, ge=1, le=spot.MAX_HOLD_MINUTES)


class LossIn(BaseModel):
    lot_id: str = Field(pattern=_ID)
    grade: Literal["XL", "L", "M"]
    kg: Decimal = Field(gt=0, le=1_000_000, max_digits=10, decimal_places=3)
    reason: Literal["shrink", "decay", "damage", "other"]
    note: str = Field(default="", max_length=500)


class StaffIn(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{2,64}$")
    warehouse_id: str = Field(pattern=_ID)


def _buyer(p: Principal) -> str:
    if p.role != "buyer" or not p.buyer_id:
        raise HTTPException(status_code=403, detail="only buyers do this")
    return p.buyer_id


def _hall(request: Request, p: Principal, warehouse_id: str) -> None:
    """403 unless ``p`` may work the counter at the site (manager, admin, or granted hall staff)."""
    if p.role in ("manager", "admin"):
        return
    if not _call(request, spot.is_hall_staff, p.username, warehouse_id):
        raise HTTPException(status_code=403, detail=f"you are not hall staff at {warehouse_id}")


@router.get("/stock", response_model=dict[str, Any], responses=TRADING_ERRORS)
def stock_offer(request: Request, p: CurrentUser, warehouse_id: str | None = Query(default=None, pattern=_ID),
                grade: Literal["XL", "L", "M"] | None = None) -> Any:
    """Lots with available kg: site, lot, grade, harvest date, township, certifications, cold-chain state
    and today's list price (fen/kg; null = not priced today)."""
    rows = _call(request, spot.stock_offer, warehouse_id=warehouse_id, grade=grade)
    return _json({"items": rows, "total": len(rows)})


@router.get("/prices", response_model=dict[str, Any], responses=TRADING_ERRORS)
def prices(request: Request, p: CurrentUser, price_date: date | None = None) -> Any:
    """List prices of a day (default today, Asia/Shanghai) per site and grade, fen per kg."""
    rows = _call(request, spot.list_prices, price_date=price_date)
    return _json({"items": rows, "total": len(rows)})


@router.put("/prices", response_model=dict[str, Any], responses=TRADING_ERRORS)
def set_price(request: Request, p: CurrentUser, body: PriceIn) -> Any:
    """Set a site's list price for a grade and day (managers, admins)."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    return _json(_call(request, spot.set_list_price, write=True, set_by=p.username, **body.model_dump()))


@router.post("/reservations", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
def reserve(request: Request, p: CurrentUser, body: ReserveIn) -> Any:
    """Hold kg of one site's lots at today's list prices (buyers); confirm before ``expires_at``."""
    check_csrf(request, p)
    buyer = _buyer(p)
    sale = _call(request, spot.reserve, write=True, buyer_id=buyer, actor=p.username,
                 client_request_id=body.client_request_id, lines=[ln.model_dump() for ln in body.lines],
                 fulfilment=body.fulfilment, destination=body.destination, hold_minutes=body.hold_minutes)
    return _json(sale, 201)


@router.post("/sales/{sale_id}/confirm", response_model=dict[str, Any], responses=TRADING_ERRORS)
def confirm(request: Request, p: CurrentUser, sale_id: str) -> Any:
    """Make your hold a firm sale (409 when it has expired: its kg went back to stock)."""
    check_csrf(request, p)
    return _json(_call(request, spot.confirm, sale_id, write=True, buyer_id=_buyer(p)))


@router.post("/sales/{sale_id}/cancel", response_model=dict[str, Any], responses=TRADING_ERRORS)
def cancel(request: Request, p: CurrentUser, sale_id: str) -> Any:
    """Cancel a hold (its buyer) or a confirmed sale not yet collected (a manager, an admin)."""
    check_csrf(request, p)
    buyer = None if p.role in ("manager", "admin") else _buyer(p)
    return _json(_call(request, spot.cancel, sale_id, write=True, buyer_id=buyer))


@router.post("/sales/{sale_id}/deliver", response_model=dict[str, Any], responses=TRADING_ERRORS)
def deliver(request: Request, p: CurrentUser, sale_id: str) -> Any:
    """Hand over a confirmed sale (picked up or shipped from its site): trace codes are issued."""
    check_csrf(request, p)
    sale = _call(request, spot.get_sale, sale_id)
    _hall(request, p, sale.warehouse_id)
    return _json(_call(request, spot.deliver, sale_id, write=True))


@router.get("/sales/{sale_id}", response_model=dict[str, Any], responses=TRADING_ERRORS)
def get_sale(request: Request, p: CurrentUser, sale_id: str) -> Any:
    """One sale with its lines: its buyer, the site's hall staff, managers and admins."""
    sale = _call(request, spot.get_sale, sale_id)
    if p.role == "buyer":
        if sale.buyer_id != p.buyer_id:
            raise HTTPException(status_code=403, detail="that sale belongs to another buyer")
    else:
        _hall(request, p, sale.warehouse_id)
    return _json(sale)


@router.get("/sales", response_model=dict[str, Any], responses=TRADING_ERRORS)
def list_sales(request: Request, p: CurrentUser, warehouse_id: str | None = Query(default=None, pattern=_ID),
               status: Literal["held", "confirmed", "delivered", "expired", "cancelled"] | None = None,
               limit: int = Query(default=100, ge=1, le=500)) -> Any:
    """Sales, newest first: a buyer's own; hall staff those of their site (``warehouse_id`` required);
    managers and admins all."""
    buyer = None
    if p.role == "buyer":
        buyer = p.buyer_id
    elif p.role not in ("manager", "admin"):
        if warehouse_id is None:
            raise HTTPException(status_code=422, detail="warehouse_id is required for hall staff")
        _hall(request, p, warehouse_id)
    rows = _call(request, spot.list_sales, buyer_id=buyer, warehouse_id=warehouse_id, status=status, limit=limit)
    return _json({"items": rows, "total": len(rows)})


@router.post("/hall-sales", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
def hall_sale(request: Request, p: CurrentUser, body: HallSaleIn) -> Any:
    """Record a counter sale at a site (hall staff, managers, admins): paid and taken at once."""
    check_csrf(request, p)
    _hall(request, p, body.warehouse_id)
    sale = _call(request, spot.hall_sale, write=True, actor=p.username, warehouse_id=body.warehouse_id,
                 client_request_id=body.client_request_id, lines=[ln.model_dump() for ln in body.lines],
                 payment_method=body.payment_method, buyer_id=body.buyer_id, walk_in_name=body.walk_in_name)
    return _json(sale, 201)


@router.post("/offers", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
def make_offer(request: Request, p: CurrentUser, body: OfferIn) -> Any:
    """Offer a price for kg of a lot (buyers); the manager accepts or declines."""
    check_csrf(request, p)
    return _json(_call(request, spot.make_offer, write=True, buyer_id=_buyer(p), **body.model_dump()), 201)


@router.get("/offers", response_model=dict[str, Any], responses=TRADING_ERRORS)
def list_offers(request: Request, p: CurrentUser,
                status: Literal["pending", "accepted", "declined"] | None = "pending") -> Any:
    """Offers: a buyer's own; managers and admins all."""
    buyer = p.buyer_id if p.role == "buyer" else None
    if p.role not in ("buyer", "manager", "admin"):
        raise HTTPException(status_code=403, detail="buyers, managers and admins only")
    rows = _call(request, spot.list_offers, status=status, buyer_id=buyer)
    return _json({"items": rows, "total": len(rows)})


@router.post("/offers/{offer_id}/decision", response_model=dict[str, Any], responses=TRADING_ERRORS)
def decide(request: Request, p: CurrentUser, offer_id: int, body: DecisionIn) -> Any:
    """Accept (a held sale at the offered price) or decline a buyer's offer (managers, admins)."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    if not 1 <= offer_id <= 2**62:
        raise HTTPException(status_code=404, detail="no such offer")
    return _json(_call(request, spot.decide_offer, offer_id, write=True, accept=body.accept, actor=p.username,
                       hold_minutes=body.hold_minutes))


@router.post("/losses", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
def record_loss(request: Request, p: CurrentUser, body: LossIn) -> Any:
    """Record shrink or loss of a lot's kg (managers, admins); settlement deducts it from the grower."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    return _json(_call(request, spot.record_loss, write=True, recorded_by=p.username, **body.model_dump()), 201)


@router.post("/hall-staff", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
def grant_hall_staff(request: Request, p: CurrentUser, body: StaffIn) -> Any:
    """Let an account record counter sales at a site (managers, admins)."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    return _json(_call(request, spot.grant_hall_staff, write=True, granted_by=p.username, **body.model_dump()), 201)
