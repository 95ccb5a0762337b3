"""Registry API: orchards (paginated, filterable)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

router = APIRouter(prefix="/api/v1", tags=["registry"])


class Orchard(BaseModel):
    orchard_id: str
    name: str
    grower_id: str
    cooperative_id: str | None
    township_id: str
    township_zh: str
    area_mu: float
    elevation_m: int
    lat: float
    lon: float
    planting_year: int
    tree_count: int
    variety: str


class OrchardPage(BaseModel):
    items: list[Orchard]
    total: int
    limit: int
    offset: int


_SELECT = """
SELECT o.orchard_id, o.name, o.grower_id, o.cooperative_id, o.township_id, t.name_zh AS township_zh,
       o.area_mu::float8 AS area_mu, o.elevation_m, o.lat, o.lon, o.planting_year, o.tree_count, o.variety
FROM orchards o JOIN townships t USING (township_id)
"""


def list_orchards(conn: Any, *, township: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    from psycopg.rows import dict_row

    where, params = "", []
    if township:
        where, params = " WHERE o.township_id = %s", [township]
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(_SELECT + where + " ORDER BY o.orchard_id LIMIT %s OFFSET %s",
                       [*params, limit, offset]).fetchall()
    total = conn.execute("SELECT count(*) FROM orchards o" + where, params).fetchone()[0]
    return rows, total


@router.get("/orchards", response_model=OrchardPage)
def orchards(
    request: Request,
    township: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> OrchardPage:
    """Orchards in id order, ``limit`` at a time."""
    with request.app.state.yc.pool.connection() as conn:
        rows, total = list_orchards(conn, township=township, limit=limit, offset=offset)
    return OrchardPage(items=[Orchard(**r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/orchards/{orchard_id}", response_model=Orchard, responses={404: {"description": "no such orchard"}})
def orchard(request: Request, orchard_id: str) -> Orchard:
    from psycopg.rows import dict_row

    with request.app.state.yc.pool.connection() as conn:
        row = conn.cursor(row_factory=dict_row).execute(_SELECT + " WHERE o.orchard_id = %s",
                                                        (orchard_id,)).fetchone()
    if not row:
        raise HTTPException(status_code=404, detail=f"no orchard {orchard_id!r}")
    return Orchard(**row)
