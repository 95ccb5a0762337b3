"""Manager page: the cooperative (admin: all 1,546 orchards) at a glance — orchards by position and
elevation coloured by condition or risk, device health, alerts, supply against committed demand by
week with unsold-risk gaps, warehouse stock and income reaching poverty-alleviated households."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from plotly.subplots import make_subplots

from ingest.read import device_health, newest_hourly_value
from orchard_models.read import forecast_supply, forecast_totals
from registry.read import list_alerts, orchard_points
from yuncang.auth import Principal
from yuncang.scheduler import recent_job_runs
from yuncang.web import trade
from yuncang.web.access import orchard_scope
from yuncang.web.deps import page_user
from yuncang.web.figures import fig_json
from yuncang.web.i18n import lang_of, t
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

#: Share of a week's forecast P50 left uncommitted above which the week is flagged as an unsold risk.
UNSOLD_GAP_SHARE = 0.3


def risk_score(risk: Any) -> float | None:
    """One number for colouring: the largest numeric value among the forecast's risk indices (0-1 scale
    as orchard_models reports them), None without a forecast."""
    if not isinstance(risk, dict):
        return None
    vals = [float(v) for v in risk.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return max(vals) if vals else None


def overview_fig(rows: list[dict[str, Any]], colour: str, lang: str) -> str | None:
    if not rows:
        return None
    if colour == "risk":
        c = [risk_score(r["risk"]) for r in rows]
        title, scale = t("c_risk", lang), "YlOrRd"
    elif colour == "alerts":
        c = [r["open_alerts"] for r in rows]
        title, scale = t("c_alerts", lang), "Reds"
    elif colour == "elevation":
        c = [r["elevation_m"] for r in rows]
        title, scale = t("c_elevation", lang) + " (m)", "Viridis"
    else:
        c = [r["soil_vwc"] for r in rows]
        title, scale = t("c_moisture", lang) + " (m³/m³)", "BrBG"
    ranges = {"moisture": (0.0, 0.5), "risk": (0.0, 1.0)}
    text = [f"{r['orchard_id']} {r['name']}<br>{r['elevation_m']} m · {r['area_mu']:.1f} mu" for r in rows]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        subplot_titles=("经纬度" if lang == "zh" else "Position", t("elevation_m", lang)),
    )
    has = [i for i, v in enumerate(c) if v is not None]
    missing = [i for i, v in enumerate(c) if v is None]
    for idx, coloured in ((missing, False), (has, True)):
        if not idx:
            continue
        marker: dict[str, Any] = {"size": 6, "opacity": 0.85}
        if coloured:
            marker.update(
                color=[c[i] for i in idx],
                colorscale=scale,
                showscale=True,
                colorbar={"title": {"text": title}, "len": 0.8},
            )
            if colour in ranges:
                marker.update(cmin=ranges[colour][0], cmax=ranges[colour][1])
        else:
            marker.update(color="#cfcfcf")
        name = title if coloured else ("无数据" if lang == "zh" else "no data")
        fig.add_trace(
            go.Scattergl(
                x=[rows[i]["lon"] for i in idx],
                y=[rows[i]["lat"] for i in idx],
                mode="markers",
                marker=marker,
                text=[text[i] for i in idx],
                customdata=[rows[i]["orchard_id"] for i in idx],
                hoverinfo="text",
                name=name,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scattergl(
                x=[rows[i]["elevation_m"] for i in idx],
                y=[rows[i]["area_mu"] for i in idx],
                mode="markers",
                marker={**marker, "showscale": False},
                text=[text[i] for i in idx],
                customdata=[rows[i]["orchard_id"] for i in idx],
                hoverinfo="text",
                name=name,
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="lon °E", row=1, col=1)
    fig.update_yaxes(title_text="lat °N", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(title_text="m", row=1, col=2)
    fig.update_yaxes(title_text="mu", type="log", row=1, col=2)
    out = fig_json(fig)
    return out.replace('"height": 300', '"height": 460', 1)


def orchard_overview(conn: Any, scope: Any) -> list[dict[str, Any]]:
    """Every visible orchard with position, elevation, open alert count (registry), newest soil moisture
    at 10 cm (ingest's hourly rollup, m³/m³) and forecast risk and P50 kg (orchard_models), for the
    scatter: one query per owner package, no per-orchard round trips."""
    rows = orchard_points(conn, scope=scope)
    ids = [r["orchard_id"] for r in rows]
    vwc = newest_hourly_value(conn, ids, "soil_vwc_10cm")
    fc = forecast_totals(conn, ids)
    for r in rows:
        r["soil_vwc"] = vwc.get(r["orchard_id"])
        r["risk"], r["total_p50_kg"] = fc.get(r["orchard_id"], (None, None))
    return rows


def supply_demand(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per harvest week (all grades): forecast P10/P50/P90 kg against kg matched to orders (committed +
    expected, from trading's latest allocation run), the uncommitted share, and whether it is an
    unsold-risk gap (more than UNSOLD_GAP_SHARE of P50 unmatched)."""
    weeks: dict[str, dict[str, Any]] = {}
    for r in rows:
        wk = str(r["week_start"])
        w = weeks.setdefault(wk, {"week_start": wk, "p10_kg": 0.0, "p50_kg": 0.0, "p90_kg": 0.0, "committed_kg": 0.0})
        for k in ("p10_kg", "p50_kg", "p90_kg"):
            w[k] += float(r[k])
        w["committed_kg"] += float(r.get("committed_kg") or 0) + float(r.get("expected_kg") or 0)
    out = sorted(weeks.values(), key=lambda w: w["week_start"])
    for w in out:
        free = w["p50_kg"] - w["committed_kg"]
        w["uncommitted_kg"] = free
        w["gap"] = w["p50_kg"] > 0 and free / w["p50_kg"] > UNSOLD_GAP_SHARE
    return out


def supply_demand_fig(weeks: list[dict[str, Any]], lang: str) -> str | None:
    if not weeks:
        return None
    x = [w["week_start"] for w in weeks]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=x,
            y=[w["p50_kg"] for w in weeks],
            name=t("supply_p50_kg", lang),
            marker_color=["#ef6c00" if w["gap"] else "#8d6e63" for w in weeks],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [w["p90_kg"] - w["p50_kg"] for w in weeks],
                "arrayminus": [w["p50_kg"] - w["p10_kg"] for w in weeks],
            },
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[w["committed_kg"] for w in weeks],
            mode="lines+markers",
            name=t("committed_kg", lang),
            line={"color": "#1565c0"},
        )
    )
    fig.update_layout(yaxis_title="kg")
    return fig_json(fig)


