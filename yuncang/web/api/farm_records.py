"""Farm records: work logs and in-season observations growers enter (table ``farm_records``,
owned by orchard_models, which reads flower density and fruit set into its forecasts)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, field_validator

from orchard_models.read import add_farm_record, list_farm_records
from yuncang.web.common import AUTH_ERRORS, NOT_FOUND, Page, limit_q, offset_q, reject_nul
from yuncang.web.deps import Conn, CurrentUser, check_csrf, require_orchard, require_roles

router = APIRouter(prefix="/api/v1", tags=["farm records"], dependencies=[Depends(reject_nul)])


class RecordIn(BaseModel):
    observed_on: date = Field(description="day of the work or observation (Asia/Shanghai calendar day)")
    kind: Literal["work", "flower_density", "fruit_set", "pest", "note"]
    value: float | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="flower_density: bloom score 0-1 (1 = full bloom everywhere); "
        "fruit_set: fruits per metre of branch; pest: % of trees affected",
    )
    note: str = Field(default="", max_length=2000)

    @field_validator("note")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("note must not contain NUL characters")
        return v

    @field_validator("observed_on")
    @classmethod
    def _not_future(cls, v: date) -> date:
        if v > date.today() or v.year < 2000:
            raise ValueError("observed_on must be a past or present day after 2000")
        return v


class RecordOut(BaseModel):
    record_id: int
    orchard_id: str
    recorded_at: datetime
    observed_on: date
    kind: str
    value: float | None
    note: str | None
    recorded_by: str | None


def validate_value(kind: str, value: float | None) -> None:
    if kind == "flower_density" and value is not None and value > 1:
        raise HTTPException(status_code=422, detail="flower_density is a score from 0 to 1")
    if kind == "pest" and value is not None and value > 100:
        raise HTTPException(status_code=422, detail="pest is a percentage of trees (0-100)")
    if kind in ("flower_density", "fruit_set") and value is None:
        raise HTTPException(status_code=422, detail=f"{kind} needs a value")


@router.get("/orchards/{orchard_id}/records", response_model=Page[RecordOut], responses={**AUTH_ERRORS, **NOT_FOUND})
def records(
    orchard_id: str,
    p: CurrentUser,
    conn: Conn,
    limit: int = limit_q(),
    offset: int = offset_q(),
) -> Any:
    """The orchard's records, newest observation first (empty when none are recorded yet)."""
    require_roles(p, "grower", "manager", "admin")
    require_orchard(conn, p, orchard_id)
    rows, total = list_farm_records(conn, orchard_id, limit=limit, offset=offset)
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.post(
    "/orchards/{orchard_id}/records",
    response_model=RecordOut,
    status_code=201,
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
def add_record(request: Request, orchard_id: str, body: RecordIn, p: CurrentUser, conn: Conn) -> Any:
    """Record work or an observation for your orchard (growers: own orchards; managers: their cooperative's)."""
    require_roles(p, "grower", "manager", "admin")
    check_csrf(request, p)
    validate_value(body.kind, body.value)
    require_orchard(conn, p, orchard_id)
    return add_farm_record(
        conn,
        orchard_id=orchard_id,
        observed_on=body.observed_on,
        kind=body.kind,
        value=body.value,
        note=body.note,
        recorded_by=p.username,
    )
