"""Grower page (phone-first): my orchard now, alerts with advice, charts, forecast, contracts, record form."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from plotly.subplots import make_subplots

from ingest.read import latest_conditions, latest_data_time, sensor_series
from orchard_models.read import FARM_KINDS, add_farm_record, list_farm_records, orchard_forecast
from registry.grades import BY_CODE
from registry.read import get_orchard, list_alerts, list_orchards
from trading.read import grower_contracts
from yuncang.auth import Principal
from yuncang.web import trade
from yuncang.web.access import orchard_scope
from yuncang.web.deps import check_csrf, page_user, require_orchard
from yuncang.web.figures import fig_json
from yuncang.web.i18n import lang_of
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

CARD_METRICS = ("air_temp_c", "air_rh_pct", "soil_vwc_10cm", "soil_vwc_30cm", "soil_temp_10cm_c", "leaf_wetness_pct")


def _series_fig(s: dict[str, Any], lang: str) -> str | None:
    by = {x["metric"]: x for x in s["series"]}
    if not any(x["points"] for x in s["series"]):
        return None
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05)
    label = "label_zh" if lang == "zh" else "label_en"
    temp = by.get("air_temp_c")
    if temp and temp["points"]:
        ts = [p["t"] for p in temp["points"]]
        fig.add_trace(
            go.Scatter(
                x=ts, y=[p["max"] for p in temp["points"]], line={"width": 0}, showlegend=False, hoverinfo="skip"
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=ts,
                y=[p["min"] for p in temp["points"]],
                fill="tonexty",
                line={"width": 0},
                fillcolor="rgba(198,40,40,.15)",
                name="min–max",
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=ts, y=[p["avg"] for p in temp["points"]], line={"color": "#c62828"}, name=f"{temp[label]} (°C)"
            ),
            row=1,
            col=1,
        )
    for m, color in (("soil_vwc_10cm", "#6d4c41"), ("soil_vwc_30cm", "#a1887f")):
        sm = by.get(m)
        if sm and sm["points"]:
            fig.add_trace(
                go.Scatter(
                    x=[p["t"] for p in sm["points"]],
                    y=[p["avg"] for p in sm["points"]],
                    line={"color": color},
                    name=f"{sm[label]} (m³/m³)",
                ),
                row=2,
                col=1,
            )
    rain = by.get("rain_mm")
    if rain and rain["points"]:
        fig.add_trace(
            go.Bar(
                x=[p["t"] for p in rain["points"]],
                y=[p["sum"] for p in rain["points"]],
                marker_color="#1565c0",
                name=f"{rain[label]} (mm)",
            ),
            row=3,
            col=1,
        )
    fig.update_layout(height=420, xaxis3={"type": "date"})
    return fig_json(fig)


def _forecast_fig(f: dict[str, Any], lang: str) -> str | None:
    if not f["weeks"]:
        return None
    fig = go.Figure()
    for code in sorted({w["grade"] for w in f["weeks"]}, key=lambda c: BY_CODE[c].rank if c in BY_CODE else 9):
        rows = [w for w in f["weeks"] if w["grade"] == code]
        g = BY_CODE.get(code)
        fig.add_trace(
            go.Bar(
                x=[w["week_start"] for w in rows],
                y=[w["p50_kg"] for w in rows],
                name=(g.label_zh if lang == "zh" else g.label_en) if g else code,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [w["p90_kg"] - w["p50_kg"] for w in rows],
                    "arrayminus": [w["p50_kg"] - w["p10_kg"] for w in rows],
                },
            )
        )
    if f.get("harvest_start") and f.get("harvest_end"):
        fig.add_vrect(
            x0=f["harvest_start"],
            x1=f["harvest_end"] + timedelta(days=1),
            fillcolor="#fff3e0",
            opacity=0.5,
            line_width=0,
            layer="below",
        )
    fig.update_layout(barmode="group", yaxis_title="kg (P50, P10–P90)")
    return fig_json(fig)


def _statements(conn: Any, p: Principal, grower_id: str | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """This grower's statement for the season and their contracts: the latest allocation run's kg from
    their orchards by harvest week, grade and status (committed / expected), with the contract value (fen)."""
    if grower_id is None:
        return None, []
    try:
        rep = trade.statements(conn, p if p.role == "grower" else _as_admin(p), grower_id=grower_id)
    except trade.TradingError:
        conn.rollback()
        return None, []
    st = rep["statements"][0] if rep["statements"] else None
    return st, grower_contracts(conn, grower_id)


def _expected_income(conn: Any, o: dict[str, Any], contracts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the contracted kg would pay the grower under the cooperative's settlement rules
    (trading.settlement.compute_statement: management fee per plant, picking fee per jin, dividend on
    the contracts' revenue), in fen. None without contracts or rules."""
    if not contracts:
        return None
    from decimal import Decimal

    from trading import settlement

    kg = sum((Decimal(c["kg"]) for c in contracts), Decimal(0))
    revenue = int(sum(int(c["revenue_fen"]) for c in contracts))
    try:
        rule = settlement.rule_set_for(conn, o["cooperative_id"], trade.current_season(conn))
    except trade.TradingError:
        conn.rollback()
        return None
    out = settlement.compute_statement(rule, plants=int(o["tree_count"]), picked_kg=kg, revenue_fen=revenue)
    return {**out, "kg": kg, "revenue_fen": revenue}