@router.get("/manager", response_class=HTMLResponse)
def manager_page(
    request: Request, colour: str = Query(default="moisture", pattern="^(moisture|risk|alerts|elevation)$")
) -> Any:
    p = page_user(request, "manager", "admin")
    if not isinstance(p, Principal):
        return p
    lang = lang_of(request)
    scope = orchard_scope(p)
    coop = p.cooperative_id if p.role == "manager" else None
    with request.app.state.yc.pool.connection() as conn:
        rows = orchard_overview(conn, scope)
        health = device_health(conn, scope=scope, limit=15, only_silent=True)
        alerts, n_alerts = list_alerts(conn, scope=scope, limit=15)
        season = trade.current_season(conn)
        # supply against matched demand: the cooperative's own forecast for a manager (orders are
        # matched county-wide, so matched kg are the cooperative orchards' allocations), all for admin
        if coop is None:
            sd_rows = trade.supply_offer(conn, season) or forecast_supply(conn)
        else:
            sd_rows = _coop_supply(conn, p, coop)
        warnings = trade.unsold_risk(conn, season, _first_harvest_week(sd_rows)) if coop is None else []
        stock = trade.stock(conn, p)
        try:
            rep = trade.statements(conn, p, season=season)
        except trade.TradingError:
            conn.rollback()
            rep = None
        runs, _ = recent_job_runs(conn, limit=12)
    weeks = supply_demand(sd_rows)
    return render(
        request,
        "manager.html",
        user=p,
        n_orchards=len(rows),
        colour=colour,
        overview_fig=overview_fig(rows, colour, lang),
        health=health,
        alerts=alerts,
        n_alerts=n_alerts,
        weeks=weeks,
        sd_fig=supply_demand_fig(weeks, lang),
        warnings=warnings,
        stock=stock,
        rooms=_rooms(stock),
        report=rep,
        season=season,
        job_runs=[_job_row(r) for r in runs],
    )


def _job_row(r: dict[str, Any]) -> dict[str, Any]:
    """A job run for the page: local (Asia/Shanghai) start time and duration in s."""
    seconds = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None
    local = r["started_at"].astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M:%S")
    return {**r, "seconds": seconds, "started_local": local}


def _first_harvest_week(rows: list[dict[str, Any]]) -> date:
    """``as_of`` for trading.warnings: the first forecast harvest week (or today), so the warning
    horizon covers the coming harvest even when the page is opened before it."""
    weeks = sorted(r["week_start"] for r in rows)
    today = date.today()
    return max(today, weeks[0]) if weeks and weeks[-1] >= today else (weeks[0] if weeks else today)


def _coop_supply(conn: Any, p: Principal, coop: str) -> list[dict[str, Any]]:
    supply = forecast_supply(conn, cooperative_id=coop)
    allocs, _ = trade.allocations(conn, p, limit=100_000)
    matched: dict[tuple[str, str], float] = defaultdict(float)
    for a in allocs:
        matched[(str(a["harvest_week"]), a["grade"])] += float(a["kg"])
    return [{**r, "committed_kg": matched.get((str(r["week_start"]), r["grade"]), 0.0)} for r in supply]


def _rooms(stock: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stock rows folded per cold room: capacity, kg held, fill share, kg by grade."""
    rooms: dict[str, dict[str, Any]] = {}
    for r in stock:
        room = rooms.setdefault(
            r["cold_room_id"],
            {
                "cold_room_id": r["cold_room_id"],
                "name": r["name"],
                "capacity_kg": float(r["capacity_kg"]),
                "kg": 0.0,
                "lots": 0,
                "grades": {},
            },
        )
        if r["grade"]:
            room["kg"] += float(r["kg"])
            room["lots"] += int(r["lots"])
            room["grades"][r["grade"]] = float(r["kg"])
    for room in rooms.values():
        room["fill"] = room["kg"] / room["capacity_kg"] if room["capacity_kg"] else None
    return list(rooms.values())
