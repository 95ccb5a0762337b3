"""Settlement and benefit linkage (利益联结): a cooperative's payment rules as data, grower statements.

The default rule set is the reported Wanzhou 四分 model: a management fee of 4.5 yuan per plant per
year, a picking fee of 1.2 yuan per jin picked (1 jin = 0.5 kg), and a dividend on the sales revenue
of the grower's fruit of 2 % when the yield is under 10 jin per plant, 3 % at 10 jin or more.

For one grower and season:

* ``plants`` = trees on the grower's orchards (registry ``tree_count``);
* ``picked_kg`` = kg received into the warehouse from lots of those orchards harvested in the season;
  ``picked_jin`` = 2 x ``picked_kg``; ``jin_per_plant`` = ``picked_jin / plants``;
* ``revenue_fen`` = sum of the shipments' amounts from those lots (kg x price paid, integer fen);
* ``management_fee_fen`` = plants x fee; ``picking_fee_fen`` = round(picked_jin x fee per jin);
  ``dividend_fen`` = round(revenue_fen x rate_bp / 10,000), rate from the highest tier whose
  ``min_jin_per_plant`` <= jin_per_plant; ``total_fen`` = the sum.

Following the money (issue 17): ``revenue_fen`` counts every sale of the grower's fruit — forward
shipments and delivered spot sales (online and hall counter) — listed in ``sales`` by channel, grade
and price. A rule set may further

* buy the fruit at **grade prices** (``grade_prices``, fen/kg): ``fruit_payment_fen`` = sum over
  grades of round(received kg x price); shrink and loss recorded between harvest and sale
  (``lot_losses``) are deducted at the same prices when ``losses_borne_by_grower``
  (``loss_deduction_fen``);
* return a **patronage refund** (按交易量返还) when ``patronage_share_bp`` is set: per cooperative, the
  distributable surplus = its growers' revenue - fruit payments + loss deductions - fees - dividends -
  ``handling_fen_per_kg`` x kg sold; ``patronage_share_bp`` of it (China's Farmers' Professional
  Cooperatives Law, art. 44: at least 60 %, so 6,000-10,000 bp) is shared by transaction volume
  (each grower's ``revenue_fen``), in whole fen by largest remainder so the shares add up exactly.

``total_fen`` = management + picking + dividend + fruit payment - loss deduction + patronage refund.
All money is integer fen; rounding is half-up, once per line. Rules are looked up per cooperative:
the grower's cooperative's rule set with the latest ``valid_from_season`` <= season, else the default
(cooperative NULL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from trading.errors import Conflict, Invalid, NotFound

JIN_PER_KG = Decimal(2)


@dataclass(frozen=True)
class RuleSet:
    rule_set_id: str
    cooperative_id: str | None
    name: str
    valid_from_season: int
    management_fee_fen_per_plant_year: int
    picking_fee_fen_per_jin: int
    dividend_tiers: tuple[tuple[Decimal, int], ...]   #: (min_jin_per_plant, rate in basis points)
    grade_prices: tuple[tuple[str, int], ...] = ()     #: (grade, fen/kg) paid for received fruit; () = none
    losses_borne_by_grower: bool = True
    handling_fen_per_kg: int = 0                       #: cooperative's cost per kg sold, before the surplus
    patronage_share_bp: int | None = None              #: share of distributable surplus returned (>= 6000)

    def grade_price(self, grade: str) -> int:
        return dict(self.grade_prices).get(grade, 0)

    def dividend_rate_bp(self, jin_per_plant: Decimal) -> int:
        rate = 0
        for lo, bp in sorted(self.dividend_tiers):
            if jin_per_plant >= lo:
                rate = bp
        return rate


@dataclass
class Statement:
    grower_id: str
    grower_name: str
    cooperative_id: str | None
    poverty_alleviated: bool
    season: int
    rule_set_id: str
    orchards: list[str]
    plants: int
    picked_kg: Decimal
    picked_jin: Decimal
    jin_per_plant: Decimal
    revenue_fen: int
    management_fee_fen: int
    picking_fee_fen: int
    dividend_rate_bp: int
    dividend_fen: int
    total_fen: int
    sold_kg: Decimal = Decimal(0)
    lost_kg: Decimal = Decimal(0)
    fruit_payment_fen: int = 0
    loss_deduction_fen: int = 0
    patronage_fen: int = 0
    #: one per (channel, grade, price): {"channel": "forward"|"online"|"hall", "grade", "price_fen_per_kg",
    #: "kg", "amount_fen"}
    sales: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StatementReport:
    season: int
    statements: list[Statement]
    totals: dict[str, int] = field(default_factory=dict)               #: all growers in scope, fen
    poverty_alleviated: dict[str, int] = field(default_factory=dict)   #: reaching 脱贫户 households, fen
    #: per cooperative with a patronage refund: surplus_fen, distributable_fen, patronage_pool_fen, ...
    cooperatives: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __iter__(self) -> Iterator[Statement]:
        """Iterating a report iterates its statements."""
        return iter(self.statements)

    def __len__(self) -> int:
        return len(self.statements)


def _fen(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_UP))


def _rule(row: dict[str, Any]) -> RuleSet:
    tiers = row["dividend_tiers"]
    if isinstance(tiers, str):
        tiers = json.loads(tiers)
    prices = row.get("grade_prices") or {}
    if isinstance(prices, str):
        prices = json.loads(prices)
    return RuleSet(row["rule_set_id"], row["cooperative_id"], row["name"], row["valid_from_season"],
                   row["management_fee_fen_per_plant_year"], row["picking_fee_fen_per_jin"],
                   tuple((Decimal(str(t["min_jin_per_plant"])), int(t["rate_bp"])) for t in tiers),
                   tuple(sorted((str(g), int(p)) for g, p in prices.items())),
                   bool(row.get("losses_borne_by_grower", True)), int(row.get("handling_fen_per_kg") or 0),
                   row.get("patronage_share_bp"))


def save_rule_set(conn: psycopg.Connection, *, rule_set_id: str, cooperative_id: str | None, name: str,
                  valid_from_season: int, management_fee_fen_per_plant_year: int, picking_fee_fen_per_jin: int,
                  dividend_tiers: list[dict[str, Any]], grade_prices: dict[str, int] | None = None,
                  losses_borne_by_grower: bool = True, handling_fen_per_kg: int = 0,
                  patronage_share_bp: int | None = None) -> RuleSet:
    """Create a cooperative's rule set. ``Invalid`` for negative fees or prices, bad tiers, or a patronage
    share under the law's 60 % (6,000 bp); ``Conflict`` if the id or (cooperative, season) exists,
    ``NotFound`` for an unknown cooperative."""
    if management_fee_fen_per_plant_year < 0 or picking_fee_fen_per_jin < 0 or handling_fen_per_kg < 0:
        raise Invalid("fees must be >= 0 fen", "费用不能为负")
    if patronage_share_bp is not None and not 6000 <= patronage_share_bp <= 10_000:
        raise Invalid("patronage_share_bp must be 6000-10000: the cooperative law returns at least 60 % of the "
                      "distributable surplus by transaction volume", "按交易量返还比例不得低于可分配盈余的60%",
                      field="patronage_share_bp")
    prices = dict(grade_prices or {})
    if any(g not in ("XL", "L", "M") or not isinstance(p, int) or p < 0 for g, p in prices.items()):
        raise Invalid("grade_prices maps XL/L/M to integer fen per kg >= 0", "等级收购价不正确", field="grade_prices")
    if not dividend_tiers:
        raise Invalid("at least one dividend tier is required", "至少需要一个分红档位")
    clean = []
    for t in dividend_tiers:
        try:
            lo, bp = Decimal(str(t["min_jin_per_plant"])), int(t["rate_bp"])
        except (KeyError, ValueError, ArithmeticError) as exc:
            raise Invalid("tiers need min_jin_per_plant and rate_bp", "分红档位格式不正确") from exc
        if lo < 0 or not 0 <= bp <= 10_000:
            raise Invalid("min_jin_per_plant >= 0 and 0 <= rate_bp <= 10000", "分红档位取值不正确")
        clean.append({"min_jin_per_plant": float(lo), "rate_bp": bp})
    with conn.transaction():
        if cooperative_id is not None and conn.execute(
                "SELECT 1 FROM cooperatives WHERE cooperative_id = %s", (cooperative_id,)).fetchone() is None:
            raise NotFound(f"cooperative {cooperative_id} not found", "合作社不存在")
        try:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO settlement_rules (rule_set_id, cooperative_id, name, valid_from_season, "
                    "management_fee_fen_per_plant_year, picking_fee_fen_per_jin, dividend_tiers, grade_prices, "
                    "losses_borne_by_grower, handling_fen_per_kg, patronage_share_bp) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (rule_set_id, cooperative_id, name, valid_from_season, management_fee_fen_per_plant_year,
                     picking_fee_fen_per_jin, Jsonb(clean), Jsonb(prices) if prices else None,
                     losses_borne_by_grower, handling_fen_per_kg, patronage_share_bp))
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict("a rule set with this id or cooperative and season exists", "规则已存在") from exc
    return rule_set_for(conn, cooperative_id, valid_from_season)


def rule_set_for(conn: psycopg.Connection, cooperative_id: str | None, season: int) -> RuleSet:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT * FROM settlement_rules
               WHERE (cooperative_id = %s OR cooperative_id IS NULL) AND valid_from_season <= %s
               ORDER BY (cooperative_id IS NULL), valid_from_season DESC LIMIT 1""",
            (cooperative_id, season)).fetchone()
    if row is None:
        raise NotFound("no settlement rule set applies", "没有适用的结算规则")
    return _rule(row)


