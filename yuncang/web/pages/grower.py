"""Grower page (phone-first): my orchard now, alerts with advice, charts, forecast, contracts, record form."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from ingest.read import latest_conditions, latest_data_time, sensor_series
from orchard_models.fruit_counts import CountRecord, add_fruit_count
from orchard_models.observation_rules import check_farm_record
from orchard_models.read import FARM_KINDS, add_farm_record, list_farm_records, orchard_forecast, recent_fruit_counts
from registry.errors import Conflict
from registry.grades import BY_CODE
from registry.read import get_orchard, list_alerts, list_orchards
from trading.read import grower_contracts
from yuncang.auth import Principal
from yuncang.web import trade
from yuncang.web.access import orchard_scope
from yuncang.web.api.fruit_counts import CountIn
from yuncang.web.deps import check_csrf, page_user, require_orchard
from yuncang.web.figures import fig_json
from yuncang.web.i18n import grade as grade_label
from yuncang.web.i18n import lang_of, mass, t
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

CARD_METRICS = ("air_temp_c", "air_rh_pct", "soil_vwc_10cm", "soil_vwc_30cm", "soil_temp_10cm_c", "leaf_wetness_pct")


SHANGHAI = ZoneInfo("Asia/Shanghai")


def _small_fig(fig: go.Figure, *, y_title: str, y_range: list[float] | None = None) -> str:
    """One quantity per chart, sized for a 390 px phone: few ticks, month-day dates, no legend clutter."""
    fig.update_layout(height=180, showlegend=False, margin={"l": 44, "r": 8, "t": 8, "b": 28}, hovermode="x unified")
    fig.update_xaxes(type="date", tickformat="%m-%d", nticks=5, hoverformat="%m-%d %H:%M")
    fig.update_yaxes(title_text=y_title, nticks=4, range=y_range, fixedrange=True)
    out = fig_json(fig)
    return out.replace('"height": 300', '"height": 180', 1)


def _local(points: list[dict[str, Any]]) -> list[str]:
    """Bucket times as Asia/Shanghai wall-clock strings (Plotly draws dates as given)."""
    return [p["t"].astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") for p in points]


def quantity_figs(s: dict[str, Any], lang: str, prefix: str) -> list[tuple[str, str, str]]:
    """(element id, title, figure JSON) per quantity with data: air temperature (mean with its min-max
    band, °C), soil moisture at 10 and 30 cm (m³/m³, axis 0-0.5), rain per bucket (mm, axis from 0)."""
    by = {x["metric"]: x for x in s["series"]}
    label = "label_zh" if lang == "zh" else "label_en"
    out: list[tuple[str, str, str]] = []
    temp = by.get("air_temp_c")
    if temp and temp["points"]:
        pts, ts = temp["points"], _local(temp["points"])
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=ts, y=[p["max"] for p in pts], line={"width": 0}, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=ts, y=[p["min"] for p in pts], fill="tonexty", line={"width": 0},
                                 fillcolor="rgba(198,40,40,.15)", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=ts, y=[p["avg"] for p in pts], line={"color": "#c62828", "width": 1.5},
                                 name=temp[label]))
        out.append((f"{prefix}-chart", f"{temp[label]} (°C)", _small_fig(fig, y_title="°C")))
    soil = [by[m] for m in ("soil_vwc_10cm", "soil_vwc_30cm") if m in by and by[m]["points"]]
    if soil:
        fig = go.Figure()
        for sm, colour in zip(soil, ("#6d4c41", "#a1887f"), strict=False):
            fig.add_trace(go.Scatter(x=_local(sm["points"]), y=[p["avg"] for p in sm["points"]],
                                     line={"color": colour, "width": 1.5}, name=sm[label]))
        title = " / ".join(sm[label] for sm in soil)
        out.append((f"{prefix}-soil-chart", f"{title} (m³/m³)", _small_fig(fig, y_title="m³/m³", y_range=[0, 0.5])))
    rain = by.get("rain_mm")
    if rain and rain["points"]:
        ys = [max(0.0, p["sum"] or 0.0) for p in rain["points"]]
        fig = go.Figure(go.Bar(x=_local(rain["points"]), y=ys, marker_color="#1565c0", name=rain[label]))
        out.append((f"{prefix}-rain-chart", f"{rain[label]} (mm)",
                    _small_fig(fig, y_title="mm", y_range=[0, max(1.0, max(ys) * 1.15)])))
    return out


def forecast_words(f: dict[str, Any], lang: str) -> str | None:
    """The forecast in plain words: how much (P50), when (harvest window) and how sure (P10-P90)."""
    if f.get("total_p50_kg") is None:
        return None
    def day(d: date | None) -> str:
        if d is None:
            return "—"
        return f"{d.month}月{d.day}日" if lang == "zh" else d.strftime("%d %b")
    return t("forecast_words", lang).format(
        start=day(f.get("harvest_start")), end=day(f.get("harvest_end")), p50=mass(f["total_p50_kg"], lang),
        p10=mass(f["total_p10_kg"], lang), p90=mass(f["total_p90_kg"], lang))


def contract_weeks(contracts: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Contracted kg (committed + expected) by harvest week and grade, with the week's value (fen):
    (grade codes present, best first; one row per week)."""
    grades = sorted({c["grade"] for c in contracts}, key=lambda c: BY_CODE[c].rank if c in BY_CODE else 9)
    weeks: dict[Any, dict[str, Any]] = {}
    for c in contracts:
        w = weeks.setdefault(c["harvest_week"], {"week": c["harvest_week"], "kg": {}, "total_kg": 0.0,
                                                 "committed_kg": 0.0, "revenue_fen": 0})
        w["kg"][c["grade"]] = w["kg"].get(c["grade"], 0.0) + float(c["kg"])
        w["total_kg"] += float(c["kg"])
        if c["status"] == "committed":
            w["committed_kg"] += float(c["kg"])
        w["revenue_fen"] += int(c["revenue_fen"] or 0)
    return grades, [weeks[k] for k in sorted(weeks)]


