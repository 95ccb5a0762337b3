"""Prometheus metrics at ``/metrics`` (this process's counters: API latency, ingest, jobs, ...).

Not public: answered to scrapers on the addresses in ``YUNCANG_METRICS_ALLOW`` (the TCP peer, default
loopback; in compose, the internal network — the TLS proxy refuses ``/metrics`` from outside) and to a
signed-in admin; anyone else gets 404, as if there were no such page.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from yuncang.web.client_address import in_networks, parse_trusted
from yuncang.web.deps import OptionalUser

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request, p: OptionalUser) -> Response:
    peer = request.client.host if request.client else ""
    # a request that came through a proxy carries X-Forwarded-For: it is from outside, whatever the peer
    from_scraper = "x-forwarded-for" not in request.headers and in_networks(
        peer, parse_trusted(request.app.state.yc.settings.metrics_allow))
    if not from_scraper and (p is None or p.role != "admin"):
        raise HTTPException(status_code=404, detail="Not Found")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
