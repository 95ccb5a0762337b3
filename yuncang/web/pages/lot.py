"""The GS1 Digital Link resolver and the consumer's page (扫码溯源).

``GET /01/<GTIN>/10/<lot>`` and ``GET /00/<SSCC>`` (what a label's QR code carries) answer by content
negotiation, as the GS1-Conformant resolver standard asks:

* a browser (``Accept: text/html``, or ``?linkType=gs1:pip``) gets the consumer page: phone-first,
  zh-CN, no script, no Plotly — one server-drawn SVG chart — so it is small and fast on a poor network;
* ``Accept: application/linkset+json`` (or ``?linkType=linkset``/``all``) gets the linkset;
* ``Accept: application/ld+json`` (or ``?linkType=gs1:traceability``) gets the lot's EPCIS 2.0 events
  (public subset: no shipping events, which name buyers).

``POST /01/<GTIN>/10/<lot>/complaint`` records a consumer complaint (idempotent on the form's client
id) and shows the page again with a receipt.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from html import escape
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ingest.read import daily_weather, room_air_temperatures
from registry.errors import DomainError, NotFound
from trading import consumer, epcis, genealogy
from yuncang.web.api.traceability import gs1_config
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)


def season_svg(chart: dict[str, list[Any]], width: int = 360, height: int = 150) -> str:
    """A small SVG of the season: daily max/min air temperature (°C, lines) and rain (mm, bars from 0)."""
    days = chart["day"]
    if not days:
        return ""
    hi = [t for t in chart["tmax_c"] if t is not None] or [0.0]
    lo = [t for t in chart["tmin_c"] if t is not None] or [0.0]
    tmin, tmax = min(min(lo), 0.0), max(max(hi), 10.0)
    rmax = max(max(chart["rain_mm"]), 10.0)
    pad, n = 28, len(days)
    w, h = width - pad - 6, height - 34

    def x(i: int) -> float:
        return pad + (i + 0.5) * w / n

    def ty(t: float) -> float:
        return 8 + h - (t - tmin) / (tmax - tmin) * h

    bars = "".join(
        f'<rect x="{x(i) - w / n / 2:.1f}" y="{8 + h - r / rmax * h * 0.5:.1f}" width="{max(w / n - 1, 1):.1f}" '
        f'height="{r / rmax * h * 0.5:.1f}" fill="#90caf9"/>' for i, r in enumerate(chart["rain_mm"]) if r > 0)

    def line(vals: list[float | None], colour: str) -> str:
        pts = " ".join(f"{x(i):.1f},{ty(v):.1f}" for i, v in enumerate(vals) if v is not None)
        return f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>'

    zero = f'<line x1="{pad}" x2="{pad + w}" y1="{ty(0):.1f}" y2="{ty(0):.1f}" stroke="#bbb" stroke-dasharray="3"/>'
    labels = (f'<text x="2" y="{ty(tmax) + 4:.0f}" font-size="10">{tmax:.0f}°</text>'
              f'<text x="2" y="{ty(tmin) + 4:.0f}" font-size="10">{tmin:.0f}°</text>'
              f'<text x="{pad}" y="{height - 10}" font-size="10">{escape(days[0][5:])}</text>'
              f'<text x="{pad + w}" y="{height - 10}" font-size="10" text-anchor="end">{escape(days[-1][5:])}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="season chart">'
            f'{bars}{zero}{line(chart["tmax_c"], "#c62828")}{line(chart["tmin_c"], "#1565c0")}{labels}</svg>')


def _wants(request: Request) -> str:
    lt = request.query_params.get("linkType", "")
    if lt in ("linkset", "all"):
        return "linkset"
    if lt == "gs1:traceability":
        return "epcis"
    if lt == "gs1:pip":
        return "html"
    accept = request.headers.get("accept", "")
    if "application/linkset+json" in accept:
        return "linkset"
    if "application/ld+json" in accept:
        return "epcis"
    if "text/html" in accept or not accept or "*/*" in accept:
        return "html"
    if "application/json" in accept:
        return "linkset"
    return "html"


def _resolve(request: Request, link: str, receipt: dict[str, Any] | None = None, status: int = 200,
             form_error: str | None = None) -> Response:
    cfg = gs1_config(request)
    want = _wants(request)
    with request.app.state.yc.pool.connection() as conn:
        try:
            obj = consumer.find_object(conn, link)
            if want == "linkset":
                return JSONResponse(consumer.linkset(cfg, link, obj), media_type="application/linkset+json")
            if want == "epcis":
                events = epcis.query_events(conn, cfg, visible=genealogy.upstream(conn, obj["object_id"]),
                                            viewer=None)
                return JSONResponse(epcis.query_document(events), media_type="application/ld+json",
                                    headers={"GS1-EPCIS-Version": "2.0.0"})
            view = consumer.public_lot(conn, cfg, link, datetime.now(UTC), weather=daily_weather,
                                       temps=room_air_temperatures)
        except DomainError as exc:
            conn.rollback()
            if want != "html":
                return JSONResponse({"detail": exc.to_dict()}, status_code=exc.http_status)
            return render(request, "lot.html", status_code=exc.http_status, view=None, error=exc.zh, svg="",
                          client_id="", receipt=None, link=link, form_error=None)
    return render(request, "lot.html", status_code=status, view=view, error=None, svg=season_svg(view["chart"]),
                  client_id=secrets.token_hex(12), receipt=receipt, link=link, form_error=form_error)


@router.get("/01/{gtin}/10/{lot}", response_class=HTMLResponse)
def lot_page(request: Request, gtin: str, lot: str) -> Response:
    return _resolve(request, f"/01/{gtin}/10/{lot}")


@router.get("/00/{sscc}", response_class=HTMLResponse)
def unit_page(request: Request, sscc: str) -> Response:
    return _resolve(request, f"/00/{sscc}")


@router.post("/01/{gtin}/10/{lot}/complaint", response_class=HTMLResponse)
def complain(request: Request, gtin: str, lot: str, category: str = Form(max_length=20),
             text: str = Form(max_length=2000), contact: str = Form(default="", max_length=200),
             client_id: str = Form(default="", max_length=64)) -> Response:
    return _complaint(request, f"/01/{gtin}/10/{lot}", category, text, contact, client_id)


@router.post("/00/{sscc}/complaint", response_class=HTMLResponse)
def complain_unit(request: Request, sscc: str, category: str = Form(max_length=20),
                  text: str = Form(max_length=2000), contact: str = Form(default="", max_length=200),
                  client_id: str = Form(default="", max_length=64)) -> Response:
    return _complaint(request, f"/00/{sscc}", category, text, contact, client_id)


def _complaint(request: Request, link: str, category: str, text: str, contact: str, client_id: str) -> Response:
    with request.app.state.yc.pool.connection() as conn:
        try:
            receipt = consumer.file_complaint(conn, link=link, category=category, text=text, contact=contact or None,
                                              client_id=client_id or None)
        except NotFound as exc:
            conn.rollback()
            return render(request, "lot.html", status_code=404, view=None, error=exc.zh, svg="", client_id="",
                          receipt=None, link=link, form_error=None)
        except DomainError as exc:
            conn.rollback()
            return _resolve(request, link, status=exc.http_status, form_error=exc.zh)
    return _resolve(request, link, receipt=receipt, status=201)
