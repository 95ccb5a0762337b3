"""Alerts for the signed-in user's orchards or cooperative."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from registry.read import list_alerts
from yuncang.web.common import AUTH_ERRORS, NOT_FOUND, Page, fast_json, limit_q, offset_q, reject_nul
from yuncang.web.deps import Conn, CurrentUser, Scope, require_orchard, require_roles

router = APIRouter(prefix="/api/v1", tags=["alerts"], dependencies=[Depends(reject_nul)])


class AlertOut(BaseModel):
    alert_id: int
    kind: str
    severity: str
    orchard_id: str | None
    device_id: str | None
    cooperative_id: str | None
    title_zh: str
    title_en: str
    advice_zh: str
    advice_en: str
    detail: dict[str, Any]
    raised_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


@router.get("/alerts", response_model=None, responses={200: {"model": Page[AlertOut]}, **AUTH_ERRORS, **NOT_FOUND})
def alerts(
    p: CurrentUser,
    scope: Scope,
    conn: Conn,
    orchard_id: str | None = Query(default=None, max_length=64),
    kind: str | None = Query(default=None, max_length=64),
    include_resolved: bool = Query(default=False),
    limit: int = limit_q(),
    offset: int = offset_q(),
) -> Any:
    """Alerts, newest first: a grower's orchards, a manager's cooperative, everything for admin."""
    require_roles(p, "grower", "manager", "admin")
    if orchard_id:
        require_orchard(conn, p, orchard_id)
    rows, total = list_alerts(
        conn, scope=scope, orchard_id=orchard_id, open_only=not include_resolved, kind=kind, limit=limit, offset=offset
    )
    return fast_json({"items": rows, "total": total, "limit": limit, "offset": offset})
