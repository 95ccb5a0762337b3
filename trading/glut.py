"""The emergency channel for a glut (滞销应急): targeted-procurement offers to institutional buyers.

When :func:`trading.warnings.evaluate_unsold_risk` warns that a week's grade will not sell (its P50
supply is not matched by orders), a manager opens the uncovered kg as an offer (:func:`open_offer`) at
a floor price (fen/kg) to the emergency channel: state-company e-shops, government budget units and
trade unions (buyers of kind ``state_eshop`` or ``institutional``, or flagged ``emergency_channel``),
the 定向采购 / 以购代捐 buyers the county's reports name.

Each partner accepts a quantity with one action (:func:`accept_offer`): the kg become a forward
order at the floor price for that week and grade (``orders.glut_offer_id``), never more in total than
the offer. :func:`plan_after_acceptance` then runs the allocation (the order is matched to orchards
like any other) and re-evaluates the warning, whose surplus shrinks by what was matched (and which
resolves once it falls under the thresholds).

:func:`partner_report` tracks per partner organisation the season's purchases — glut acceptances,
all forward orders (kg and value at their price) and spot purchases — against any pledge
(:func:`set_pledge`, in fen and/or kg). Money in integer fen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from registry.grades import GRADE_CODES
from trading import allocation, orders
from trading import warnings as unsold
from trading.errors import Conflict, Forbidden, Invalid, NotFound
from trading.orders import _kg

PARTNER_KINDS = ("state_eshop", "institutional")
PARTNER_SQL = "(b.kind IN ('state_eshop', 'institutional') OR b.emergency_channel)"


@dataclass
class GlutOffer:
    glut_offer_id: int
    season: int
    week_start: date
    grade: str
    offered_kg: Decimal
    floor_price_fen_per_kg: int
    warning_key: str
    surplus_kg: Decimal
    status: str
    opened_by: str
    opened_at: datetime
    closes_at: datetime | None
    note: str
    accepted_kg: Decimal = Decimal(0)
    remaining_kg: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _find_warning(conn: psycopg.Connection, season: int, week_start: date, grade: str,
                  as_of: date | None) -> unsold.UnsoldRiskWarning | None:
    found = unsold.evaluate_unsold_risk(conn, season=season, as_of=as_of or week_start, raise_alert=False)
    return next((w for w in found if w.week_start == week_start and w.grade == grade), None)


def get_offer(conn: psycopg.Connection, glut_offer_id: int) -> GlutOffer:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT g.*, coalesce((SELECT sum(kg) FROM glut_acceptances a
                                     WHERE a.glut_offer_id = g.glut_offer_id), 0) AS accepted_kg
               FROM glut_offers g WHERE glut_offer_id = %s""", (glut_offer_id,)).fetchone()
    if row is None:
        raise NotFound(f"glut offer {glut_offer_id} not found", "应急收购要约不存在", glut_offer_id=glut_offer_id)
    off = GlutOffer(**row)
    off.remaining_kg = max(Decimal(0), off.offered_kg - off.accepted_kg)
    return off


def list_offers(conn: psycopg.Connection, *, season: int | None = None, status: str | None = "open"
                ) -> list[GlutOffer]:
    ids = [r[0] for r in conn.execute(
        "SELECT glut_offer_id FROM glut_offers WHERE (%s::int IS NULL OR season = %s) "
        "AND (%s::text IS NULL OR status = %s) ORDER BY week_start, grade, glut_offer_id",
        (season, season, status, status)).fetchall()]
    return [get_offer(conn, i) for i in ids]


