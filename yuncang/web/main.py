"""Every router of the web app, listed once (full-stack-fastapi-template's ``api/main.py`` habit).

A new endpoint goes in a module of ``api/``, a new page in ``pages/``; add its ``include_router`` line
here. Order matters only for speed: Starlette tries routes one after another on every request
(~10 µs per router, measured), so the busiest reads come first — an orchard's conditions and charts,
then ``/api/v1/me`` that every client calls. No two routes match the same method and path
(``tests/test_api_cache.py::test_no_two_routers_claim_the_same_request``), so order never changes
which route answers.
"""

from __future__ import annotations

from fastapi import FastAPI

from yuncang.web.api import (
    alerts,
    auth,
    device_registry,
    devices,
    farm_records,
    forecasts,
    fruit_counts,
    glut,
    health,
    jobs,
    metrics,
    orchards,
    papers,
    spot,
    traceability,
    trading,
    warehouse,
)
from yuncang.web.pages import buyer, grower, home, login, lot, manager, static, trace
from yuncang.web.pages import orchards as orchards_page
from yuncang.web.pages import spot as spot_pages


def include_routers(app: FastAPI) -> None:
    """Mount the API routers (hottest first), then the pages."""
    # API, /api/v1 (and /health, /metrics)
    app.include_router(orchards.router)  # hottest: conditions, series
    app.include_router(auth.router)  # every client calls /api/v1/me
    app.include_router(alerts.router)
    app.include_router(devices.router)  # before device_registry: /devices/health is not a device id
    app.include_router(device_registry.router)
    app.include_router(farm_records.router)
    app.include_router(forecasts.router)
    app.include_router(fruit_counts.router)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(metrics.router)
    app.include_router(traceability.router)
    app.include_router(trading.router)
    app.include_router(warehouse.router)
    app.include_router(spot.router)  # issue 17: spot trading from stock, hall counter
    app.include_router(papers.router)  # delivery notes, statements (PDF, XLSX)
    app.include_router(glut.router)  # emergency channel for a glut
    # pages
    app.include_router(buyer.router)
    app.include_router(grower.router)
    app.include_router(home.router)
    app.include_router(login.router)
    app.include_router(manager.router)
    app.include_router(orchards_page.router)
    app.include_router(static.router)
    app.include_router(trace.router)
    app.include_router(spot_pages.router)  # /spot, /hall, /glut (issue 17)
    app.include_router(lot.router)
