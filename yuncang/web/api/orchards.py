"""Orchards (scoped by role), their latest conditions and bucketed sensor series."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from ingest.read import latest_conditions, latest_data_time, sensor_series_json
from registry.metrics import METRICS
from registry.read import devices_and_open_alerts, get_orchard, list_orchards, orchard_owners
from yuncang.auth import Principal
from yuncang.web.cache import CACHE_HEADERS, NOT_MODIFIED, Body, cached_json
from yuncang.web.common import (
    AUTH_ERRORS,
    NOT_FOUND,
    Message,
    Page,
    fast_json,
    json_bytes,
    limit_q,
    offset_q,
    reject_nul,
)
from yuncang.web.deps import Conn, CurrentUser, Scope, check_orchard, require_orchard, require_roles

router = APIRouter(prefix="/api/v1", tags=["orchards"], dependencies=[Depends(reject_nul)])


class Orchard(BaseModel):
    orchard_id: str
    name: str
    grower_id: str
    grower_name: str
    cooperative_id: str | None
    township_id: str
    township_zh: str
    township_en: str
    area_mu: float
    elevation_m: int
    lat: float
    lon: float
    planting_year: int
    tree_count: int
    variety: str


class MetricValue(BaseModel):
    value: float
    unit: str
    time: datetime
    label_zh: str
    label_en: str


class Conditions(BaseModel):
    orchard_id: str
    as_of: datetime | None
    source: str | None
    metrics: dict[str, MetricValue]
    rain_24h_mm: float | None
    open_alerts: int


class Point(BaseModel):
    t: datetime
    avg: float | None
    min: float | None
    max: float | None
    n: int
    sum: float | None


class Series(BaseModel):
    metric: str
    unit: str
    label_zh: str
    label_en: str
    points: list[Point]


class SeriesOut(BaseModel):
    orchard_id: str
    start: datetime
    end: datetime
    resolution: str
    source: str | None
    series: list[Series]


def _orchard_reader(p: Principal) -> None:
    require_roles(p, "grower", "manager", "admin")


@router.get("/orchards", response_model=None, responses={200: {"model": Page[Orchard]}, **AUTH_ERRORS})
def orchards(
    request: Request,
    p: CurrentUser,
    scope: Scope,
    township: str | None = Query(default=None, max_length=64),
    limit: int = limit_q(),
    offset: int = offset_q(),
) -> Any:
    """Orchards you may see, in id order: a grower's own, a manager's cooperative's, all for admin."""
    _orchard_reader(p)
    with request.app.state.yc.pool.connection() as conn:
        rows, total = list_orchards(conn, scope=scope, township=township, limit=limit, offset=offset)
    return fast_json({"items": rows, "total": total, "limit": limit, "offset": offset})


@router.get("/orchards/{orchard_id}", response_model=Orchard, responses={**AUTH_ERRORS, **NOT_FOUND})
def orchard(orchard_id: str, p: CurrentUser, conn: Conn) -> Any:
    _orchard_reader(p)
    require_orchard(conn, p, orchard_id)
    return get_orchard(conn, orchard_id)


@dataclass(frozen=True)
class _Owner:
    grower_id: str
    cooperative_id: str | None


def _orchard_for_read(conn: Any, orchard_id: str) -> tuple[list[str], int]:
    """One round trip: the orchard's active gateways and open alerts (404 when there is no such orchard).
    Access was checked before (:func:`_check_access`)."""
    got = devices_and_open_alerts(conn, orchard_id)
    if got is None:
        raise HTTPException(status_code=404, detail=f"no orchard {orchard_id!r}")
    return got


async def _check_access(request: Request, p: Principal, orchard_id: str) -> None:
    """Every request, before any cached body is looked at: 404 without the orchard, 403 when ``p`` may not
    see it. The orchard's owners are remembered for ``yuncang.auth.CACHE_TTL_S`` seconds (like
    sign-in tokens), so a change of owner takes effect within that time."""
    _orchard_reader(p)
    yc = request.app.state.yc

    def load() -> _Owner:
        with yc.pool.connection() as conn:
            row = orchard_owners(conn, orchard_id)
        if row is None:
            raise HTTPException(status_code=404, detail=f"no orchard {orchard_id!r}")
        return _Owner(row[0], row[1])

    _, owner = await yc.owners.get(orchard_id, load)
    check_orchard(p, orchard_id, owner.grower_id, owner.cooperative_id)


async def _serve_cached(request: Request, key: tuple[Any, ...], fill: Callable[[], Body]) -> Response:
    """The body for ``key`` from the app's cache (filled by ``fill`` in a worker thread on a miss)."""
    cache = request.app.state.yc.cache
    age, body = await cache.get(key, fill)
    return cached_json(request, body, age, cache.ttl_s)


