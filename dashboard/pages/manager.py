"""Manager page: the cooperative (admin: all 1,546 orchards) at a glance — orchards by position and
elevation coloured by condition or risk, device health, alerts, supply against committed demand by
week with unsold-risk gaps, warehouse stock and income reaching poverty-alleviated households."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from typing import Any

import plotly.graph_objects as go
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from plotly.subplots import make_subplots

from dashboard import queries as q
from dashboard import trade
from dashboard.access import Principal, orchard_scope
from dashboard.i18n import lang_of, t
from dashboard.render import render
from dashboard.web import fig_json, page_user

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

#: Share of a week's forecast P50 left uncommitted above which the week is flagged as an unsold risk.
UNSOLD_GAP_SHARE = 0.3

_MONEY_KEYS = ("total_fen", "net_fen", "amount_fen", "income_fen", "total_income_fen", "payable_fen")
_KG_KEYS = ("allocated_kg", "kg", "quantity_kg", "p50_kg")


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


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for k in keys:
        v = d.get(k)
        if v is not None:
            try:
                return float(v)
            except (TypeError, ValueError):
                continue
    return None


def supply_demand(supply: list[dict[str, Any]], allocations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per harvest week: forecast P10/P50/P90 (kg, all grades) against committed kg from allocations,
    with the uncommitted share and whether it is an unsold-risk gap."""
    weeks: dict[Any, dict[str, Any]] = {}
    for r in supply:
        w = weeks.setdefault(
            str(r["week_start"]),
            {"week_start": str(r["week_start"]), "p10_kg": 0.0, "p50_kg": 0.0, "p90_kg": 0.0, "committed_kg": 0.0},
        )
        for k in ("p10_kg", "p50_kg", "p90_kg"):
            w[k] += r[k]
    committed: dict[str, float] = defaultdict(float)
    for a in allocations:
        wk = a.get("week_start") or a.get("week")
        kg = _first(a, _KG_KEYS)
        if wk and kg:
            committed[str(wk)[:10]] += kg
    for wk, kg in committed.items():
        weeks.setdefault(wk, {"week_start": wk, "p10_kg": 0.0, "p50_kg": 0.0, "p90_kg": 0.0, "committed_kg": 0.0})
        weeks[wk]["committed_kg"] = kg
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


def _safe(label: str, fn: Any, conn: Any, **kw: Any) -> list[dict[str, Any]]:
    try:
        return trade.rows(trade.call(fn, conn, **kw))
    except Exception:
        log.exception("manager page panel failed", extra={"panel": label})
        conn.rollback()
        return []


def poverty_income(conn: Any, statements: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Statement money (fen) split by whether the grower's household is poverty-alleviated (脱贫户)."""
    if not statements:
        return None
    ids = [s.get("grower_id") for s in statements if s.get("grower_id")]
    flags = dict(
        conn.execute(
            "SELECT g.grower_id, h.poverty_alleviated FROM growers g JOIN households h "
            "USING (household_id) WHERE g.grower_id = ANY(%s)",
            (ids,),
        ).fetchall()
    )
    out: dict[str, Any] = {"poor_fen": 0.0, "other_fen": 0.0, "poor_growers": 0, "other_growers": 0}
    for s in statements:
        fen = _first(s, _MONEY_KEYS) or 0.0
        if flags.get(s.get("grower_id")):
            out["poor_fen"] += fen
            out["poor_growers"] += 1
        else:
            out["other_fen"] += fen
            out["other_growers"] += 1
    total = out["poor_fen"] + out["other_fen"]
    out["poor_share"] = out["poor_fen"] / total if total else None
    return out


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
    allocations: list[dict[str, Any]] = []
    stock: list[dict[str, Any]] = []
    statements: list[dict[str, Any]] = []
    with request.app.state.yc.pool.connection() as conn:
        rows = q.orchard_overview(conn, scope=scope)
        health = q.device_health(conn, scope=scope, limit=15, only_silent=True)
        alerts, n_alerts = q.list_alerts(conn, role=p.role, grower_id=None, cooperative_id=p.cooperative_id, limit=15)
        supply = q.forecast_supply(conn, cooperative_id=coop)
        season = int(str(supply[0]["week_start"])[:4]) if supply else date.today().year
        fn = trade.function("allocation", "get_allocations")
        if fn:
            allocations = _safe("allocations", fn, conn, season=season, cooperative_id=coop)
        fn = trade.function("warehouse", "stock")
        if fn:
            stock = _safe("stock", fn, conn)
        fn = trade.function("settlement", "statements")
        if fn:
            statements = _safe("statements", fn, conn, season=season, cooperative_id=coop)
        income = poverty_income(conn, statements)
    weeks = supply_demand(supply, allocations)
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
        has_trading=trade.available("orders"),
        stock=stock,
        income=income,
        has_statements=trade.available("settlement"),
    )
