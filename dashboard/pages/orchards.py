"""The orchard list (managers: their cooperative's; admin: all)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from dashboard import queries as q
from dashboard.access import Principal, orchard_scope
from dashboard.render import render
from dashboard.web import page_user

router = APIRouter(include_in_schema=False)


@router.get("/orchards", response_class=HTMLResponse)
def orchards_page(request: Request, offset: int = Query(default=0, ge=0, le=10_000_000)) -> Any:
    p = page_user(request, "manager", "admin", "grower")
    if not isinstance(p, Principal):
        return p
    limit = 100
    where, params = orchard_scope(p)
    with request.app.state.yc.pool.connection() as conn:
        rows, total = q.list_orchards(conn, scope=(where, params), limit=limit, offset=offset)
        area = conn.execute(
            f"SELECT coalesce(sum(area_mu), 0)::float8 FROM orchards o WHERE {where}", params
        ).fetchone()[0]
    return render(request, "orchards.html", user=p, rows=rows, total=total, total_area=area, offset=offset, limit=limit)
