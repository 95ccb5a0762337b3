"""Device (gateway) health for managers: online rate and silent gateways."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from ingest import unmapped
from ingest.read import device_health
from registry.read import device_profile_in_scope
from yuncang.web.common import AUTH_ERRORS, limit_q, offset_q, reject_nul
from yuncang.web.deps import Conn, CurrentUser, Scope, require_roles

router = APIRouter(prefix="/api/v1", tags=["devices"], dependencies=[Depends(reject_nul)])


class DeviceRow(BaseModel):
    device_id: str
    orchard_id: str
    orchard_name: str
    cooperative_id: str | None
    last_reading_at: datetime | None
    last_seen_at: datetime | None
    battery_v: float | None
    rssi_dbm: float | None
    rejects: int
    silent: bool
    #: heard recently, but none of its values were stored (e.g. its profile maps none of its keys)
    stores_nothing: bool = False
    #: distinct payload keys its profile neither maps nor ignores (GET /devices/{device_id}/unmapped-keys)
    unmapped_keys: int = 0


class DeviceHealth(BaseModel):
    reference_time: datetime | None
    devices: int
    online: int | None
    online_rate: float | None
    source: str | None
    items: list[DeviceRow]
    total: int
    limit: int
    offset: int


@router.get("/devices/health", response_model=DeviceHealth, responses=AUTH_ERRORS)
def health(
    p: CurrentUser,
    scope: Scope,
    conn: Conn,
    silent_after_h: float = Query(default=2, gt=0, le=24 * 30, description="a gateway is silent after this many hours"),
    only_silent: bool = Query(default=False),
    limit: int = limit_q(100),
    offset: int = offset_q(),
) -> Any:
    """Gateways in your scope with their newest reading time, battery (V) and signal (dBm);
    ``online_rate`` (0-1) is the share heard within
    ``silent_after_h`` hours of the newest data anywhere. Silent gateways are listed first."""
    require_roles(p, "manager", "admin", "grower")
    out = device_health(
        conn, scope=scope, silent_after=timedelta(hours=silent_after_h), limit=limit, offset=offset,
        only_silent=only_silent,
    )
    return {**out, "limit": limit, "offset": offset}


class UnmappedKey(BaseModel):
    key: str
    count: int
    sample_value: str | None
    first_seen_at: datetime
    last_seen_at: datetime


class UnmappedKeys(BaseModel):
    device_id: str
    profile: str | None
    items: list[UnmappedKey]


@router.get("/devices/{device_id}/unmapped-keys", response_model=UnmappedKeys,
            responses={**AUTH_ERRORS, 404: {"description": "no such device in your scope"}})
def unmapped_keys(device_id: str, p: CurrentUser, scope: Scope, conn: Conn) -> Any:
    """Payload keys of the device that its profile neither maps to a metric nor ignores (nothing is
    dropped silently): key, how often it came, a sample value, first and last seen (ingest clock)."""
    require_roles(p, "manager", "admin", "grower")
    found = device_profile_in_scope(conn, device_id, scope)
    if found is None:
        raise HTTPException(status_code=404, detail=f"device {device_id!r} not found in your scope")
    return {"device_id": device_id, "profile": found[0], "items": unmapped.unmapped_keys(conn, device_id)}
