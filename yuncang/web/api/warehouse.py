"""Cloud-warehouse operations over HTTP: receive a graded harvest lot, ship it to an allocated order.

Managers (their cooperative's orchards) and admins only. Stock never goes negative and concurrent
shipments cannot oversell a lot: ``trading.warehouse`` locks the lot's grade row and the order inside
one transaction; a conflict is a 409 with the reason.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from registry.read import orchard_owners
from trading import warehouse
from yuncang.auth import Principal
from yuncang.web.api.trading import TRADING_ERRORS, _call, _json
from yuncang.web.common import reject_nul
from yuncang.web.deps import CurrentUser, check_csrf, require_roles

router = APIRouter(prefix="/api/v1/warehouse", tags=["warehouse"], dependencies=[Depends(reject_nul)])

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class LotIn(BaseModel):
    orchard_id: str = Field(pattern=_ID)
    harvested_on: date
    cold_room_id: str = Field(pattern=_ID)
    kg_by_grade: dict[str, Decimal] = Field(min_length=1, max_length=3,
                                            description="weighed kg per grade code (XL, L, M)")


class ShipmentIn(BaseModel):
    order_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    lot_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    grade: str = Field(pattern=r"^(XL|L|M)$")
    kg: Decimal = Field(gt=0, le=10_000_000, max_digits=12, decimal_places=3, description="kg shipped")


def _own_orchard(request: Request, p: Principal, orchard_id: str) -> None:
    if p.role == "admin":
        return
    with request.app.state.yc.pool.connection() as conn:
        row = orchard_owners(conn, orchard_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no orchard {orchard_id!r}")
    if row[1] != p.cooperative_id:
        raise HTTPException(status_code=403, detail="that orchard belongs to another cooperative")


@router.post("/lots", status_code=201, responses=TRADING_ERRORS)
def receive_lot(request: Request, body: LotIn, p: CurrentUser) -> Any:
    """Receive a weighed and graded harvest lot into a cold room (capacity enforced)."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    _own_orchard(request, p, body.orchard_id)
    lot = _call(request, warehouse.receive_lot, write=True, orchard_id=body.orchard_id,
                harvested_on=body.harvested_on, kg_by_grade=dict(body.kg_by_grade), cold_room_id=body.cold_room_id)
    return _json(lot, 201)


@router.post("/shipments", status_code=201, responses=TRADING_ERRORS)
def ship(request: Request, body: ShipmentIn, p: CurrentUser) -> Any:
    """Ship kg of a grade from a lot to an allocated order; returns the shipment with its trace code."""
    require_roles(p, "manager", "admin")
    check_csrf(request, p)
    if p.role == "manager":
        with request.app.state.yc.pool.connection() as conn:
            row = conn.execute("SELECT o.cooperative_id FROM lots l JOIN orchards o USING (orchard_id) "
                               "WHERE l.lot_id = %s", (body.lot_id,)).fetchone()
        if row is not None and row[0] != p.cooperative_id:
            raise HTTPException(status_code=403, detail="that lot comes from another cooperative's orchard")
    shipment = _call(request, warehouse.fulfil, write=True, order_id=body.order_id, lot_id=body.lot_id,
                     grade=body.grade, kg=body.kg)
    return _json(shipment, 201)
