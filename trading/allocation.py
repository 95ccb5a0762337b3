"""Allocation against the database: forecasts + orders in, allocation run + rows + notifications out.

``allocate`` reads a forecast run (``forecast_runs`` / ``forecasts`` of orchard_models), the season's
live orders, the registry (orchard positions, poverty-alleviated households, blacklist) and the cold
rooms' capacity, runs :func:`trading.matching.match`, and stores one ``allocation_runs`` row, its
``allocations`` rows (order, orchard, harvest week, delivery week, grade supplied, kg,
committed/expected) and per-order fills in ``allocation_orders`` (requested, committed, expected,
shortfall and the reason). When a previous run exists for the season it is a re-allocation: moves
against it are penalised and every buyer and grower whose volumes changed gets a notification in
``trading_notifications``. The first run notifies every buyer of their fill and every grower of
their commitments.

An allocated order is no longer amendable or cancellable (``trading.orders``). Runs are serialised
per season by a transaction-scoped advisory lock, and the season's orders are row-locked while a run
is computed, so an order cannot be cancelled half-way through an allocation.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from trading.errors import Invalid, NotFound
from trading.geo import LOCAL_FEN_PER_KG_KM, freight_fen_per_kg, road_km
from trading.matching import GRADE_ORDER, AllocRow, MatchParams, OrderDemand, SupplyGrid, match
from trading.quality import blacklisted_orchards
from trading.warehouse import storage_capacity_kg, warehouse_location

log = logging.getLogger(__name__)

CONFIDENCES = ("p10", "p50", "p90")
_NEXT = {"p10": "p50", "p50": "p90", "p90": None}
_GIDX = {g: i for i, g in enumerate(GRADE_ORDER)}
_LOCK_BASE = 0x7472616400000000  # 'trad' << 32


@dataclass
class OrderFill:
    order_id: str
    buyer_id: str
    grade: str
    requested_kg: Decimal
    committed_kg: Decimal
    expected_kg: Decimal
    shortfall_kg: Decimal
    reason: str


@dataclass
class Change:
    recipient_kind: str           #: 'buyer' or 'grower'
    recipient_id: str
    order_id: str | None
    orchard_id: str | None
    before: dict[str, Any]
    after: dict[str, Any]
    message_zh: str
    message_en: str


@dataclass
class AllocationResult:
    alloc_run_id: int
    season: int
    forecast_run_id: str
    confidence: str
    previous_run_id: int | None
    requested_kg: Decimal
    committed_kg: Decimal
    expected_kg: Decimal
    shortfall_kg: Decimal
    value_fen: int                #: order value minus transport and storage cost of the committed plan
    poor_share: float             #: share of committed kg from poverty-alleviated households' orchards
    orders: list[OrderFill] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    notifications: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def forecast_run(conn: psycopg.Connection, season: int, run_id: Any = None) -> Any:
    """The forecast run to use: ``run_id`` if given (``NotFound`` if absent), else the season's latest."""
    if run_id is not None:
        row = conn.execute("SELECT run_id FROM forecast_runs WHERE run_id::text = %s", (str(run_id),)).fetchone()
        if row is None:
            raise NotFound(f"forecast run {run_id} not found", f"预测批次 {run_id} 不存在")
        return row[0]
    row = conn.execute("SELECT run_id FROM forecast_runs WHERE season = %s ORDER BY as_of DESC, run_id DESC "
                       "LIMIT 1", (season,)).fetchone()
    if row is None:
        raise NotFound(f"no forecast run for season {season}", f"{season} 产季尚无产量预测")
    return row[0]


@dataclass
class _Supply:
    orchard_ids: list[str]
    weeks: list[date]
    q: dict[str, np.ndarray]           # 'p10'/'p50'/'p90' -> (O, W, G) kg