def compute_statement(rule: RuleSet, *, plants: int, picked_kg: Decimal, revenue_fen: int,
                      received_kg_by_grade: dict[str, Decimal] | None = None,
                      lost_kg_by_grade: dict[str, Decimal] | None = None) -> dict[str, Any]:
    """The money lines of one statement before any patronage refund (pure; see the module docstring)."""
    jin = picked_kg * JIN_PER_KG
    jpp = (jin / plants).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) if plants > 0 else Decimal(0)
    rate = rule.dividend_rate_bp(jpp)
    mgmt = plants * rule.management_fee_fen_per_plant_year
    pick = _fen(jin * rule.picking_fee_fen_per_jin)
    div = _fen(Decimal(revenue_fen) * rate / Decimal(10_000))
    fruit = sum((_fen(kg * rule.grade_price(g)) for g, kg in (received_kg_by_grade or {}).items()), 0)
    loss = (sum((_fen(kg * rule.grade_price(g)) for g, kg in (lost_kg_by_grade or {}).items()), 0)
            if rule.losses_borne_by_grower else 0)
    return {"picked_jin": jin, "jin_per_plant": jpp, "management_fee_fen": mgmt, "picking_fee_fen": pick,
            "dividend_rate_bp": rate, "dividend_fen": div, "fruit_payment_fen": fruit, "loss_deduction_fen": loss,
            "total_fen": mgmt + pick + div + fruit - loss}


