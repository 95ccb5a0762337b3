"""Scheduled job runs (start, end, outcome, error) for cooperative managers and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from yuncang.scheduler import recent_job_runs
from yuncang.web.common import AUTH_ERRORS, Page, limit_q, offset_q, reject_nul
from yuncang.web.deps import Conn, CurrentUser, require_roles

router = APIRouter(prefix="/api/v1", tags=["operations"], dependencies=[Depends(reject_nul)])


class JobRun(BaseModel):
    run_id: int
    job: str
    scheduled_for: datetime | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str  #: running | ok | error
    error: str | None
    detail: dict[str, Any]
    host: str
    pid: int


@router.get("/jobs/runs", response_model=Page[JobRun], responses=AUTH_ERRORS)
def job_runs(
    p: CurrentUser,
    conn: Conn,
    job: str | None = Query(default=None, max_length=64, pattern=r"^[a-z_]+$"),
    limit: int = limit_q(50),
    offset: int = offset_q(),
) -> Any:
    """Recent scheduled job runs, newest first (managers and admins): what ran, when, how it went."""
    require_roles(p, "manager", "admin")
    rows, total = recent_job_runs(conn, job=job, limit=limit, offset=offset)
    return {"items": rows, "total": total, "limit": limit, "offset": offset}