def open_offer(conn: psycopg.Connection, *, season: int, week_start: date, grade: str, floor_price_fen_per_kg: int,
               opened_by: str, kg: Any = None, as_of: date | None = None, closes_at: datetime | None = None,
               note: str = "") -> GlutOffer:
    """Open the uncovered kg of the unsold-risk warning for (season, week, grade) as a targeted-procurement
    offer. ``kg`` defaults to what the warning suggests opening to institutional buyers (else the whole
    surplus) and may not exceed the surplus. ``Conflict`` when no warning fires for that week and grade
    (evaluated ``as_of``, default the week's Monday) or an offer for it is already open."""
    if grade not in GRADE_CODES:
        raise Invalid(f"grade {grade!r} not in {GRADE_CODES}", "等级不正确", field="grade")
    if not isinstance(floor_price_fen_per_kg, int) or not 0 < floor_price_fen_per_kg <= 1_000_000:
        raise Invalid("floor_price_fen_per_kg must be an integer 1-1,000,000 fen", "保底价不正确",
                      field="floor_price_fen_per_kg")
    w = _find_warning(conn, season, week_start, grade, as_of)
    if w is None:
        raise Conflict(f"no unsold-risk warning for {grade} in the week of {week_start}",
                       "该周该等级没有滞销预警, 无需开启应急收购", week_start=week_start.isoformat(), grade=grade)
    suggested = next((Decimal(a["kg"]) for a in w.actions if a["action"] == "open_to_institutional"), None)
    surplus = w.surplus_kg.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    q = _kg(kg, "kg") if kg is not None else (suggested or surplus).quantize(Decimal("0.001"))
    if q > surplus:
        raise Invalid(f"offer of {q} kg exceeds the warning's surplus of {surplus} kg", "要约数量超过预计富余量",
                      field="kg", surplus_kg=str(surplus))
    with conn.transaction():
        try:
            with conn.transaction():
                row = conn.execute(
                    """INSERT INTO glut_offers (season, week_start, grade, offered_kg, floor_price_fen_per_kg,
                           warning_key, surplus_kg, opened_by, closes_at, note)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING glut_offer_id""",
                    (season, week_start, grade, q, floor_price_fen_per_kg, w.dedupe_key, surplus, opened_by,
                     closes_at, note)).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict("an offer for this week and grade is already open", "该周该等级已有应急收购要约") from exc
    assert row is not None
    return get_offer(conn, int(row[0]))


def close_offer(conn: psycopg.Connection, glut_offer_id: int) -> GlutOffer:
    with conn.transaction():
        if conn.execute("UPDATE glut_offers SET status = 'closed' WHERE glut_offer_id = %s",
                        (glut_offer_id,)).rowcount == 0:
            raise NotFound(f"glut offer {glut_offer_id} not found", "应急收购要约不存在")
    return get_offer(conn, glut_offer_id)


