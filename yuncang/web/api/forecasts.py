"""Forecasts: an orchard's latest forecast, and forecast supply by week and grade."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from orchard_models import read as models_read
from yuncang.web.common import AUTH_ERRORS, NOT_FOUND, Page, limit_q, offset_q, reject_nul
from yuncang.web.deps import Conn, CurrentUser, require_orchard, require_roles

router = APIRouter(prefix="/api/v1", tags=["forecasts"], dependencies=[Depends(reject_nul)])


class WeekGrade(BaseModel):
    week_start: date
    grade: str
    p10_kg: float
    p50_kg: float
    p90_kg: float


class OrchardForecast(BaseModel):
    run_id: Any
    orchard_id: str
    bloom_date: date | None
    harvest_start: date | None
    harvest_end: date | None
    total_p10_kg: float | None
    total_p50_kg: float | None
    total_p90_kg: float | None
    risk: dict[str, Any] | None
    weeks: list[WeekGrade]


class SupplyRow(WeekGrade):
    orchards: int


@router.get(
    "/orchards/{orchard_id}/forecast",
    response_model=OrchardForecast,
    responses={**AUTH_ERRORS, 404: {"description": "no such orchard, or no forecast for it yet"}},
)
def orchard_forecast(orchard_id: str, p: CurrentUser, conn: Conn) -> Any:
    """Latest forecast: bloom date, harvest window, total yield P10/P50/P90 (kg), risk indices, and kg by
    harvest week and grade with their P10-P90 band."""
    require_roles(p, "grower", "manager", "admin")
    require_orchard(conn, p, orchard_id)
    f = models_read.orchard_forecast(conn, orchard_id)
    if f is None:
        raise HTTPException(status_code=404, detail=f"no forecast for {orchard_id} yet")
    return f


@router.get("/forecasts/supply", response_model=Page[SupplyRow], responses={**AUTH_ERRORS, **NOT_FOUND})
def supply(
    p: CurrentUser,
    conn: Conn,
    cooperative_id: str | None = Query(default=None, max_length=64),
    limit: int = limit_q(200),
    offset: int = offset_q(),
) -> Any:
    """Forecast supply (kg) by harvest week and grade, all orchards or one cooperative's. The P10/P90
    here are sums of orchard bands: a deliberately wide envelope (orchard errors partly cancel)."""
    if cooperative_id and p.role == "manager" and cooperative_id != p.cooperative_id:
        raise HTTPException(status_code=403, detail="another cooperative's supply is not yours to see")
    require_roles(p, "buyer", "manager", "admin", "grower")
    rows = models_read.forecast_supply(conn, cooperative_id=cooperative_id)
    return {"items": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset}