def load_supply(conn: psycopg.Connection, run: Any) -> _Supply:
    rows = conn.execute("SELECT orchard_id, week_start, grade, p10_kg, p50_kg, p90_kg FROM forecasts "
                        "WHERE run_id = %s", (run,)).fetchall()
    oids = sorted({r[0] for r in rows})
    weeks = sorted({r[1] for r in rows})
    oi = {o: i for i, o in enumerate(oids)}
    wi = {w: i for i, w in enumerate(weeks)}
    q = {k: np.zeros((len(oids), len(weeks), len(GRADE_ORDER))) for k in CONFIDENCES}
    for o, w, g, p10, p50, p90 in rows:
        if g not in _GIDX:
            continue
        idx = (oi[o], wi[w], _GIDX[g])
        q["p10"][idx] += float(p10 or 0)
        q["p50"][idx] += float(p50 or 0)
        q["p90"][idx] += float(p90 or 0)
    return _Supply(oids, weeks, q)


def _orchard_meta(conn: psycopg.Connection, oids: list[str], wh_lat: float, wh_lon: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    rows = conn.execute(
        """SELECT o.orchard_id, o.lat, o.lon, h.poverty_alleviated, o.grower_id
           FROM orchards o JOIN growers g USING (grower_id) JOIN households h USING (household_id)
           WHERE o.orchard_id = ANY(%s)""", (oids,)).fetchall()
    meta = {r[0]: r for r in rows}
    black = blacklisted_orchards(conn)
    n = len(oids)
    transport, poor, eligible = np.zeros(n), np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    grower: dict[str, str] = {}
    for i, o in enumerate(oids):
        m = meta.get(o)
        if m is None:          # forecast for an orchard no longer in the registry: not allocatable
            eligible[i] = False
            continue
        transport[i] = LOCAL_FEN_PER_KG_KM * road_km(m[1], m[2], wh_lat, wh_lon)
        poor[i] = bool(m[3])
        eligible[i] = o not in black
        grower[o] = m[4]
    return transport, poor, eligible, grower


def _params_json(p: MatchParams) -> dict[str, Any]:
    d = asdict(p)
    cap = d["capacity_kg_per_week"]
    if cap is not None and not isinstance(cap, int | float):
        d["capacity_kg_per_week"] = [float(c) for c in cap]
    return d


def allocate(conn: psycopg.Connection, *, season: int, run_id: Any = None, confidence: str = "p10",
             params: MatchParams | None = None, warehouse_id: str | None = None,
             notify: bool = True) -> AllocationResult:
    """Allocate the season's forecast supply to its live orders (see the module docstring).

    ``confidence``: the forecast quantile committed against ('p10' default: 90 % likely to be there);
    the rest up to the next quantile is offered as 'expected'. ``params``: :class:`MatchParams`
    (crate size, storage cost and capacity, poverty share, move penalty); the weekly cold-storage
    capacity defaults to the warehouse's cold rooms. Raises ``NotFound`` without forecasts or
    warehouse, ``Invalid`` for a bad confidence.
    """
    if confidence not in CONFIDENCES:
        raise Invalid(f"confidence must be one of {CONFIDENCES}", "置信水平不正确", field="confidence")
    params = params or MatchParams()
    t0 = time.perf_counter()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_BASE + int(season),))
        run = forecast_run(conn, season, run_id)
        sup = load_supply(conn, run)
        if not sup.orchard_ids:
            raise NotFound(f"forecast run {run} has no rows", "预测批次没有数据")
        wid, wlat, wlon = warehouse_location(conn, warehouse_id)
        if params.capacity_kg_per_week is None:
            params = MatchParams(**{**asdict(params),
                                    "capacity_kg_per_week": float(storage_capacity_kg(conn, wid))})
        transport, poor, eligible, grower = _orchard_meta(conn, sup.orchard_ids, wlat, wlon)
        with conn.cursor(row_factory=dict_row) as cur:
            orders = cur.execute(
                "SELECT order_id, buyer_id, grade, quantity_kg, week_from, week_to, destination, "
                "price_fen_per_kg, seq, status FROM orders WHERE season = %s AND status IN ('open', 'allocated', "
                "'fulfilled') ORDER BY seq FOR UPDATE", (season,)).fetchall()
        demands: list[OrderDemand] = []
        freight_cache: dict[str, float] = {}
        for o in orders:
            wf = bisect.bisect_left(sup.weeks, o["week_from"])
            wt = bisect.bisect_right(sup.weeks, o["week_to"]) - 1
            dest = o["destination"]
            if dest not in freight_cache:
                freight_cache[dest] = freight_fen_per_kg(dest, wlat, wlon)
            demands.append(OrderDemand(o["order_id"], o["grade"], float(o["quantity_kg"]), wf, wt,
                                       float(o["price_fen_per_kg"]) - freight_cache[dest], int(o["seq"]),
                                       o["status"] != "open"))
        grid = SupplyGrid(sup.orchard_ids, sup.weeks, np.floor(sup.q[confidence] + 1e-9), transport, poor,
                          eligible)
        nxt = _NEXT[confidence]
        prev_id, prev_c, prev_e, prev_orders, prev_orchard = _previous(conn, season, sup)
        t_load = time.perf_counter() - t0
        res = match(grid, demands, params, expected_kg=sup.q[nxt] if nxt else None,
                    previous_committed=prev_c, previous_expected=prev_e)
        t_match = time.perf_counter() - t0 - t_load

        req = sum((o["quantity_kg"] for o in orders), Decimal(0))
        com = Decimal(str(round(sum(v["committed_kg"] for v in res.orders.values()), 3)))
        exp_ = Decimal(str(round(sum(v["expected_kg"] for v in res.orders.values()), 3)))
        stats = {**{f"commit_{k}": v for k, v in res.commit.stats.items()}, "load_s": t_load,
                 "match_s": t_match, "orders": len(orders), "orchards": len(sup.orchard_ids),
                 "weeks": [w.isoformat() for w in sup.weeks]}
        row = conn.execute(
            """INSERT INTO allocation_runs (season, forecast_run_id, confidence, previous_run_id, params,
                   requested_kg, committed_kg, expected_kg, value_fen, poor_share, stats)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING alloc_run_id""",
            (season, str(run), confidence, prev_id, Jsonb(_params_json(params)), req, com, exp_,
             round(res.commit.value_fen), res.commit.poor_share, Jsonb(stats))).fetchone()
        assert row is not None
        arid = int(row[0])
        with conn.cursor().copy("COPY allocations (alloc_run_id, order_id, orchard_id, harvest_week, "
                                "delivery_week, grade, kg, status) FROM STDIN") as cp:
            agg: dict[tuple[Any, ...], float] = defaultdict(float)
            for status, r in res.rows:
                agg[(r.order_id, sup.orchard_ids[r.orchard], sup.weeks[r.harvest_week],
                     sup.weeks[r.delivery_week], r.grade, status)] += r.kg
            for (oid, orc, hw, dw, g, status), kg in agg.items():
                if kg >= 0.0005:
                    cp.write_row((arid, oid, orc, hw, dw, g, f"{kg:.3f}", status))
        by_id = {o["order_id"]: o for o in orders}
        fills: list[OrderFill] = []
        for d in demands:
            s = res.orders[d.order_id]
            q = by_id[d.order_id]["quantity_kg"]
            c = Decimal(f"{s['committed_kg']:.3f}")
            e = Decimal(f"{s['expected_kg']:.3f}")
            short = max(Decimal(0), q - c - e)
            fills.append(OrderFill(d.order_id, by_id[d.order_id]["buyer_id"], d.grade, q, c, e, short,
                                   _reason(d, short, c, len(sup.weeks))))
        with conn.cursor().copy("COPY allocation_orders (alloc_run_id, order_id, requested_kg, committed_kg, "
                                "expected_kg, shortfall_kg, reason) FROM STDIN") as cp:
            for f in fills:
                cp.write_row((arid, f.order_id, f.requested_kg, f.committed_kg, f.expected_kg, f.shortfall_kg,
                              f.reason))
        conn.execute("UPDATE orders SET status = 'allocated', updated_at = now() WHERE order_id = ANY(%s) "
                     "AND status = 'open'",
                     ([f.order_id for f in fills if f.committed_kg + f.expected_kg > 0],))
        changes = _changes(fills, prev_orders, prev_id is not None, res, sup, grower, prev_orchard)
        n_notes = _notify(conn, arid, changes, prev_id is not None) if notify else 0
    result = AllocationResult(arid, season, str(run), confidence, prev_id, req, com, exp_, req - com - exp_,
                              round(res.commit.value_fen), res.commit.poor_share, fills, changes, n_notes,
                              {**stats, "total_s": time.perf_counter() - t0})
    log.info("allocation run stored", extra={"alloc_run_id": arid, "season": season, "orders": len(fills),
                                             "committed_kg": float(com), "expected_kg": float(exp_),
                                             "changes": len(changes), "total_s": stats["match_s"]})
    return result


