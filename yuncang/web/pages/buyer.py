"""Buyer page: forecast supply by week and grade with its band, place and track forward orders,
allocations, shipments and trace codes."""

from __future__ import annotations

import csv
import io
import secrets
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchard_models.read import forecast_supply
from registry.grades import BY_CODE, GRADES
from trading.geo import CITIES
from trading.limits import yuan_to_fen
from yuncang.auth import Principal
from yuncang.web import trade
from yuncang.web.deps import check_csrf, page_user
from yuncang.web.figures import fig_json
from yuncang.web.i18n import grade as grade_label
from yuncang.web.i18n import lang_of, t
from yuncang.web.i18n import state as state_label
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
                name=grade_label(g.code, lang),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r["p90_kg"] - r["p50_kg"] for r in rs],
                    "arrayminus": [r["p50_kg"] - r["p10_kg"] for r in rs],
                },
            )
        )
    fig.update_layout(barmode="group", yaxis_title=t("unit_kg", lang))
    fig.update_xaxes(tickformat="%m-%d")
    return fig_json(fig)


#: rows per page of the order book and of the allocation detail
PAGE_ROWS = 20


def weekly_breakdown(allocs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per order, its allocation rows folded by delivery week: committed and expected kg (a week per row)."""
    by: dict[str, dict[Any, dict[str, Any]]] = defaultdict(dict)
    for a in allocs:
        w = by[a["order_id"]].setdefault(a["delivery_week"], {"week": a["delivery_week"], "committed": 0.0,
                                                              "expected": 0.0})
        w[a["status"]] += float(a["kg"])
    return {oid: [weeks[k] for k in sorted(weeks)] for oid, weeks in by.items()}


@router.get("/buyer", response_class=HTMLResponse)
def buyer_page(
    request: Request,
    placed: int = Query(default=0),
    changed: str | None = Query(default=None, max_length=20),
    error: str | None = Query(default=None, max_length=300),
    page: int = Query(default=0, ge=0, le=100_000),
    alloc_page: int = Query(default=0, ge=0, le=100_000),
) -> Any:
    p = page_user(request, "buyer", "manager", "admin")
    if not isinstance(p, Principal):
        return p
    lang = lang_of(request)
    with request.app.state.yc.pool.connection() as conn:
        offer = trade.supply_offer(conn)
        supply = offer or forecast_supply(conn)
        orders, n_orders = trade.list_orders(conn, p, limit=PAGE_ROWS, offset=page * PAGE_ROWS)
        all_allocs, n_alloc = trade.allocations(conn, p, limit=100_000)
        shipments = trade.shipments(conn, p)
        notices = trade.notifications(conn, p, limit=5)
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
        n_orders=n_orders,
        page=page,
        breakdown=weekly_breakdown(all_allocs),
        allocations=all_allocs[alloc_page * PAGE_ROWS : (alloc_page + 1) * PAGE_ROWS],
        n_alloc=n_alloc,
        alloc_page=alloc_page,
        page_rows=PAGE_ROWS,
        shipments=shipments,
        notices=notices,
        can_order=p.role == "buyer",
        cities=CITIES,
        idem=secrets.token_urlsafe(16),
        placed=placed,
        changed=changed,
        error=error,
    )


ALLOC_COLUMNS = ("order_id", "orchard_id", "harvest_week", "delivery_week", "grade", "kg", "status")


def _alloc_table(rows: list[dict[str, Any]], lang: str) -> tuple[list[str], list[list[Any]]]:
    """Header (in the page's language) and rows of the allocation detail for download (kg as numbers)."""
    head = [t(k, lang) for k in ("order_no", "orchard", "harvest_week", "delivery_week", "grade", "kg", "status")]
    body = [[r["order_id"], r["orchard_id"], r["harvest_week"], r["delivery_week"], grade_label(r["grade"], lang),
             float(r["kg"]), state_label(r["status"], lang)] for r in rows]
    return head, body


@router.get("/buyer/allocations.{fmt}")
def download_allocations(request: Request, fmt: str) -> Any:
    """Every allocation row you may see, as CSV (UTF-8 with BOM, opens in Excel) or XLSX."""
    if fmt not in ("csv", "xlsx"):
        return Response(status_code=404)
    p = page_user(request, "buyer", "manager", "admin")
    if not isinstance(p, Principal):
        return p
    lang = lang_of(request)
    with request.app.state.yc.pool.connection() as conn:
        rows, _ = trade.allocations(conn, p, limit=100_000)
    head, body = _alloc_table(rows, lang)
    name = f"allocations-{date.today().isoformat()}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(head)
        w.writerows(body)
        return Response(("\ufeff" + buf.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                        headers=disposition)
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = t("allocations", lang)[:31]
    ws.append(head)
    for r in body:
        ws.append(r)
    for cell in ws["F"][1:]:
        cell.number_format = "#,##0.0"
    out = io.BytesIO()
    wb.save(out)
    return Response(out.getvalue(), headers=disposition,
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


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
        price = yuan_to_fen(price_yuan, "price_yuan")
        floor = yuan_to_fen(floor_price_yuan, "floor_price_yuan") if floor_price_yuan.strip() else None
        wf, wt = date.fromisoformat(week_from), date.fromisoformat(week_to)
    except (ValueError, InvalidOperation, trade.TradingError) as exc:
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
    return RedirectResponse("/buyer?changed=cancelled#orders", status_code=303)


@router.post("/buyer/orders/{order_id}/amend")
def amend_order(
    request: Request,
    order_id: str,
    quantity_kg: str = Form(max_length=20),
    week_from: str = Form(max_length=10),
    week_to: str = Form(max_length=10),
    price_yuan: str = Form(max_length=20),
    csrf_token: str = Form(default="", max_length=200),
) -> Any:
    """Change quantity, weeks or price of one of your open orders (CSRF-checked); the next allocation
    run takes the new figures and its notice says what changed."""
    p = page_user(request, "buyer")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    try:
        changes = {
            "quantity_kg": Decimal(quantity_kg.strip()),
            "week_from": date.fromisoformat(week_from),
            "week_to": date.fromisoformat(week_to),
            "price_fen_per_kg": int((Decimal(price_yuan) * 100).to_integral_value()),
        }
    except (ValueError, InvalidOperation) as exc:
        return RedirectResponse(f"/buyer?error={quote(str(exc)[:200])}#orders", status_code=303)
    with request.app.state.yc.pool.connection() as conn:
        try:
            trade.amend_order(conn, p, order_id[:64], changes)
            conn.commit()
        except trade.TradingError as exc:
            conn.rollback()
            return RedirectResponse(f"/buyer?error={quote(exc.text(lang_of(request))[:200])}#orders",
                                    status_code=303)
    return RedirectResponse("/buyer?changed=amended#orders", status_code=303)