_CACHED = (
    " Served from a per-process memory cache for up to `YUNCANG_API_CACHE_TTL_S` seconds (default 5; sensor"
    " data arrives every 5 minutes), so it may be that many seconds older than the database; access is"
    " checked on every request first. The response has a strong `ETag` and `Cache-Control: private,"
    " max-age=<seconds left>`; send the ETag back in `If-None-Match` to get `304 Not Modified` without a body."
    " Bodies of 1 KiB or more are sent gzip-coded (with their own ETag) when `Accept-Encoding` allows it."
)


@router.get(
    "/orchards/{orchard_id}/conditions",
    response_model=None,
    responses={
        200: {"model": Conditions, "headers": CACHE_HEADERS},
        **NOT_MODIFIED,
        **AUTH_ERRORS,
        **NOT_FOUND,
    },
    description="Newest value of every sensor metric (°C, %, m³/m³, mm, W/m², m/s), rain over the last 24 h"
    " (mm) and the count of open alerts. `source` is null when no sensor data has arrived yet." + _CACHED,
)
async def conditions(request: Request, orchard_id: str, p: CurrentUser) -> Any:
    await _check_access(request, p, orchard_id)
    pool = request.app.state.yc.pool

    def fill() -> Body:
        with pool.connection() as conn:
            devices, n = _orchard_for_read(conn, orchard_id)
            c = latest_conditions(conn, orchard_id, devices)
        return Body.of(json_bytes({"orchard_id": orchard_id, **c, "open_alerts": n}))

    return await _serve_cached(request, ("conditions", orchard_id), fill)


def _parse_time(v: str | None, name: str) -> datetime | None:
    if v is None:
        return None
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{name} must be an ISO 8601 date-time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    if not (datetime(2000, 1, 1, tzinfo=UTC) <= t <= datetime(2100, 1, 1, tzinfo=UTC)):
        raise HTTPException(status_code=422, detail=f"{name} must be between 2000 and 2100")
    return t


@router.get(
    "/orchards/{orchard_id}/series",
    response_model=None,
    responses={
        200: {"model": SeriesOut, "headers": CACHE_HEADERS},
        **NOT_MODIFIED,
        **AUTH_ERRORS,
        **NOT_FOUND,
        422: {"model": Message, "description": "bad metric or time range"},
    },
    description="Sensor series bucketed by the requested range: raw up to 36 h, hourly up to 16 days, daily"
    " beyond (a year is one query of ~366 points per metric). Each point has avg/min/max/sum and n readings."
    + _CACHED,
)
async def series(
    request: Request,
    orchard_id: str,
    p: CurrentUser,
    metric: list[str] = Query(
        default=["air_temp_c", "soil_vwc_10cm", "rain_mm"],
        max_length=10,
        description=f"one or more of: {', '.join(METRICS)}",
    ),
    start: str | None = Query(default=None, max_length=40, description="ISO 8601; default end - days"),
    end: str | None = Query(
        default=None, max_length=40, description="ISO 8601; default: just after the orchard's newest data (or now)"
    ),
    days: float = Query(default=7, gt=0, le=400, description="range length when start is not given, days"),
    resolution: str | None = Query(
        default=None, pattern="^(raw|hour|day)$", description="force raw/hour/day; default by range length"
    ),
) -> Any:
    _orchard_reader(p)
    bad = [m for m in metric if m not in METRICS]
    if bad:
        raise HTTPException(status_code=422, detail=f"unknown metric(s) {bad}; known: {list(METRICS)}")
    t_start, t_end = _parse_time(start, "start"), _parse_time(end, "end")
    metrics = list(dict.fromkeys(metric))
    await _check_access(request, p, orchard_id)
    pool = request.app.state.yc.pool

    def fill() -> Body:
        with pool.connection() as conn:
            devices, _ = _orchard_for_read(conn, orchard_id)
            t1 = t_end or latest_data_time(conn, orchard_id, devices) or datetime.now(UTC)
            t0 = t_start or t1 - timedelta(days=days)
            if t0 >= t1:
                raise HTTPException(status_code=422, detail="start must be before end")
            if t1 - t0 > timedelta(days=800):
                raise HTTPException(status_code=422, detail="range longer than 800 days")
            if resolution == "raw" and t1 - t0 > timedelta(days=3):
                raise HTTPException(status_code=422, detail="raw readings only for ranges up to 3 days")
            if resolution == "hour" and t1 - t0 > timedelta(days=62):
                raise HTTPException(status_code=422, detail="hourly buckets only for ranges up to 62 days")
            body = sensor_series_json(conn, orchard_id, devices, metrics, t0, t1, resolution)
        return Body.of(body.encode())

    key = ("series", orchard_id, tuple(metrics), t_start, t_end, None if t_start else days, resolution)
    return await _serve_cached(request, key, fill)
