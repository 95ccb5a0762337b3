"""The orchard list (managers: their cooperative's; admin: all)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from registry.read import list_orchards, orchards_area_mu
from yuncang.auth import Principal
from yuncang.web.access import orchard_scope
from yuncang.web.deps import page_user
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/orchards", response_class=HTMLResponse)
def orchards_page(request: Request, offset: int = Query(default=0, ge=0, le=10_000_000)) -> Any:
    p = page_user(request, "manager", "admin", "grower")
    if not isinstance(p, Principal):
        return p
    limit = 100
    scope = orchard_scope(p)
    with request.app.state.yc.pool.connection() as conn:
        rows, total = list_orchards(conn, scope=scope, limit=limit, offset=offset)
        area = orchards_area_mu(conn, scope=scope)
    return render(request, "orchards.html", user=p, rows=rows, total=total, total_area=area, offset=offset, limit=limit)
