"""The emergency channel for a glut over HTTP (``/api/v1/glut``): targeted-procurement offers opened from
unsold-risk warnings, one-action acceptance by institutional buyers, partner pledges and purchases.

* managers and admins open and close offers, record pledges and read every partner's figures;
* institutional buyers (state e-shops, budget units, trade unions: the emergency channel) accept a
  quantity; the acceptance becomes a forward order, the season is re-allocated at once and the answer
  carries the order's committed kg and the warning as it stands now;
* any signed-in user lists the open offers.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from trading import glut
from yuncang.web.api.trading import TRADING_ERRORS, _call, _json
from yuncang.web.common import reject_nul
from yuncang.web.deps import CurrentUser, check_csrf, require_roles

router = APIRouter(prefix="/api/v1/glut", tags=["glut"], dependencies=[Depends(reject_nul)])


class OfferIn(BaseModel):
    season: int = Field(ge=2000, le=2100)
    week_start: date = Field(description="Monday of the harvest week the warning is for")
    grade: Literal["XL", "L", "M"]
    floor_price_fen_per_kg: int = Field(gt=0, le=1_000_000, description="floor price, fen per kg")
    kg: Decimal | None = Field(default=None, gt=0, le=10_000_000, max_digits=12, decimal_places=3,
                               description="kg offered; default what the warning suggests")
    note: str = Field(default="", max_length=500)


class AcceptIn(BaseModel):
    kg: Decimal = Field(gt=0, le=10_000_000, max_digits=12, decimal_places=3)
    destination: str | None = Field(default=None, max_length=200)


class PledgeIn(BaseModel):
    buyer_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    season: int = Field(ge=2000, le=2100)
    pledged_fen: int | None = Field(default=None, ge=0, le=10**13)
    pledged_kg: Decimal | None = Field(default=None, gt=0, le=10_000_000, max_digits=12, decimal_places=3)
    note: str = Field(default="", max_length=500)


def _offer_id(v: int) -> int:
    if not 1 <= v <= 2**62:
        raise HTTPException(status_code=404, detail="no such offer")
    return v


@router.get("/offers", response_model=dict[str, Any], responses=TRADING_ERRORS)
def offers(request: Request, p: CurrentUser, season: int | None = Query(default=None, ge=2000, le=2100),
           status: Literal["open", "closed"] | None = "open") -> Any:
    """Glut offers with kg offered, accepted and remaining."""
    rows = _call(request, glut.list_offers, season=season, status=status)
    return _json({"items": rows, "total": len(rows)})


@router.post("/offers", status_code=201, response_model=dict[str, Any], responses=TRADING_ERRORS)
def open_offer(request: Request, p: CurrentUser, body: OfferIn) -> Any:
    """Open a warning's uncovered kg to the emergency channel at a floor price (managers, admins);
    409 when no warning fires for that week and grade."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    return _json(_call(request, glut.open_offer, write=True, opened_by=p.username, as_of=body.week_start,
                       **body.model_dump()), 201)


@router.post("/offers/{glut_offer_id}/close", response_model=dict[str, Any], responses=TRADING_ERRORS)
def close_offer(request: Request, p: CurrentUser, glut_offer_id: int) -> Any:
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    return _json(_call(request, glut.close_offer, _offer_id(glut_offer_id), write=True))


@router.post("/offers/{glut_offer_id}/accept", status_code=201, response_model=dict[str, Any],
             responses=TRADING_ERRORS)
def accept(request: Request, p: CurrentUser, glut_offer_id: int, body: AcceptIn) -> Any:
    """Take a quantity of an offer (institutional buyers): a forward order at the floor price, allocated at
    once; the answer has the order, its committed kg and the warning now (null once resolved)."""
    check_csrf(request, p)
    if p.role != "buyer" or not p.buyer_id:
        raise HTTPException(status_code=403, detail="only buyers accept offers")
    oid = _offer_id(glut_offer_id)
    acc = _call(request, glut.accept_offer, oid, write=True, buyer_id=p.buyer_id, kg=body.kg, actor=p.username,
                destination=body.destination)
    try:
        plan = _call(request, glut.plan_after_acceptance, oid, write=True)
    except HTTPException as exc:      # the acceptance stands; the plan follows with the next allocation
        plan = {"error": exc.detail}
    return _json({"acceptance": acc, "plan": plan}, 201)


@router.get("/partners", response_model=dict[str, Any], responses=TRADING_ERRORS)
def partners(request: Request, p: CurrentUser, season: int = Query(ge=2000, le=2100)) -> Any:
    """Per partner organisation: the season's glut acceptances, orders and spot purchases against its
    pledge (managers and admins see all, a buyer only its own row)."""
    rows = _call(request, glut.partner_report, season)
    if p.role == "buyer":
        rows = [r for r in rows if r["buyer_id"] == p.buyer_id]
    elif p.role not in ("manager", "admin"):
        raise HTTPException(status_code=403, detail="buyers, managers and admins only")
    return _json({"items": rows, "total": len(rows)})


@router.put("/pledges", response_model=dict[str, Any], responses=TRADING_ERRORS)
def pledge(request: Request, p: CurrentUser, body: PledgeIn) -> Any:
    """Record a partner's pledge for a season (managers, admins)."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    return _json(_call(request, glut.set_pledge, write=True, **body.model_dump()))
