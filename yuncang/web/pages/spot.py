"""Spot-trading pages (issue 17): the buyer's stock page, the hall counter (made for a tablet) and the
manager's glut-offer page. Plain forms (CSRF-checked) posting to these routes, which call
:mod:`trading.spot` / :mod:`trading.glut`; a refused action comes back as a message, never a 500.

* ``/spot``  — buyers: lots in stock with today's price, reserve, confirm, papers; institutional
  buyers also see the open glut offers and take a quantity with one button;
* ``/hall``  — hall staff, managers, admins: one site's stock, record a counter sale (cash or
  transfer), hand over confirmed online sales, the day's papers;
* ``/glut``  — managers, admins: unsold-risk warnings with an "open to institutional buyers" form,
  the offers and what each partner bought against its pledge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from registry.errors import DomainError
from trading import glut, sites, spot
from yuncang.auth import Principal
from yuncang.web.access import may_run_trading, may_work_counter
from yuncang.web.deps import check_csrf, page_user
from yuncang.web.i18n import lang_of
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)

_MSG = Query(default=None, max_length=300)


def _yuan_to_fen(text: str) -> int:
    try:
        v = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(text) from exc
    if not v.is_finite() or v <= 0:
        raise ValueError(text)
    return int((v * 100).to_integral_value())


def _act(request: Request, back: str, fn: Callable[[Any], Any]) -> RedirectResponse:
    """Run ``fn(conn)`` in one transaction; back to ``back`` with ``ok=1`` or the refusal's message."""
    back, _, frag = back.partition("#")
    sep = "&" if "?" in back else "?"
    frag = f"#{frag}" if frag else ""
    with request.app.state.yc.pool.connection() as conn:
        try:
            fn(conn)
            conn.commit()
        except (DomainError, ValueError) as exc:
            conn.rollback()
            msg = (exc.zh if lang_of(request) == "zh" else exc.message) if isinstance(exc, DomainError) else str(exc)
            return RedirectResponse(f"{back}{sep}error={quote(str(msg)[:250])}{frag}", status_code=303)
    return RedirectResponse(f"{back}{sep}ok=1{frag}", status_code=303)


# ------------------------------------------------------------------------------- buyer: /spot

@router.get("/spot", response_class=HTMLResponse)
def spot_page(request: Request, ok: int = Query(default=0), error: str | None = _MSG) -> Any:
    p = page_user(request, "buyer", "manager", "admin")
    if not isinstance(p, Principal):
        return p
    with request.app.state.yc.pool.connection() as conn:
        stock = spot.stock_offer(conn)
        mine = spot.list_sales(conn, buyer_id=p.buyer_id, limit=50) if p.role == "buyer" else []
        offers = glut.list_offers(conn) if p.role == "buyer" and glut.is_partner(conn, p.buyer_id) else []
    return render(request, "spot.html", user=p, stock=stock, mine=mine, offers=offers, ok=ok, error=error,
                  rid=secrets.token_hex(8))


@router.post("/spot/reserve")
def spot_reserve(request: Request, lot_id: str = Form(max_length=64), grade: str = Form(max_length=4),
                 kg: str = Form(max_length=20), client_request_id: str = Form(max_length=100),
                 csrf_token: str = Form(default="", max_length=200)) -> Any:
    p = page_user(request, "buyer")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    return _act(request, "/spot#mine", lambda c: spot.reserve(
        c, buyer_id=p.buyer_id or "", actor=p.username, client_request_id=client_request_id,
        lines=[{"lot_id": lot_id, "grade": grade, "kg": kg.strip()}]))


@router.post("/spot/sales/{sale_id}/confirm")
def spot_confirm(request: Request, sale_id: str, csrf_token: str = Form(default="", max_length=200)) -> Any:
    p = page_user(request, "buyer")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    return _act(request, "/spot#mine", lambda c: spot.confirm(c, sale_id[:64], buyer_id=p.buyer_id))


@router.post("/spot/glut/{glut_offer_id}/accept")
def glut_accept(request: Request, glut_offer_id: int, kg: str = Form(max_length=20),
                csrf_token: str = Form(default="", max_length=200)) -> Any:
    """An institutional buyer takes part of a glut offer with one button; the season is re-allocated."""
    p = page_user(request, "buyer")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)

    def take(c: Any) -> None:
        glut.accept_offer(c, glut_offer_id, buyer_id=p.buyer_id or "", kg=kg.strip(), actor=p.username)
        c.commit()
        try:
            glut.plan_after_acceptance(c, glut_offer_id)
        except DomainError:        # no forecast to allocate against: the order stands, allocated later
            c.rollback()

    return _act(request, "/spot#glut", take)


# ------------------------------------------------------------------------------- hall: /hall

