"""First page: the orchard list."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from dashboard.render import render

router = APIRouter(include_in_schema=False)

_ROWS = """
SELECT o.orchard_id, o.name, o.township_id, t.name_zh AS township_zh, o.area_mu::float8 AS area_mu,
       o.elevation_m, o.planting_year, o.tree_count
FROM orchards o JOIN townships t USING (township_id) ORDER BY o.orchard_id LIMIT %s OFFSET %s
"""


@router.get("/orchards", response_class=HTMLResponse)
def orchards_page(request: Request, offset: int = Query(default=0, ge=0, le=10_000_000)) -> HTMLResponse:
    from psycopg.rows import dict_row

    limit = 100
    with request.app.state.yc.pool.connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(_ROWS, (limit, offset)).fetchall()
        total, area = conn.execute("SELECT count(*), coalesce(sum(area_mu), 0)::float8 FROM orchards").fetchone()
    return render(request, "orchards.html", rows=rows, total=total, total_area=area, offset=offset, limit=limit)
