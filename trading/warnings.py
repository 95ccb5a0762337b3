"""Unsold-risk early warning (滞销监测预警).

For each harvest week within ``horizon_weeks`` of ``as_of`` and each grade: the expected supply (the
latest forecast's P50, blacklisted suppliers excluded) minus the demand already matched to it
(committed + expected kg of the latest allocation run). When that uncovered volume is at least
``threshold_kg`` and at least ``threshold_share`` of the week's P50, a warning is raised through
``registry.alerts`` (kind ``unsold_risk``, one alert per season/week/grade, refreshed on every
evaluation and resolved once the risk is gone) with suggested actions, in order of preference:

1. ``shift_harvest`` — a neighbouring week of the same grade has unmet order demand: bring the harvest
   of part of the surplus forward or back to that week (guides growers on when to market);
2. ``cold_storage`` — free cold-room capacity can hold part of the surplus for later weeks
   (crisp plum keeps about 2-3 weeks at 0-2 °C);
3. ``open_to_institutional`` — offer the rest to the emergency channel: institutional buyers
   (budget units, trade unions, state e-shops: 以购代捐) flagged ``emergency_channel``.

Thresholds are *assumptions* (defaults 20 t and 20 % of the week's P50), configurable per call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from registry.alerts import Alert, raise_alerts, resolve_alerts
from registry.grades import BY_CODE
from trading.allocation import latest_run_id, supply_offer
from trading.errors import NotFound

KIND = "unsold_risk"


@dataclass
class UnsoldRiskWarning:
    season: int
    week_start: date
    grade: str
    p50_kg: Decimal
    matched_kg: Decimal          #: committed + expected kg allocated to orders
    surplus_kg: Decimal          #: p50 - matched
    surplus_share: float         #: surplus / p50
    severity: str                #: 'warning' (>= threshold_share) or 'critical' (>= 50 %)
    actions: list[dict[str, Any]] = field(default_factory=list)
    dedupe_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Warning = UnsoldRiskWarning


def _unmet_by_week_grade(conn: psycopg.Connection, season: int, weeks: list[date]) -> dict[tuple[date, str], Decimal]:
    """Shortfall kg of the latest run's orders, spread evenly over the forecast weeks of their window."""
    arid = latest_run_id(conn, season)
    out: dict[tuple[date, str], Decimal] = {}
    if arid is None:
        rows = conn.execute("SELECT grade, quantity_kg, week_from, week_to FROM orders WHERE season = %s "
                            "AND status = 'open'", (season,)).fetchall()
    else:
        rows = conn.execute(
            "SELECT o.grade, a.shortfall_kg, o.week_from, o.week_to FROM allocation_orders a JOIN orders o "
            "USING (order_id) WHERE a.alloc_run_id = %s AND a.shortfall_kg > 0 AND o.status <> 'cancelled' "
            "UNION ALL SELECT grade, quantity_kg, week_from, week_to FROM orders o WHERE season = %s "
            "AND status = 'open' AND NOT EXISTS (SELECT 1 FROM allocation_orders a WHERE a.alloc_run_id = %s "
            "AND a.order_id = o.order_id)", (arid, season, arid)).fetchall()
    for g, kg, wf, wt in rows:
        ws = [w for w in weeks if wf <= w <= wt]
        for w in ws:
            out[(w, g)] = out.get((w, g), Decimal(0)) + Decimal(kg) / len(ws)
    return out


def _free_storage_kg(conn: psycopg.Connection) -> Decimal:
    row = conn.execute(
        "SELECT coalesce((SELECT sum(capacity_kg) FROM cold_rooms WHERE active), 0) - "
        "coalesce((SELECT sum(lg.remaining_kg) FROM lot_grades lg JOIN lots l USING (lot_id) "
        "JOIN cold_rooms r USING (cold_room_id) WHERE r.active), 0)").fetchone()
    return max(Decimal(0), Decimal(row[0])) if row else Decimal(0)