def share_by_volume(pool_fen: int, volumes: dict[str, int]) -> dict[str, int]:
    """``pool_fen`` shared in proportion to ``volumes`` in whole fen (largest remainder, ties by key), so
    the shares add up to the pool exactly; nothing when no volume."""
    total = sum(v for v in volumes.values() if v > 0)
    if pool_fen <= 0 or total <= 0:
        return dict.fromkeys(volumes, 0)
    base = {k: pool_fen * max(v, 0) // total for k, v in volumes.items()}
    rest = pool_fen - sum(base.values())
    order = sorted(volumes, key=lambda k: (-(pool_fen * max(volumes[k], 0) % total), k))
    for k in order[:rest]:
        base[k] += 1
    return base


_BASE_SQL = """
WITH g AS (
    SELECT g.grower_id, g.name, g.cooperative_id, h.poverty_alleviated
    FROM growers g JOIN households h USING (household_id)
    WHERE (%(grower)s::text IS NULL OR g.grower_id = %(grower)s)
      AND (%(coop)s::text IS NULL OR g.cooperative_id = %(coop)s)),
orc AS (
    SELECT o.grower_id, array_agg(o.orchard_id ORDER BY o.orchard_id) AS orchards, sum(o.tree_count)::int AS plants
    FROM orchards o JOIN g USING (grower_id) GROUP BY o.grower_id)
SELECT g.*, coalesce(orc.orchards, '{}') AS orchards, coalesce(orc.plants, 0) AS plants
FROM g LEFT JOIN orc USING (grower_id) ORDER BY g.grower_id"""

#: the grower's fruit of the season by grade: received, lost; and its sales by channel, grade and price
_BY_GRADE_SQL = """
SELECT o.grower_id, lg.grade, sum(lg.received_kg) AS received_kg,
       coalesce(sum((SELECT sum(x.kg) FROM lot_losses x WHERE x.lot_id = lg.lot_id AND x.grade = lg.grade)), 0)
           AS lost_kg
FROM lots l JOIN lot_grades lg USING (lot_id) JOIN orchards o USING (orchard_id)
WHERE l.season = %(season)s AND o.grower_id = ANY(%(growers)s) GROUP BY 1, 2"""
_SALES_SQL = """
SELECT grower_id, channel, grade, price_fen_per_kg, sum(kg) AS kg, sum(amount_fen)::bigint AS amount_fen FROM (
    SELECT o.grower_id, 'forward' AS channel, s.grade, s.price_fen_per_kg, s.kg, s.amount_fen
    FROM shipments s JOIN lots l USING (lot_id) JOIN orchards o USING (orchard_id)
    WHERE l.season = %(season)s AND o.grower_id = ANY(%(growers)s)
    UNION ALL
    SELECT o.grower_id, x.channel, sl.grade, sl.price_fen_per_kg, sl.kg, sl.amount_fen
    FROM spot_sale_lines sl JOIN spot_sales x USING (sale_id) JOIN lots l USING (lot_id)
    JOIN orchards o USING (orchard_id)
    WHERE x.status = 'delivered' AND l.season = %(season)s AND o.grower_id = ANY(%(growers)s)) q
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""


def _base_statements(conn: psycopg.Connection, season: int, cooperative_id: str | None, grower_id: str | None,
                     rules: dict[str | None, RuleSet]) -> list[Statement]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_BASE_SQL, {"grower": grower_id, "coop": cooperative_id}).fetchall()
        ids = [r["grower_id"] for r in rows]
        grades = cur.execute(_BY_GRADE_SQL, {"season": season, "growers": ids}).fetchall()
        sales = cur.execute(_SALES_SQL, {"season": season, "growers": ids}).fetchall()
    rec: dict[str, dict[str, Decimal]] = {}
    lost: dict[str, dict[str, Decimal]] = {}
    for r in grades:
        rec.setdefault(r["grower_id"], {})[r["grade"]] = Decimal(r["received_kg"])
        if r["lost_kg"]:
            lost.setdefault(r["grower_id"], {})[r["grade"]] = Decimal(r["lost_kg"])
    sold: dict[str, list[dict[str, Any]]] = {}
    for r in sales:
        sold.setdefault(r.pop("grower_id"), []).append(r)
    out = []
    for r in rows:
        coop = r["cooperative_id"]
        if coop not in rules:
            rules[coop] = rule_set_for(conn, coop, season)
        rule = rules[coop]
        gid = r["grower_id"]
        kg = sum(rec.get(gid, {}).values(), Decimal(0))
        lines = sold.get(gid, [])
        revenue = sum(int(x["amount_fen"]) for x in lines)
        m = compute_statement(rule, plants=int(r["plants"]), picked_kg=kg, revenue_fen=revenue,
                              received_kg_by_grade=rec.get(gid), lost_kg_by_grade=lost.get(gid))
        out.append(Statement(
            gid, r["name"], coop, bool(r["poverty_alleviated"]), season, rule.rule_set_id, list(r["orchards"]),
            int(r["plants"]), kg, m["picked_jin"], m["jin_per_plant"], revenue, m["management_fee_fen"],
            m["picking_fee_fen"], m["dividend_rate_bp"], m["dividend_fen"], m["total_fen"],
            sold_kg=sum((Decimal(x["kg"]) for x in lines), Decimal(0)),
            lost_kg=sum(lost.get(gid, {}).values(), Decimal(0)), fruit_payment_fen=m["fruit_payment_fen"],
            loss_deduction_fen=m["loss_deduction_fen"], sales=lines))
    return out


def cooperative_surplus(rule: RuleSet, members: list[Statement]) -> dict[str, int]:
    """A cooperative's season from its members' statements (before patronage): revenue, what it paid out
    (fees, dividends, fruit payments less loss deductions), handling cost, surplus, the distributable
    part (surplus if positive) and the patronage pool (``patronage_share_bp`` of it, floored to fen)."""
    revenue = sum(s.revenue_fen for s in members)
    paid = sum(s.total_fen for s in members)
    handling = _fen(sum((s.sold_kg for s in members), Decimal(0)) * rule.handling_fen_per_kg)
    surplus = revenue - paid - handling
    distributable = max(0, surplus)
    pool = distributable * (rule.patronage_share_bp or 0) // 10_000
    return {"revenue_fen": revenue, "paid_to_members_fen": paid, "handling_fen": handling, "surplus_fen": surplus,
            "distributable_fen": distributable, "patronage_pool_fen": pool,
            "patronage_share_bp": rule.patronage_share_bp or 0}


def statements(conn: psycopg.Connection, *, season: int, cooperative_id: str | None = None,
               grower_id: str | None = None) -> StatementReport:
    """Statements for every grower in scope (a cooperative, one grower, or all), with totals for all and
    for poverty-alleviated households, and per cooperative with a patronage refund its surplus and pool
    (computed over all its members, whoever is in scope). ``NotFound`` for an unknown grower or
    cooperative."""
    if grower_id is not None and conn.execute("SELECT 1 FROM growers WHERE grower_id = %s",
                                              (grower_id,)).fetchone() is None:
        raise NotFound(f"grower {grower_id} not found", "果农不存在")
    if cooperative_id is not None and conn.execute("SELECT 1 FROM cooperatives WHERE cooperative_id = %s",
                                                   (cooperative_id,)).fetchone() is None:
        raise NotFound(f"cooperative {cooperative_id} not found", "合作社不存在")
    rules: dict[str | None, RuleSet] = {}
    out = _base_statements(conn, season, cooperative_id, grower_id, rules)
    coops: dict[str, dict[str, int]] = {}
    for coop in sorted({s.cooperative_id for s in out if s.cooperative_id is not None}):
        rule = rules[coop]
        if not rule.patronage_share_bp:
            continue
        members = (out if cooperative_id == coop and grower_id is None
                   else _base_statements(conn, season, coop, None, rules))
        figures = cooperative_surplus(rule, members)
        shares = share_by_volume(figures["patronage_pool_fen"], {m.grower_id: m.revenue_fen for m in members})
        coops[coop] = figures
        for st in out:
            if st.cooperative_id == coop:
                st.patronage_fen = shares.get(st.grower_id, 0)
                st.total_fen += st.patronage_fen
    keys = ("revenue_fen", "management_fee_fen", "picking_fee_fen", "dividend_fen", "fruit_payment_fen",
            "loss_deduction_fen", "patronage_fen", "total_fen")
    totals = dict.fromkeys(keys, 0)
    poor = dict.fromkeys(keys, 0)
    poor["households"] = 0
    totals["growers"] = len(out)
    for st in out:
        for k in keys:
            totals[k] += getattr(st, k)
            if st.poverty_alleviated:
                poor[k] += getattr(st, k)
        if st.poverty_alleviated:
            poor["households"] += 1
    return StatementReport(season, out, totals, poor, coops)
