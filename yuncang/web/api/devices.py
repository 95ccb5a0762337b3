"""Device (gateway) health for managers: online rate and silent gateways."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ingest.read import device_health
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
