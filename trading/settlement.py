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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StatementReport:
    season: int
    statements: list[Statement]
    totals: dict[str, int] = field(default_factory=dict)               #: all growers in scope, fen
    poverty_alleviated: dict[str, int] = field(default_factory=dict)   #: reaching 脱贫户 households, fen

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
    return RuleSet(row["rule_set_id"], row["cooperative_id"], row["name"], row["valid_from_season"],
                   row["management_fee_fen_per_plant_year"], row["picking_fee_fen_per_jin"],
                   tuple((Decimal(str(t["min_jin_per_plant"])), int(t["rate_bp"])) for t in tiers))


def save_rule_set(conn: psycopg.Connection, *, rule_set_id: str, cooperative_id: str | None, name: str,
                  valid_from_season: int, management_fee_fen_per_plant_year: int, picking_fee_fen_per_jin: int,
                  dividend_tiers: list[dict[str, Any]]) -> RuleSet:
    """Create a cooperative's rule set. ``Invalid`` for negative fees or bad tiers, ``Conflict`` if the id
    or (cooperative, season) exists, ``NotFound`` for an unknown cooperative."""
    if management_fee_fen_per_plant_year < 0 or picking_fee_fen_per_jin < 0:
        raise Invalid("fees must be >= 0 fen", "费用不能为负")
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
                    "management_fee_fen_per_plant_year, picking_fee_fen_per_jin, dividend_tiers) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (rule_set_id, cooperative_id, name, valid_from_season, management_fee_fen_per_plant_year,
                     picking_fee_fen_per_jin, Jsonb(clean)))
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


def compute_statement(rule: RuleSet, *, plants: int, picked_kg: Decimal, revenue_fen: int) -> dict[str, Any]:
    """The money lines of one statement (pure; see the module docstring)."""
    jin = picked_kg * JIN_PER_KG
    jpp = (jin / plants).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) if plants > 0 else Decimal(0)
    rate = rule.dividend_rate_bp(jpp)
    mgmt = plants * rule.management_fee_fen_per_plant_year
    pick = _fen(jin * rule.picking_fee_fen_per_jin)
    div = _fen(Decimal(revenue_fen) * rate / Decimal(10_000))
    return {"picked_jin": jin, "jin_per_plant": jpp, "management_fee_fen": mgmt, "picking_fee_fen": pick,
            "dividend_rate_bp": rate, "dividend_fen": div, "total_fen": mgmt + pick + div}


def statements(conn: psycopg.Connection, *, season: int, cooperative_id: str | None = None,
               grower_id: str | None = None) -> StatementReport:
    """Statements for every grower in scope (a cooperative, one grower, or all), with totals for all and
    for poverty-alleviated households. ``NotFound`` for an unknown grower or cooperative."""
    if grower_id is not None and conn.execute("SELECT 1 FROM growers WHERE grower_id = %s",
                                              (grower_id,)).fetchone() is None:
        raise NotFound(f"grower {grower_id} not found", "果农不存在")
    if cooperative_id is not None and conn.execute("SELECT 1 FROM cooperatives WHERE cooperative_id = %s",
                                                   (cooperative_id,)).fetchone() is None:
        raise NotFound(f"cooperative {cooperative_id} not found", "合作社不存在")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """WITH g AS (
                   SELECT g.grower_id, g.name, g.cooperative_id, h.poverty_alleviated
                   FROM growers g JOIN households h USING (household_id)
                   WHERE (%(grower)s::text IS NULL OR g.grower_id = %(grower)s)
                     AND (%(coop)s::text IS NULL OR g.cooperative_id = %(coop)s)),
               orc AS (
                   SELECT o.grower_id, array_agg(o.orchard_id ORDER BY o.orchard_id) AS orchards,
                          sum(o.tree_count)::int AS plants
                   FROM orchards o JOIN g USING (grower_id) GROUP BY o.grower_id),
               picked AS (
                   SELECT o.grower_id, sum(lg.received_kg) AS kg
                   FROM lots l JOIN lot_grades lg USING (lot_id) JOIN orchards o USING (orchard_id)
                   JOIN g USING (grower_id) WHERE l.season = %(season)s GROUP BY o.grower_id),
               revenue AS (
                   SELECT o.grower_id, sum(s.amount_fen) AS fen
                   FROM shipments s JOIN lots l USING (lot_id) JOIN orchards o USING (orchard_id)
                   JOIN g USING (grower_id) WHERE l.season = %(season)s GROUP BY o.grower_id)
               SELECT g.*, coalesce(orc.orchards, '{}') AS orchards, coalesce(orc.plants, 0) AS plants,
                      coalesce(picked.kg, 0) AS picked_kg, coalesce(revenue.fen, 0) AS revenue_fen
               FROM g LEFT JOIN orc USING (grower_id) LEFT JOIN picked USING (grower_id)
               LEFT JOIN revenue USING (grower_id)
               ORDER BY g.grower_id""", {"grower": grower_id, "coop": cooperative_id, "season": season}).fetchall()
    rules: dict[str | None, RuleSet] = {}
    out: list[Statement] = []
    keys = ("revenue_fen", "management_fee_fen", "picking_fee_fen", "dividend_fen", "total_fen")
    totals = dict.fromkeys(keys, 0)
    poor = dict.fromkeys(keys, 0)
    poor["households"] = 0
    totals["growers"] = 0
    for r in rows:
        coop = r["cooperative_id"]
        if coop not in rules:
            rules[coop] = rule_set_for(conn, coop, season)
        rule = rules[coop]
        kg = Decimal(r["picked_kg"])
        lines = compute_statement(rule, plants=int(r["plants"]), picked_kg=kg, revenue_fen=int(r["revenue_fen"]))
        st = Statement(r["grower_id"], r["name"], coop, bool(r["poverty_alleviated"]), season, rule.rule_set_id,
                       list(r["orchards"]), int(r["plants"]), kg, lines["picked_jin"], lines["jin_per_plant"],
                       int(r["revenue_fen"]), lines["management_fee_fen"], lines["picking_fee_fen"],
                       lines["dividend_rate_bp"], lines["dividend_fen"], lines["total_fen"])
        out.append(st)
        totals["growers"] += 1
        for k in keys:
            totals[k] += getattr(st, k)
            if st.poverty_alleviated:
                poor[k] += getattr(st, k)
        if st.poverty_alleviated:
            poor["households"] += 1
    return StatementReport(season, out, totals, poor)
