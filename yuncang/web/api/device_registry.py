"""The device fleet in the registry (:mod:`registry.devices`): list, add, retire, placement history.

Scope: an admin sees every device; a manager the devices in their cooperative's orchards and cold
rooms; a grower the devices in their own orchards (read only). A device outside your scope answers
403, a device that does not exist 404 (domain errors, mapped in :mod:`yuncang.web.errors`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator

from registry import devices as reg
from registry.errors import Forbidden, Invalid, NotFound
from yuncang.auth import Principal
from yuncang.web.common import AUTH_ERRORS, NOT_FOUND, Page, limit_q, offset_q, reject_nul
from yuncang.web.deps import Conn, CurrentUser, check_csrf, require_roles

router = APIRouter(prefix="/api/v1", tags=["devices"], dependencies=[Depends(reject_nul)])
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class Device(BaseModel):
    device_id: str
    kind: str
    model: str
    profile: str | None
    dev_eui: str | None
    access_token_id: str | None
    orchard_id: str | None
    cold_room_id: str | None
    cooperative_id: str | None
    depth_cm: int | None = Field(description="soil probe depth, cm")
    position: str
    installed_at: datetime
    status: str
    retired_at: datetime | None
    replaced_by: str | None
    note: str


class DeviceIn(BaseModel):
    device_id: str = Field(pattern=_ID)
    kind: Literal["gateway", "soil_probe", "weather_station", "air_sensor", "other"] = "gateway"
    model: str = Field(min_length=1, max_length=64)
    profile: str | None = Field(default=None, pattern=_ID)
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{16}$")
    access_token_id: str | None = Field(default=None, pattern=_ID)
    orchard_id: str | None = Field(default=None, pattern=_ID)
    cold_room_id: str | None = Field(default=None, pattern=_ID)
    depth_cm: int | None = Field(default=None, ge=0, le=reg.MAX_DEPTH_CM, description="soil probe depth, cm")
    position: str = Field(default="", max_length=200)
    installed_at: datetime | date | None = None
    note: str = Field(default="", max_length=2000)

    @field_validator("model", "position", "note")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v


class RetireIn(BaseModel):
    at: datetime | None = Field(default=None, description="when it left service (default now)")
    replaced_by: str | None = Field(default=None, pattern=_ID)


class Placement(BaseModel):
    orchard_id: str | None
    cold_room_id: str | None
    valid_from: datetime | None = Field(description="None = since before any record (its first place)")
    valid_to: datetime | None = Field(description="None = still there")


def _scope(p: Principal) -> tuple[str, list[Any]]:
    if p.role == "admin":
        return "TRUE", []
    if p.role == "manager":
        return "coalesce(o.cooperative_id, cr.cooperative_id) = %s", [p.cooperative_id]
    return "o.grower_id = %s", [p.grower_id]


def _visible(conn: Any, p: Principal, device_id: str) -> dict[str, Any]:
    d = reg.get_device(conn, device_id)
    where, params = _scope(p)
    rows, _ = reg.list_devices(conn, where=f"{where} AND d.device_id = %s", params=[*params, device_id],
                               include_retired=True, limit=1)
    if not rows:
        raise Forbidden(f"device {device_id!r} is not yours to see", f"设备 {device_id} 不在您的权限范围内")
    return d


def _place_allowed(conn: Any, p: Principal, orchard_id: str | None, cold_room_id: str | None) -> None:
    if p.role == "admin" or not (orchard_id or cold_room_id):
        return
    if orchard_id:
        row = conn.execute("SELECT cooperative_id FROM orchards WHERE orchard_id = %s", (orchard_id,)).fetchone()
    else:
        row = conn.execute("SELECT cooperative_id FROM cold_rooms WHERE cold_room_id = %s",
                           (cold_room_id,)).fetchone()
    if row is None:
        raise NotFound(f"no orchard or cold room {orchard_id or cold_room_id!r}",
                       f"没有果园或冷库 {orchard_id or cold_room_id}")
    if row[0] != p.cooperative_id:
        raise Forbidden("that place is not your cooperative's", "该地点不属于您的合作社")


@router.get("/devices", response_model=Page[Device], responses=AUTH_ERRORS)
def list_fleet(
    p: CurrentUser,
    conn: Conn,
    orchard_id: str | None = Query(default=None, pattern=_ID),
    cold_room_id: str | None = Query(default=None, pattern=_ID),
    include_retired: bool = False,
    limit: int = limit_q(100),
    offset: int = offset_q(),
) -> Any:
    """Registered devices in your scope, by id: kind, model, identifiers, place, depth, status."""
    require_roles(p, "admin", "manager", "grower")
    where, params = _scope(p)
    rows, total = reg.list_devices(conn, where=where, params=params, orchard_id=orchard_id,
                                   cold_room_id=cold_room_id, include_retired=include_retired,
                                   limit=limit, offset=offset)
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.post("/devices", response_model=Device, status_code=201,
             responses={**AUTH_ERRORS, **NOT_FOUND, 409: {"description": "id, DevEUI or token id taken"}})
def add(request: Request, body: DeviceIn, p: CurrentUser, conn: Conn) -> Any:
    """Register a device in an orchard or cold room of your cooperative (admins: anywhere)."""
    require_roles(p, "admin", "manager")
    check_csrf(request, p)
    values = body.model_dump()
    if values["dev_eui"]:
        values["dev_eui"] = values["dev_eui"].lower()
    if not (values["orchard_id"] or values["cold_room_id"]):
        if p.role != "admin":
            raise Invalid("give the orchard_id or cold_room_id it is installed in", "请填写安装所在的果园或冷库")
        values["status"] = "spare"
    _place_allowed(conn, p, values["orchard_id"], values["cold_room_id"])
    return reg.add_device(conn, **values)


@router.post("/devices/{device_id}/retire", response_model=Device,
             responses={**AUTH_ERRORS, **NOT_FOUND, 409: {"description": "already retired"}})
def retire(request: Request, device_id: str, p: CurrentUser, conn: Conn, body: RetireIn | None = None) -> Any:
    """Take a device out of service: ingest stops accepting it, its broker account is revoked, its
    readings until then stay with the place it was in."""
    require_roles(p, "admin", "manager")
    check_csrf(request, p)
    b = body or RetireIn()
    _visible(conn, p, device_id)
    if b.replaced_by:
        _visible(conn, p, b.replaced_by)
    return reg.retire_device(conn, device_id, at=b.at, replaced_by=b.replaced_by)


@router.get("/devices/{device_id}/history", response_model=list[Placement], responses={**AUTH_ERRORS, **NOT_FOUND})
def placements(device_id: str, p: CurrentUser, conn: Conn) -> Any:
    """Where the device was when, oldest first; its readings belong to the place of their time."""
    require_roles(p, "admin", "manager", "grower")
    _visible(conn, p, device_id)
    return reg.history(conn, device_id)
