"""Buyer page: forecast supply by week and grade with its band, place and track forward orders,
allocations, shipments and trace codes."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from orchard_models.read import forecast_supply
from registry.grades import BY_CODE, GRADES
from trading.geo import CITIES
from yuncang.auth import Principal
from yuncang.web import trade
from yuncang.web.deps import check_csrf, page_user
from yuncang.web.figures import fig_json
from yuncang.web.i18n import lang_of
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)


def supply_fig(rows: list[dict[str, Any]], lang: str) -> str | None:
    if not rows:
        return None
    fig = go.Figure()
    for g in GRADES:
        rs = [r for r in rows if r["grade"] == g.code]
        if not rs:
            continue
        fig.add_trace(
            go.Bar(
                x=[r["week_start"] for r in rs],
                y=[r["p50_kg"] for r in rs],
                name=g.label_zh if lang == "zh" else g.label_en,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r["p90_kg"] - r["p50_kg"] for r in rs],
                    "arrayminus": [r["p50_kg"] - r["p10_kg"] for r in rs],
                },
            )
        )
    fig.update_layout(barmode="group", yaxis_title="kg")
    return fig_json(fig)


@router.get("/buyer", response_class=HTMLResponse)
def buyer_page(
    request: Request, placed: int = Query(default=0), error: str | None = Query(default=None, max_length=300)
) -> Any:
    p = page_user(request, "buyer", "manager", "admin")
    if not isinstance(p, Principal):
        return p
    lang = lang_of(request)
    with request.app.state.yc.pool.connection() as conn:
        offer = trade.supply_offer(conn)
        supply = offer or forecast_supply(conn)
        orders, _ = trade.list_orders(conn, p, limit=100)
        allocations, n_alloc = trade.allocations(conn, p, limit=200)
        shipments = trade.shipments(conn, p)
        notices = trade.notifications(conn, p, limit=10)
    rows = [{k: (float(v) if isinstance(v, Decimal) else v) for k, v in r.items()} for r in supply]
    weeks = sorted({r["week_start"] for r in rows})
    today = date.today()
    monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    return render(
        request,
        "buyer.html",
        user=p,
        supply=rows,
        offer=bool(offer),
        supply_fig=supply_fig(rows, lang),
        grades=GRADES,
        weeks=weeks or [monday],
        orders=orders,
        allocations=allocations,
        n_alloc=n_alloc,
        shipments=shipments,
        notices=notices,
        can_order=p.role == "buyer",
        cities=CITIES,
        idem=secrets.token_urlsafe(16),
        placed=placed,
        error=error,
    )


@router.post("/buyer/orders")
def place_order(
    request: Request,
    grade: str = Form(max_length=8),
    quantity_kg: str = Form(max_length=20),
    week_from: str = Form(max_length=10),
    week_to: str = Form(max_length=10),
    destination: str = Form(max_length=200),
    price_yuan: str = Form(max_length=20),
    floor_price_yuan: str = Form(default="", max_length=20),
    idempotency_key: str = Form(max_length=100),
    csrf_token: str = Form(default="", max_length=200),
) -> Any:
    """The order form's POST (money entered in yuan/kg, stored in fen/kg); the form's idempotency key
    makes a double submit place one order."""
    p = page_user(request, "buyer")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    try:
        if grade not in BY_CODE:
            raise ValueError(f"grade {grade!r}")
        qty = Decimal(quantity_kg.strip())
        price = int((Decimal(price_yuan) * 100).to_integral_value())
        floor = int((Decimal(floor_price_yuan) * 100).to_integral_value()) if floor_price_yuan.strip() else None
        wf, wt = date.fromisoformat(week_from), date.fromisoformat(week_to)
    except (ValueError, InvalidOperation) as exc:
        return RedirectResponse(f"/buyer?error={quote(str(exc)[:200])}#order", status_code=303)
    with request.app.state.yc.pool.connection() as conn:
        try:
            trade.place_order(
                conn,
                p,
                idempotency_key=idempotency_key,
                grade=grade,
                quantity_kg=qty,
                week_from=wf,
                week_to=wt,
                destination=destination.strip(),
                price_fen_per_kg=price,
                floor_price_fen_per_kg=floor,
            )
            conn.commit()
        except trade.TradingError as exc:
            conn.rollback()
            msg = exc.zh if lang_of(request) == "zh" else exc.message
            return RedirectResponse(f"/buyer?error={quote(str(msg)[:200])}#order", status_code=303)
    return RedirectResponse("/buyer?placed=1#orders", status_code=303)


@router.post("/buyer/orders/{order_id}/cancel")
def cancel_order(request: Request, order_id: str, csrf_token: str = Form(default="", max_length=200)) -> Any:
    """Cancel one of your open orders (CSRF-checked); trading refuses orders that can no longer change."""
    p = page_user(request, "buyer")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    with request.app.state.yc.pool.connection() as conn:
        try:
            trade.cancel_order(conn, p, order_id[:64])
            conn.commit()
        except trade.TradingError as exc:
            conn.rollback()
            msg = exc.zh if lang_of(request) == "zh" else exc.message
            return RedirectResponse(f"/buyer?error={quote(str(msg)[:200])}#orders", status_code=303)
    return RedirectResponse("/buyer#orders", status_code=303)