def _forecast_fig(f: dict[str, Any], lang: str) -> str | None:
    if not f["weeks"]:
        return None
    fig = go.Figure()
    for code in sorted({w["grade"] for w in f["weeks"]}, key=lambda c: BY_CODE[c].rank if c in BY_CODE else 9):
        rows = [w for w in f["weeks"] if w["grade"] == code]
        fig.add_trace(
            go.Bar(
                x=[w["week_start"] for w in rows],
                y=[w["p50_kg"] for w in rows],
                name=grade_label(code, lang),
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
    fig.update_layout(barmode="group", yaxis_title=f"{t('unit_kg', lang)} (P50, P10–P90)")
    fig.update_xaxes(tickformat="%m-%d")
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
    counted: int = Query(default=0),
    count_error: str | None = Query(default=None, max_length=200),
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
        counts = recent_fruit_counts(conn, orchard, limit=5)
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
        week_figs=quantity_figs(week, lang, "week"),
        season_figs=quantity_figs(season, lang, "season"),
        forecast_text=forecast_words(fc, lang) if fc else None,
        contract_grades=contract_weeks(contracts)[0],
        contract_weeks=contract_weeks(contracts)[1],
        kinds={k: t("kind_" + k, lang) for k in FARM_KINDS},
        forecast=fc,
        forecast_fig=_forecast_fig(fc, lang) if fc else None,
        records=recs[0],
        today=date.today().isoformat(),
        saved=saved,
        error=error,
        counts=counts,
        counted=counted,
        count_error=count_error,
        count_client_id=str(uuid.uuid4()),  # the no-script form's id: sending the same page twice is one count
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
        check_farm_record(kind, val, day)
    except ValueError as exc:
        return RedirectResponse(f"{back}&error={str(exc)[:100]}#record", status_code=303)
    with request.app.state.yc.pool.connection() as conn:
        require_orchard(conn, p, orchard_id)
        add_farm_record(
            conn, orchard_id=orchard_id, observed_on=day, kind=kind, value=val, note=note, recorded_by=p.username
        )
    return RedirectResponse(f"{back}&saved=1#record", status_code=303)


@router.post("/grower/fruit-counts")
def add_counts(
    request: Request,
    orchard_id: str = Form(max_length=64),
    client_id: str = Form(max_length=100),
    counted_on: str = Form(max_length=10),
    tree_id: list[str] = Form(default=[], max_length=200),
    fruit: list[str] = Form(default=[], max_length=200),
    mean_fruit_g: str = Form(default="", max_length=20),
    csrf_token: str = Form(default="", max_length=200),
) -> Any:
    """The fruit-count form's POST without script (the page's script sends the same body to
    ``POST /api/v1/orchards/{id}/fruit-counts`` through its offline outbox): rows without a count are
    skipped, the rest validated as the API does, then back to the page."""
    p = page_user(request, "grower", "manager", "admin")
    if not isinstance(p, Principal):
        return p
    check_csrf(request, p, csrf_token)
    back = f"/grower?orchard={orchard_id}"
    lang = lang_of(request)
    trees = [{"tree_id": (tid.strip() or str(k + 1)), "fruit": n.strip()}
             for k, (tid, n) in enumerate(zip(tree_id, fruit, strict=False)) if n.strip()]
    if not trees:
        return RedirectResponse(f"{back}&count_error={t('count_need_trees', lang)}#fruit-counts", status_code=303)
    try:
        body = CountIn(client_id=client_id, counted_on=counted_on, trees=trees,  # type: ignore[arg-type]
                       mean_fruit_g=mean_fruit_g.strip() or None)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg', '')}"
        return RedirectResponse(f"{back}&count_error={msg[:150]}#fruit-counts", status_code=303)
    try:
        with request.app.state.yc.pool.connection() as conn:
            require_orchard(conn, p, orchard_id)
            add_fruit_count(conn, CountRecord(client_id=body.client_id, orchard_id=orchard_id,
                                              counted_on=body.counted_on, tree_ids=[x.tree_id for x in body.trees],
                                              fruit_per_tree=[x.fruit for x in body.trees],
                                              mean_fruit_g=body.mean_fruit_g, recorded_by=p.username))
    except Conflict as exc:  # the same page's form sent again with other numbers
        return RedirectResponse(f"{back}&count_error={exc.zh if lang == 'zh' else exc}"[:300] + "#fruit-counts",
                                status_code=303)
    return RedirectResponse(f"{back}&counted=1#fruit-counts", status_code=303)