def evaluate_unsold_risk(conn: psycopg.Connection, *, season: int, as_of: date, horizon_weeks: int = 3,
                         threshold_kg: Decimal | int = 20_000, threshold_share: float = 0.2,
                         raise_alert: bool = True) -> list[UnsoldRiskWarning]:
    """Warnings for the weeks starting within ``horizon_weeks`` after ``as_of`` (the week containing
    ``as_of`` included), most severe first; raises/refreshes/resolves the ``unsold_risk`` alerts."""
    offer = supply_offer(conn, season)
    weeks = sorted({r["week_start"] for r in offer})
    lo = as_of - timedelta(days=6)
    hi = as_of + timedelta(weeks=horizon_weeks)
    unmet = _unmet_by_week_grade(conn, season, weeks)
    free = _free_storage_kg(conn)
    emergency = [r[0] for r in conn.execute(
        "SELECT buyer_id FROM buyers WHERE emergency_channel ORDER BY buyer_id").fetchall()]
    out: list[UnsoldRiskWarning] = []
    for r in sorted(offer, key=lambda x: (x["week_start"], BY_CODE[x["grade"]].rank)):   # storage fills in time order
        w = r["week_start"]
        if not (lo <= w <= hi):
            continue
        p50 = r["p50_kg"]
        matched = r["committed_kg"] + r["expected_kg"]
        surplus = p50 - matched
        if p50 <= 0 or surplus < Decimal(threshold_kg) or surplus / p50 < Decimal(str(threshold_share)):
            continue
        share = float(surplus / p50)
        left = surplus
        actions: list[dict[str, Any]] = []
        for nb in (w - timedelta(weeks=1), w + timedelta(weeks=1)):
            need = unmet.get((nb, r["grade"]), Decimal(0))
            if need > 0 and left > 0:
                kg = min(need, left)
                left -= kg
                early = nb < w
                actions.append({
                    "action": "shift_harvest", "kg": kg.quantize(Decimal("1")), "to_week": nb,
                    "zh": f"建议{'提前' if early else '推迟'}一周采收约 {kg:.0f} 公斤, 对接该周未满足的订单",
                    "en": f"Harvest about {kg:.0f} kg one week {'earlier' if early else 'later'} to meet unfilled "
                          "orders that week"})
        if left > 0 and free > 0:
            kg = min(free, left)
            left -= kg
            actions.append({"action": "cold_storage", "kg": kg.quantize(Decimal("1")), "free_kg": free,
                            "zh": f"建议入冷库暂存约 {kg:.0f} 公斤 (冷库空余 {free:.0f} 公斤), 错峰销售",
                            "en": f"Move about {kg:.0f} kg to cold storage ({free:.0f} kg free) and sell later"})
            free -= kg          # the same free space is not offered twice
        if left > 0:
            actions.append({"action": "open_to_institutional", "kg": left.quantize(Decimal("1")),
                            "buyers": emergency,
                            "zh": f"建议将约 {left:.0f} 公斤开放给定向采购/应急收购渠道",
                            "en": f"Offer about {left:.0f} kg to institutional buyers (emergency channel)"})
        out.append(UnsoldRiskWarning(season, w, r["grade"], p50, matched, surplus, share,
                                     "critical" if share >= 0.5 else "warning", actions,
                                     f"{KIND}:{season}:{w.isoformat()}:{r['grade']}"))
    out.sort(key=lambda x: (-x.surplus_share, x.week_start, x.grade))
    if raise_alert:
        alerts = []
        for x in out:
            g = BY_CODE[x.grade]
            alerts.append(Alert(
                dedupe_key=x.dedupe_key, kind=KIND, severity=x.severity,
                title_zh=f"滞销预警: {x.week_start:%m月%d日}当周{g.label_zh}预计富余 {x.surplus_kg:.0f} 公斤 "
                         f"({x.surplus_share:.0%})",
                title_en=f"Unsold risk: week of {x.week_start:%d %b} {g.label_en} surplus "
                         f"{x.surplus_kg:.0f} kg ({x.surplus_share:.0%})",
                advice_zh="; ".join(a["zh"] for a in x.actions),
                advice_en="; ".join(a["en"] for a in x.actions),
                detail={"season": season, "week_start": x.week_start.isoformat(), "grade": x.grade,
                        "p50_kg": float(x.p50_kg), "matched_kg": float(x.matched_kg),
                        "surplus_kg": float(x.surplus_kg),
                        "actions": [{k: (float(v) if isinstance(v, Decimal) else
                                         v.isoformat() if isinstance(v, date) else v)
                                     for k, v in a.items()} for a in x.actions]}))
        with conn.transaction():
            raise_alerts(conn, alerts)
            resolve_alerts(conn, kind=KIND, keep_open={x.dedupe_key for x in out})
    return out


def scheduled_unsold_risk(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Scheduler entry point (``yuncang.jobs``): evaluate the season running at ``now`` (the models'
    season) as of the Asia/Shanghai date of ``now``, if it has a forecast; returns a small JSON-able detail."""
    from orchard_models.inputs import local_date, season_of

    season, today = season_of(now), local_date(now)
    try:
        found = evaluate_unsold_risk(conn, season=season, as_of=today)
    except NotFound as exc:
        return {"season": season, "skipped": str(exc)}
    return {"season": season, "warnings": len(found),
            "critical": sum(1 for w in found if w.severity == "critical")}