def _reason(d: OrderDemand, short: Decimal, committed: Decimal, n_weeks: int) -> str:
    if short <= 0:
        return ""
    if d.week_from > d.week_to or d.week_from >= n_weeks or d.week_to < 0:
        return "no forecast supply in the delivery window"
    if committed > 0 or short < d.quantity_kg:
        return "supply short in the window: shortfall shared pro rata among orders of the same grade and window"
    return "no supply left for this grade and window at the chosen confidence"


def _previous(conn: psycopg.Connection, season: int, sup: _Supply
              ) -> tuple[int | None, list[AllocRow], list[AllocRow], dict[str, tuple[Decimal, Decimal]],
                         dict[str, dict[str, float]]]:
    row = conn.execute("SELECT max(alloc_run_id) FROM allocation_runs WHERE season = %s", (season,)).fetchone()
    prev_id = row[0] if row else None
    if prev_id is None:
        return None, [], [], {}, {}
    oi = {o: i for i, o in enumerate(sup.orchard_ids)}
    wi = {w: i for i, w in enumerate(sup.weeks)}
    com: list[AllocRow] = []
    exp_: list[AllocRow] = []
    orchard: dict[str, dict[str, float]] = defaultdict(lambda: {"committed_kg": 0.0, "expected_kg": 0.0})
    for oid, orc, hw, dw, g, kg, status in conn.execute(
            "SELECT order_id, orchard_id, harvest_week, delivery_week, grade, kg, status FROM allocations "
            "WHERE alloc_run_id = %s", (prev_id,)).fetchall():
        orchard[orc][f"{status}_kg"] += float(kg)
        if orc in oi and hw in wi and dw in wi:
            r = AllocRow(oid, oi[orc], wi[hw], wi[dw], g, float(kg))
            (com if status == "committed" else exp_).append(r)
    orders = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT order_id, committed_kg, expected_kg FROM allocation_orders WHERE alloc_run_id = %s",
        (prev_id,)).fetchall()}
    return int(prev_id), com, exp_, orders, dict(orchard)