def _counter(request: Request, warehouse_id: str) -> Principal | RedirectResponse:
    p = page_user(request)
    if not isinstance(p, Principal):
        return p
    with request.app.state.yc.pool.connection() as conn:
        granted = spot.is_hall_staff(conn, p.username, warehouse_id)
    if not may_work_counter(p, granted):
        return RedirectResponse(p.home, status_code=303)
    return p


@router.get("/hall", response_class=HTMLResponse)
def hall_page(request: Request, warehouse_id: str = Query(default="WH-WUSHAN", max_length=64),
              ok: int = Query(default=0), error: str | None = _MSG) -> Any:
    p = _counter(request, warehouse_id)
    if not isinstance(p, Principal):
        return p
    with request.app.state.yc.pool.connection() as conn:
        site_list = sites.list_sites(conn)
        stock = spot.stock_offer(conn, warehouse_id=warehouse_id)
        sales = spot.list_sales(conn, warehouse_id=warehouse_id, limit=30)
        prices = [r for r in spot.list_prices(conn) if r["warehouse_id"] == warehouse_id]
    return render(request, "hall.html", user=p, site_id=warehouse_id, sites=site_list, stock=stock, sales=sales,
                  prices=prices, ok=ok, error=error, rid=secrets.token_hex(8), manager=may_run_trading(p))


@router.post("/hall/sale")
def hall_sale(request: Request, warehouse_id: str = Form(max_length=64), item: str = Form(max_length=80),
              kg: str = Form(max_length=20), payment_method: str = Form(max_length=10),
              walk_in_name: str = Form(default="", max_length=100), client_request_id: str = Form(max_length=100),
              csrf_token: str = Form(default="", max_length=200)) -> Any:
    p = _counter(request, warehouse_id)
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    lot_id, _, grade = item.partition("|")
    return _act(request, f"/hall?warehouse_id={quote(warehouse_id)}", lambda c: spot.hall_sale(
        c, warehouse_id=warehouse_id, actor=p.username, client_request_id=client_request_id,
        lines=[{"lot_id": lot_id, "grade": grade, "kg": kg.strip()}], payment_method=payment_method,
        walk_in_name=walk_in_name or None))


@router.post("/hall/sales/{sale_id}/deliver")
def hall_deliver(request: Request, sale_id: str, warehouse_id: str = Form(max_length=64),
                 csrf_token: str = Form(default="", max_length=200)) -> Any:
    p = _counter(request, warehouse_id)
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)

    def hand_over(c: Any) -> None:
        if spot.get_sale(c, sale_id[:64]).warehouse_id != warehouse_id:
            raise ValueError("that sale is not at this site")
        spot.deliver(c, sale_id[:64])

    return _act(request, f"/hall?warehouse_id={quote(warehouse_id)}", hand_over)


@router.post("/hall/price")
def hall_price(request: Request, warehouse_id: str = Form(max_length=64), grade: str = Form(max_length=4),
               price_yuan: str = Form(max_length=20), csrf_token: str = Form(default="", max_length=200)) -> Any:
    p = page_user(request, "manager", "admin")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    return _act(request, f"/hall?warehouse_id={quote(warehouse_id)}", lambda c: spot.set_list_price(
        c, warehouse_id=warehouse_id, grade=grade, price_fen_per_kg=_yuan_to_fen(price_yuan), set_by=p.username))


# ------------------------------------------------------------------------------- manager: /glut

@router.get("/glut", response_class=HTMLResponse)
def glut_page(request: Request, season: int = Query(default=0, ge=0, le=2100), ok: int = Query(default=0),
              error: str | None = _MSG) -> Any:
    p = page_user(request, "manager", "admin")
    if not isinstance(p, Principal):
        return p
    with request.app.state.yc.pool.connection() as conn:
        season, warns = glut.season_warnings(conn, season or None)
        offers = glut.list_offers(conn, season=season, status=None)
        partners = glut.partner_report(conn, season)
    open_keys = {o.warning_key for o in offers if o.status == "open"}
    return render(request, "glut.html", user=p, season=season, warnings=warns, offers=offers, partners=partners,
                  open_keys=open_keys, ok=ok, error=error)


@router.post("/glut/offers")
def glut_open(request: Request, season: int = Form(ge=2000, le=2100), week_start: str = Form(max_length=10),
              grade: str = Form(max_length=4), floor_price_yuan: str = Form(max_length=20),
              kg: str = Form(default="", max_length=20), csrf_token: str = Form(default="", max_length=200)) -> Any:
    p = page_user(request, "manager", "admin")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    from datetime import date

    def open_it(c: Any) -> None:
        wk = date.fromisoformat(week_start)
        glut.open_offer(c, season=season, week_start=wk, grade=grade, as_of=wk,
                        floor_price_fen_per_kg=_yuan_to_fen(floor_price_yuan), opened_by=p.username,
                        kg=kg.strip() or None)

    return _act(request, f"/glut?season={season}", open_it)