def _as_admin(p: Principal) -> Principal:
    """Managers reading a grower page they may see (scope already checked by require_orchard)."""
    from dataclasses import replace

    return replace(p, role="admin")


@router.get("/grower", response_class=HTMLResponse)
def grower_page(
    request: Request,
    orchard: str | None = Query(default=None, max_length=64),
    saved: int = Query(default=0),
    error: str | None = Query(default=None, max_length=200),
) -> Any:
    p = page_user(request, "grower", "manager", "admin")
    if not isinstance(p, Principal):
        return p
    lang = lang_of(request)
    with request.app.state.yc.pool.connection() as conn:
        if orchard is None:
            mine, _ = list_orchards(conn, scope=orchard_scope(p), limit=20)
            if not mine:
                return render(request, "grower.html", user=p, orchard=None, mine=[])
            orchard = mine[0]["orchard_id"]
        else:
            require_orchard(conn, p, orchard)
            mine, _ = list_orchards(conn, scope=orchard_scope(p), limit=20)
        o = get_orchard(conn, orchard)
        cond = latest_conditions(conn, orchard)
        alerts, _ = list_alerts(conn, scope=orchard_scope(p), orchard_id=orchard, limit=20)
        end = latest_data_time(conn, orchard) or datetime.now(UTC)
        metrics = ["air_temp_c", "soil_vwc_10cm", "soil_vwc_30cm", "rain_mm"]
        week = sensor_series(conn, orchard, metrics, end - timedelta(days=7), end, "hour")
        season_start = datetime(end.year, 1, 1, tzinfo=UTC)
        if end - season_start < timedelta(days=17):
            season_start = end - timedelta(days=60)
        season = sensor_series(conn, orchard, metrics, season_start, end, "day")
        fc = orchard_forecast(conn, orchard)
        recs = list_farm_records(conn, orchard, limit=10)
        statement, contracts = _statements(conn, p, o["grower_id"] if o else None)
        expected = _expected_income(conn, o, contracts) if o else None
        notices = trade.notifications(conn, p, limit=5)
    return render(
        request,
        "grower.html",
        user=p,
        orchard=o,
        mine=mine,
        cond=cond,
        card_metrics=CARD_METRICS,
        alerts=alerts,
        week_fig=_series_fig(week, lang),
        season_fig=_series_fig(season, lang),
        forecast=fc,
        forecast_fig=_forecast_fig(fc, lang) if fc else None,
        records=recs[0],
        today=date.today().isoformat(),
        saved=saved,
        error=error,
        statement=statement,
        contracts=contracts,
        expected=expected,
        notices=notices,
    )


@router.post("/grower/records")
def add_record(
    request: Request,
    orchard_id: str = Form(max_length=64),
    observed_on: str = Form(max_length=10),
    kind: str = Form(max_length=20),
    value: str = Form(default="", max_length=20),
    note: str = Form(default="", max_length=2000),
    csrf_token: str = Form(default="", max_length=200),
) -> Any:
    """The record form's POST: CSRF-checked, scoped to the grower's orchards, then back to the page."""
    p = page_user(request, "grower", "manager", "admin")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    back = f"/grower?orchard={orchard_id}"
    try:
        day = date.fromisoformat(observed_on)
        val = float(value) if value.strip() else None
        if day > date.today() or day.year < 2000:
            raise ValueError("date out of range")
        if kind not in FARM_KINDS:
            raise ValueError("unknown kind")
        if val is not None and (val < 0 or (kind == "flower_density" and val > 1) or (kind == "pest" and val > 100)):
            raise ValueError("value out of range")
        if kind in ("flower_density", "fruit_set") and val is None:
            raise ValueError("value required")
    except ValueError as exc:
        return RedirectResponse(f"{back}&error={str(exc)[:100]}#record", status_code=303)
    with request.app.state.yc.pool.connection() as conn:
        require_orchard(conn, p, orchard_id)
        add_farm_record(
            conn, orchard_id=orchard_id, observed_on=day, kind=kind, value=val, note=note, recorded_by=p.username
        )
    return RedirectResponse(f"{back}&saved=1#record", status_code=303)