def _changes(fills: list[OrderFill], prev_orders: dict[str, tuple[Decimal, Decimal]], has_prev: bool,
             res: Any, sup: _Supply, grower: dict[str, str],
             prev_orchard: dict[str, dict[str, float]]) -> list[Change]:
    out: list[Change] = []
    tol = Decimal("0.5")
    for f in fills:
        pc, pe = prev_orders.get(f.order_id, (Decimal(0), Decimal(0)))
        if has_prev and abs(pc - f.committed_kg) < tol and abs(pe - f.expected_kg) < tol:
            continue
        before = {"committed_kg": str(pc), "expected_kg": str(pe)}
        after = {"committed_kg": str(f.committed_kg), "expected_kg": str(f.expected_kg),
                 "shortfall_kg": str(f.shortfall_kg), "reason": f.reason}
        if has_prev:
            zh = (f"订单 {f.order_id} 分配已调整: 确定量 {pc}→{f.committed_kg} 公斤, 预期量 {pe}→{f.expected_kg} "
                  f"公斤, 缺口 {f.shortfall_kg} 公斤")
            en = (f"Order {f.order_id} re-allocated: committed {pc}->{f.committed_kg} kg, expected "
                  f"{pe}->{f.expected_kg} kg, shortfall {f.shortfall_kg} kg")
        else:
            zh = (f"订单 {f.order_id} 已分配: 确定量 {f.committed_kg} 公斤, 预期量 {f.expected_kg} 公斤, "
                  f"缺口 {f.shortfall_kg} 公斤")
            en = (f"Order {f.order_id} allocated: committed {f.committed_kg} kg, expected {f.expected_kg} kg, "
                  f"shortfall {f.shortfall_kg} kg")
        out.append(Change("buyer", f.buyer_id, f.order_id, None, before, after, zh, en))
    now: dict[str, dict[str, float]] = defaultdict(lambda: {"committed_kg": 0.0, "expected_kg": 0.0})
    for status, r in res.rows:
        now[sup.orchard_ids[r.orchard]][f"{status}_kg"] += r.kg
    for orc in sorted(set(now) | set(prev_orchard)):
        a = now.get(orc, {"committed_kg": 0.0, "expected_kg": 0.0})
        b = prev_orchard.get(orc, {"committed_kg": 0.0, "expected_kg": 0.0})
        if all(abs(a[k] - b[k]) < 0.5 for k in a) or orc not in grower:
            continue
        ac, ae, bc, be = (round(a["committed_kg"], 1), round(a["expected_kg"], 1), round(b["committed_kg"], 1),
                          round(b["expected_kg"], 1))
        if has_prev:
            zh = f"果园 {orc} 的供货安排已调整: 确定供货 {bc}→{ac} 公斤, 预期供货 {be}→{ae} 公斤"
            en = f"Orchard {orc} supply plan changed: committed {bc}->{ac} kg, expected {be}->{ae} kg"
        else:
            zh = f"果园 {orc} 已纳入订单供货: 确定供货 {ac} 公斤, 预期供货 {ae} 公斤"
            en = f"Orchard {orc} now supplies orders: committed {ac} kg, expected {ae} kg"
        out.append(Change("grower", grower[orc], None, orc, {"committed_kg": bc, "expected_kg": be},
                          {"committed_kg": ac, "expected_kg": ae}, zh, en))
    return out