def accept_offer(conn: psycopg.Connection, glut_offer_id: int, *, buyer_id: str, kg: Any, actor: str,
                 destination: str | None = None) -> dict[str, Any]:
    """A partner organisation takes ``kg`` of an open offer: a forward order at the floor price for the
    offer's week and grade (delivered to ``destination``, default the buyer's city). Repeating the same
    acceptance returns it; another quantity from the same partner is a ``Conflict``, as is more than
    the offer has left. ``Forbidden`` for a buyer outside the emergency channel."""
    q = _kg(kg, "kg")
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            b = cur.execute(f"SELECT b.buyer_id, b.city, {PARTNER_SQL} AS partner FROM buyers b WHERE buyer_id = %s",
                            (buyer_id,)).fetchone()
            if b is None:
                raise NotFound(f"buyer {buyer_id} not found", "采购商不存在", buyer_id=buyer_id)
            if not b["partner"]:
                raise Forbidden("only institutional buyers (emergency channel) take glut offers",
                                "只有定向采购/应急渠道单位可以认购", buyer_id=buyer_id)
            off = cur.execute("SELECT * FROM glut_offers WHERE glut_offer_id = %s FOR UPDATE",
                              (glut_offer_id,)).fetchone()
            if off is None:
                raise NotFound(f"glut offer {glut_offer_id} not found", "应急收购要约不存在")
            prev = cur.execute("SELECT * FROM glut_acceptances WHERE glut_offer_id = %s AND buyer_id = %s",
                               (glut_offer_id, buyer_id)).fetchone()
            if prev is not None:
                if prev["kg"] != q:
                    raise Conflict(f"you already took {prev['kg']} kg of this offer", "您已认购过该要约",
                                   accepted_kg=str(prev["kg"]))
                return {**prev, "order": orders.get_order(conn, prev["order_id"]).to_dict(), "repeated": True}
            if off["status"] != "open" or (off["closes_at"] is not None and off["closes_at"] <= datetime.now(
                    off["closes_at"].tzinfo)):
                raise Conflict(f"glut offer {glut_offer_id} is closed", "该应急收购要约已关闭")
            taken = cur.execute("SELECT coalesce(sum(kg), 0) AS kg FROM glut_acceptances WHERE glut_offer_id = %s",
                                (glut_offer_id,)).fetchone()
            left = off["offered_kg"] - (taken["kg"] if taken else 0)
            if q > left:
                raise Conflict(f"the offer has {left} kg left, asked {q}", f"要约剩余 {left} 公斤",
                               remaining_kg=str(left))
        order = orders.place_order(
            conn, buyer_id=buyer_id, idempotency_key=f"glut-{glut_offer_id}", grade=off["grade"], quantity_kg=q,
            week_from=off["week_start"], week_to=off["week_start"], destination=destination or b["city"] or "wushan",
            price_fen_per_kg=off["floor_price_fen_per_kg"], floor_price_fen_per_kg=off["floor_price_fen_per_kg"])
        conn.execute("UPDATE orders SET glut_offer_id = %s WHERE order_id = %s", (glut_offer_id, order.order_id))
        with conn.cursor(row_factory=dict_row) as cur:
            acc = cur.execute(
                "INSERT INTO glut_acceptances (glut_offer_id, buyer_id, kg, price_fen_per_kg, order_id, actor) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                (glut_offer_id, buyer_id, q, off["floor_price_fen_per_kg"], order.order_id, actor)).fetchone()
        if left - q <= 0:
            conn.execute("UPDATE glut_offers SET status = 'closed' WHERE glut_offer_id = %s", (glut_offer_id,))
    return {**(acc or {}), "order": orders.get_order(conn, order.order_id).to_dict(), "repeated": False}


def plan_after_acceptance(conn: psycopg.Connection, glut_offer_id: int, *, as_of: date | None = None
                          ) -> dict[str, Any]:
    """Allocate the season (the accepted orders are matched to orchards) and re-evaluate its warnings;
    returns the allocation run, the offer's orders' committed kg and the warning for the offer's week
    and grade now (``None`` once resolved)."""
    off = get_offer(conn, glut_offer_id)
    run = allocation.allocate(conn, season=off.season)
    found = unsold.evaluate_unsold_risk(conn, season=off.season, as_of=as_of or off.week_start)
    now = next((w for w in found if w.week_start == off.week_start and w.grade == off.grade), None)
    ids = [r[0] for r in conn.execute("SELECT order_id FROM orders WHERE glut_offer_id = %s",
                                      (glut_offer_id,)).fetchall()]
    fills = {f.order_id: f for f in run.orders if f.order_id in ids}
    return {"alloc_run_id": run.alloc_run_id,
            "orders": [{"order_id": i, "committed_kg": fills[i].committed_kg if i in fills else Decimal(0),
                        "expected_kg": fills[i].expected_kg if i in fills else Decimal(0)} for i in ids],
            "warning": now.to_dict() if now else None, "surplus_kg_before": off.surplus_kg}


def set_pledge(conn: psycopg.Connection, *, buyer_id: str, season: int, pledged_fen: int | None = None,
               pledged_kg: Any = None, note: str = "") -> dict[str, Any]:
    """Record (or change) a partner's pledge for a season, in fen and/or kg."""
    if pledged_fen is None and pledged_kg is None:
        raise Invalid("a pledge needs pledged_fen or pledged_kg", "认购承诺需要金额或数量")
    if pledged_fen is not None and (not isinstance(pledged_fen, int) or pledged_fen < 0):
        raise Invalid("pledged_fen must be an integer >= 0", "承诺金额不正确", field="pledged_fen")
    kg = None if pledged_kg is None else _kg(pledged_kg, "pledged_kg")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM buyers WHERE buyer_id = %s", (buyer_id,)).fetchone() is None:
            raise NotFound(f"buyer {buyer_id} not found", "采购商不存在", buyer_id=buyer_id)
        conn.execute(
            """INSERT INTO partner_pledges (buyer_id, season, pledged_fen, pledged_kg, note) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (buyer_id, season) DO UPDATE SET pledged_fen = EXCLUDED.pledged_fen,
               pledged_kg = EXCLUDED.pledged_kg, note = EXCLUDED.note, updated_at = now()""",
            (buyer_id, season, pledged_fen, kg, note))
    return {"buyer_id": buyer_id, "season": season, "pledged_fen": pledged_fen, "pledged_kg": kg}


def partner_report(conn: psycopg.Connection, season: int) -> list[dict[str, Any]]:
    """Per partner organisation (emergency-channel buyers and any buyer with a pledge) for the season:
    ``glut_kg``/``glut_fen`` accepted from glut offers, ``ordered_kg``/``ordered_fen`` of all its live
    forward orders (glut ones included, value at the order price), ``spot_kg``/``spot_fen`` bought from
    stock (confirmed or delivered), ``purchased_fen`` = ordered + spot, the pledge and
    ``pledge_share`` = purchased / pledged (fen when pledged in fen, else kg; None without a pledge)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT b.buyer_id, b.name, b.kind, p.pledged_fen, p.pledged_kg,
                   coalesce((SELECT sum(a.kg) FROM glut_acceptances a JOIN glut_offers g USING (glut_offer_id)
                             WHERE a.buyer_id = b.buyer_id AND g.season = %(s)s), 0) AS glut_kg,
                   coalesce((SELECT sum(round(a.kg * a.price_fen_per_kg)) FROM glut_acceptances a
                             JOIN glut_offers g USING (glut_offer_id)
                             WHERE a.buyer_id = b.buyer_id AND g.season = %(s)s), 0)::bigint AS glut_fen,
                   coalesce((SELECT sum(o.quantity_kg) FROM orders o WHERE o.buyer_id = b.buyer_id
                             AND o.season = %(s)s AND o.status <> 'cancelled'), 0) AS ordered_kg,
                   coalesce((SELECT sum(round(o.quantity_kg * o.price_fen_per_kg)) FROM orders o
                             WHERE o.buyer_id = b.buyer_id AND o.season = %(s)s AND o.status <> 'cancelled'),
                            0)::bigint AS ordered_fen,
                   coalesce((SELECT sum(l.kg) FROM spot_sale_lines l JOIN spot_sales x USING (sale_id)
                             WHERE x.buyer_id = b.buyer_id AND x.status IN ('confirmed', 'delivered')
                               AND extract(year FROM x.created_at AT TIME ZONE 'Asia/Shanghai') = %(s)s), 0) AS spot_kg,
                   coalesce((SELECT sum(x.total_fen) FROM spot_sales x WHERE x.buyer_id = b.buyer_id
                             AND x.status IN ('confirmed', 'delivered')
                             AND extract(year FROM x.created_at AT TIME ZONE 'Asia/Shanghai') = %(s)s),
                            0)::bigint AS spot_fen
               FROM buyers b LEFT JOIN partner_pledges p ON p.buyer_id = b.buyer_id AND p.season = %(s)s
               WHERE {PARTNER_SQL} OR p.buyer_id IS NOT NULL ORDER BY b.buyer_id""", {"s": season}).fetchall()
    for r in rows:
        r["purchased_fen"] = int(r["ordered_fen"]) + int(r["spot_fen"])
        r["purchased_kg"] = r["ordered_kg"] + r["spot_kg"]
        if r["pledged_fen"]:
            r["pledge_share"] = r["purchased_fen"] / r["pledged_fen"]
        elif r["pledged_kg"]:
            r["pledge_share"] = float(r["purchased_kg"] / r["pledged_kg"])
        else:
            r["pledge_share"] = None
    return rows


def is_partner(conn: psycopg.Connection, buyer_id: str | None) -> bool:
    """Whether the buyer belongs to the emergency channel (takes glut offers)."""
    if not buyer_id:
        return False
    row = conn.execute(f"SELECT {PARTNER_SQL} FROM buyers b WHERE buyer_id = %s", (buyer_id,)).fetchone()
    return bool(row and row[0])


def season_warnings(conn: psycopg.Connection, season: int | None = None
                    ) -> tuple[int, list[unsold.UnsoldRiskWarning]]:
    """(season, its unsold-risk warnings over the whole harvest) for the glut page: the season of the
    newest forecast run unless given; no warnings (not an error) without a forecast."""
    if season is None:
        row = conn.execute("SELECT max(season) FROM forecast_runs").fetchone()
        season = int(row[0]) if row and row[0] else date.today().year
    first = conn.execute("SELECT min(f.week_start) FROM forecasts f JOIN forecast_runs r USING (run_id) "
                         "WHERE r.season = %s", (season,)).fetchone()
    if not first or first[0] is None:
        return season, []
    try:
        return season, unsold.evaluate_unsold_risk(conn, season=season, as_of=first[0], horizon_weeks=10,
                                                   raise_alert=False)
    except NotFound:
        return season, []