def _notify(conn: psycopg.Connection, arid: int, changes: list[Change], has_prev: bool) -> int:
    if not changes:
        return 0
    kind = "allocation_changed" if has_prev else "allocation_new"
    with conn.cursor().copy("COPY trading_notifications (recipient_kind, recipient_id, kind, alloc_run_id, "
                            "order_id, orchard_id, message_zh, message_en, detail) FROM STDIN") as cp:
        for c in changes:
            cp.write_row((c.recipient_kind, c.recipient_id, kind, arid, c.order_id, c.orchard_id, c.message_zh,
                          c.message_en, Jsonb({"before": c.before, "after": c.after})))
    return len(changes)


# ------------------------------------------------------------------------------------ reading

def latest_run_id(conn: psycopg.Connection, season: int) -> int | None:
    row = conn.execute("SELECT max(alloc_run_id) FROM allocation_runs WHERE season = %s", (season,)).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def get_allocations(conn: psycopg.Connection, *, order_id: str | None = None, orchard_id: str | None = None,
                    season: int | None = None, alloc_run_id: int | None = None, status: str | None = None,
                    buyer_id: str | None = None, cooperative_id: str | None = None,
                    limit: int = 100_000, offset: int = 0) -> list[dict[str, Any]]:
    """Allocation rows of one run (``alloc_run_id``, else the latest run of ``season``, else of the
    order's season, else of the latest season), optionally for one order / orchard / buyer /
    cooperative (the orchard's) / status. Each row: alloc_run_id, order_id, buyer_id, order_grade,
    orchard_id, harvest_week (= ``week_start``, the forecast week), delivery_week, grade (supplied),
    kg, status ('committed' or 'expected'). For totals per week use :func:`supply_offer`."""
    if status is not None and status not in ("committed", "expected"):
        raise Invalid("status must be 'committed' or 'expected'", "状态不正确", field="status")
    if not (1 <= limit <= 100_000) or offset < 0:
        raise Invalid("limit must be 1-100000 and offset >= 0", "分页参数不正确")
    if alloc_run_id is None:
        if season is None and order_id is not None:
            row = conn.execute("SELECT season FROM orders WHERE order_id = %s", (order_id,)).fetchone()
            if row is None:
                raise NotFound(f"order {order_id} not found", f"订单 {order_id} 不存在")
            season = int(row[0])
        if season is None:
            row = conn.execute("SELECT max(season) FROM allocation_runs").fetchone()
            season = row[0] if row else None
        alloc_run_id = latest_run_id(conn, season) if season is not None else None
        if alloc_run_id is None:
            return []
    conds: list[str] = ["a.alloc_run_id = %s"]
    args: list[Any] = [alloc_run_id]
    for col, val in (("a.order_id", order_id), ("a.orchard_id", orchard_id), ("a.status", status),
                     ("o.buyer_id", buyer_id), ("orc.cooperative_id", cooperative_id)):
        if val is not None:
            conds.append(f"{col} = %s")
            args.append(val)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"""SELECT a.alloc_run_id, a.order_id, o.buyer_id, o.grade AS order_grade, a.orchard_id,
                       a.harvest_week, a.harvest_week AS week_start, a.delivery_week, a.grade, a.kg, a.status
                FROM allocations a JOIN orders o USING (order_id) JOIN orchards orc USING (orchard_id)
                WHERE {' AND '.join(conds)}
                ORDER BY a.order_id, a.delivery_week, a.orchard_id, a.grade, a.status LIMIT %s OFFSET %s""",
            [*args, limit, offset]).fetchall()


def list_allocation_runs(conn: psycopg.Connection, *, season: int | None = None,
                         limit: int = 50) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT alloc_run_id, season, forecast_run_id, confidence, previous_run_id, requested_kg, "
            "committed_kg, expected_kg, value_fen, poor_share, created_at FROM allocation_runs "
            "WHERE (%s::int IS NULL OR season = %s) ORDER BY alloc_run_id DESC LIMIT %s",
            (season, season, limit)).fetchall()


def supply_offer(conn: psycopg.Connection, season: int, *, run_id: Any = None) -> list[dict[str, Any]]:
    """Public supply by week and grade: forecast P10/P50/P90 totals (kg, blacklisted suppliers
    excluded), committed and expected kg of the latest allocation run, ``offered_kg`` = P50 minus
    committed minus expected (never below 0) and ``firm_offered_kg`` = P10 minus committed."""
    run = forecast_run(conn, season, run_id)
    arid = latest_run_id(conn, season)
    from trading.quality import BLACKLISTED_ORCHARDS_SQL
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""WITH f AS (
                    SELECT week_start, grade, sum(p10_kg) AS p10_kg, sum(p50_kg) AS p50_kg, sum(p90_kg) AS p90_kg
                    FROM forecasts WHERE run_id = %s
                      AND orchard_id NOT IN ({BLACKLISTED_ORCHARDS_SQL})
                    GROUP BY 1, 2),
                a AS (
                    SELECT harvest_week AS week_start, grade,
                           sum(kg) FILTER (WHERE status = 'committed') AS committed_kg,
                           sum(kg) FILTER (WHERE status = 'expected') AS expected_kg
                    FROM allocations WHERE alloc_run_id = %s GROUP BY 1, 2)
                SELECT f.week_start, f.grade, f.p10_kg, f.p50_kg, f.p90_kg,
                       coalesce(a.committed_kg, 0) AS committed_kg, coalesce(a.expected_kg, 0) AS expected_kg
                FROM f LEFT JOIN a USING (week_start, grade)""", (run, arid)).fetchall()
    out = []
    for r in rows:
        p10, p50, p90 = (_dec(r["p10_kg"]), _dec(r["p50_kg"]), _dec(r["p90_kg"]))
        c, e = _dec(r["committed_kg"]), _dec(r["expected_kg"])
        out.append({"week_start": r["week_start"], "grade": r["grade"], "p10_kg": p10, "p50_kg": p50,
                    "p90_kg": p90, "committed_kg": c, "expected_kg": e,
                    "offered_kg": max(Decimal(0), p50 - c - e), "firm_offered_kg": max(Decimal(0), p10 - c)})
    out.sort(key=lambda d: (d["week_start"], _GIDX.get(d["grade"], 9)))
    return out


def _dec(v: Any) -> Decimal:
    """kg to the gram (forecast columns are double precision)."""
    return Decimal(str(round(float(v or 0), 3)))


def list_notifications(conn: psycopg.Connection, *, recipient_kind: str, recipient_id: str,
                       unread_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    if recipient_kind not in ("buyer", "grower"):
        raise Invalid("recipient_kind must be 'buyer' or 'grower'", "接收方类型不正确")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM trading_notifications WHERE recipient_kind = %s AND recipient_id = %s "
            "AND (NOT %s OR read_at IS NULL) ORDER BY created_at DESC, notification_id DESC LIMIT %s",
            (recipient_kind, recipient_id, unread_only, limit)).fetchall()


def mark_notification_read(conn: psycopg.Connection, notification_id: int) -> None:
    cur = conn.execute("UPDATE trading_notifications SET read_at = coalesce(read_at, now()) "
                       "WHERE notification_id = %s", (notification_id,))
    if cur.rowcount == 0:
        raise NotFound(f"notification {notification_id} not found", "通知不存在")


def reallocate_if_new_forecast(conn: psycopg.Connection, season: int, **kw: Any) -> AllocationResult | None:
    """Allocate when the season's latest forecast run differs from the one the latest allocation used
    (or there is no allocation yet); None when nothing is new or there is no forecast. ``kw`` go to
    :func:`allocate`."""
    try:
        run = forecast_run(conn, season)
    except NotFound:
        return None
    row = conn.execute("SELECT forecast_run_id FROM allocation_runs WHERE season = %s ORDER BY alloc_run_id DESC "
                       "LIMIT 1", (season,)).fetchone()
    if row is not None and row[0] == str(run):
        return None
    return allocate(conn, season=season, **kw)


def scheduled_allocation(conn: psycopg.Connection, now: Any) -> dict[str, Any]:
    """Scheduler entry point (``yuncang.jobs``): re-allocate the season running at ``now`` (the models'
    season: from 1 October the next harvest) after a new forecast run; returns a small JSON-able detail."""
    from orchard_models.inputs import season_of

    season = season_of(now)
    row = conn.execute("SELECT count(*) FROM orders WHERE season = %s AND status <> 'cancelled'", (season,)).fetchone()
    if not row or not row[0]:
        return {"season": season, "allocated": False, "reason": "no forward orders for the season"}
    res = reallocate_if_new_forecast(conn, season)
    if res is None:
        return {"season": season, "allocated": False, "reason": "no new forecast run"}
    return {"season": season, "allocated": True, "alloc_run_id": res.alloc_run_id,
            "committed_kg": float(res.committed_kg), "expected_kg": float(res.expected_kg),
            "shortfall_kg": float(res.shortfall_kg), "changes": len(res.changes),
            "notifications": res.notifications}
