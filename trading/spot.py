"""Spot trading from warehouse stock (现货交易), online and at the hall counter, from one stock.

* **Offer**: :func:`stock_offer` lists graded lots with available kg by site, grade, harvest date,
  origin township, certifications valid today and cold-chain state, with the site's list price of the
  day (:func:`set_list_price`, per site, grade and Asia/Shanghai calendar day, set by a manager).
* **Online**: :func:`reserve` holds kg for ``hold_minutes`` (status ``held``); :func:`confirm` makes
  the sale firm (``confirmed``; the kg stay reserved until they leave); :func:`deliver` records the
  pickup or the shipment (``delivered``: the kg leave the site, each line gets a trace code);
  :func:`cancel` gives a hold back. A hold that runs out is ``expired`` and its kg are available
  again — at once for anyone who asks for the same lot (:func:`trading.stock.lock_rows` sweeps
  before it locks) and for all lots by :func:`expire_holds` (scheduler).
* **Buyer's offer**: :func:`make_offer` proposes a price for kg of a lot; the manager's
  :func:`decide_offer` accepts (it becomes a held sale at the offered price) or declines.
* **Hall counter**: :func:`hall_sale` records a walk-in or known buyer's sale, paid in cash or by
  transfer and taken at once (``delivered``).
* Forward orders draw on the same rows (:func:`trading.warehouse.fulfil`), so no kg is sold twice.

Every write carries the client's request id: the same id with the same body returns the first sale
(a retry is not a second sale), with another body it is a ``Conflict``. Money is integer fen
(kg x fen/kg rounded half up per line). Statuses: held -> confirmed -> delivered; held -> expired |
cancelled; confirmed -> cancelled (by a manager) gives the kg back.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from registry.grades import GRADE_CODES
from trading import stock
from trading.errors import Conflict, Forbidden, Invalid, NotFound
from trading.orders import _kg
from trading.quality import BLACKLISTED_ORCHARDS_SQL, is_orchard_blacklisted
from trading.warehouse import new_trace_code

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_HOLD_MINUTES = 30          #: how long an online reservation holds its kg (assumption, configurable)
MAX_HOLD_MINUTES = 7 * 24 * 60
PAYMENT_METHODS = ("cash", "transfer")
FULFILMENTS = ("pickup", "shipment")
MAX_LINES = 20


@dataclass
class SaleLine:
    line_no: int
    lot_id: str
    grade: str
    kg: Decimal
    price_fen_per_kg: int
    amount_fen: int
    trace_code: str | None = None


@dataclass
class Sale:
    sale_id: str
    channel: str
    warehouse_id: str
    buyer_id: str | None
    walk_in_name: str | None
    actor: str
    client_request_id: str
    status: str
    fulfilment: str
    destination: str | None
    payment_method: str | None
    offer_id: int | None
    expires_at: datetime | None
    total_fen: int
    created_at: datetime
    confirmed_at: datetime | None
    delivered_at: datetime | None
    lines: list[SaleLine] = field(default_factory=list)

    @property
    def kg(self) -> Decimal:
        return sum((ln.kg for ln in self.lines), Decimal(0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def local_today(now: datetime | None = None) -> date:
    """The Asia/Shanghai calendar day of ``now`` (default: the current time)."""
    return (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).date()


def _fen(kg: Decimal, price: int) -> int:
    return int((kg * price).to_integral_value(rounding=ROUND_HALF_UP))


def _grade(g: Any) -> str:
    if g not in GRADE_CODES:
        raise Invalid(f"grade {g!r} not in {GRADE_CODES}", "等级不正确", field="grade")
    return str(g)


def _price(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= 1_000_000:
        raise Invalid("price_fen_per_kg must be an integer 1-1,000,000 fen", "价格不正确", field="price_fen_per_kg")
    return v


def _request_id(v: Any) -> str:
    s = str(v or "").strip()
    if not 8 <= len(s) <= 100 or not s.isascii() or not s.isprintable():
        raise Invalid("client_request_id must be 8-100 printable ASCII characters", "请求编号不正确",
                      field="client_request_id")
    return s


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _clean_lines(lines: Any) -> list[tuple[str, str, Decimal]]:
    if not isinstance(lines, list | tuple) or not 1 <= len(lines) <= MAX_LINES:
        raise Invalid(f"a sale needs 1-{MAX_LINES} lines", f"每笔销售 1-{MAX_LINES} 行", field="lines")
    out: dict[tuple[str, str], Decimal] = {}
    for ln in lines:
        try:
            lot, g, kg = str(ln["lot_id"]), _grade(ln["grade"]), _kg(ln["kg"], "kg")
        except (KeyError, TypeError) as exc:
            raise Invalid("each line needs lot_id, grade and kg", "每行需要批次、等级和重量", field="lines") from exc
        out[(lot, g)] = out.get((lot, g), Decimal(0)) + kg
    return [(lot, g, kg) for (lot, g), kg in sorted(out.items())]


# ----------------------------------------------------------------------------------- prices

def set_list_price(conn: psycopg.Connection, *, warehouse_id: str, grade: str, price_fen_per_kg: int,
                   set_by: str, price_date: date | None = None) -> dict[str, Any]:
    """Set (or change) a site's list price for a grade on a day (default today, Asia/Shanghai)."""
    _grade(grade)
    _price(price_fen_per_kg)
    day = price_date or local_today()
    with conn.transaction():
        if conn.execute("SELECT 1 FROM warehouses WHERE warehouse_id = %s", (warehouse_id,)).fetchone() is None:
            raise NotFound(f"warehouse {warehouse_id} not found", "仓库不存在", warehouse_id=warehouse_id)
        conn.execute(
            """INSERT INTO spot_prices (warehouse_id, price_date, grade, price_fen_per_kg, set_by)
               VALUES (%s, %s, %s, %s, %s) ON CONFLICT (warehouse_id, price_date, grade) DO UPDATE
               SET price_fen_per_kg = EXCLUDED.price_fen_per_kg, set_by = EXCLUDED.set_by, set_at = now()""",
            (warehouse_id, day, grade, price_fen_per_kg, set_by))
    return {"warehouse_id": warehouse_id, "price_date": day, "grade": grade, "price_fen_per_kg": price_fen_per_kg}


def list_prices(conn: psycopg.Connection, *, price_date: date | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT warehouse_id, price_date, grade, price_fen_per_kg, set_by, set_at FROM spot_prices "
                           "WHERE price_date = %s ORDER BY warehouse_id, grade",
                           (price_date or local_today(),)).fetchall()


# ------------------------------------------------------------------------------------ offer

def stock_offer(conn: psycopg.Connection, *, warehouse_id: str | None = None, grade: str | None = None,
                on: date | None = None) -> list[dict[str, Any]]:
    """Lots with available kg (blacklisted suppliers left out), oldest harvest first: site, cold room,
    lot, grade, ``available_kg``, harvest date, orchard's township, certification schemes valid on the
    day, cold-chain state, and the site's list price of the day (``None`` when not set: not for sale
    online until the manager sets it)."""
    day = on or local_today()
    if grade is not None:
        _grade(grade)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"""SELECT r.warehouse_id, w.name AS warehouse_name, l.cold_room_id, l.lot_id, lg.grade,
                       lg.remaining_kg - lg.reserved_kg AS available_kg, l.harvested_on, l.season,
                       t.name_zh AS township_zh, t.name_en AS township_en, l.cold_chain_state,
                       coalesce((SELECT array_agg(DISTINCT c.scheme ORDER BY c.scheme) FROM certifications c
                                 WHERE c.revoked_at IS NULL AND %(day)s BETWEEN c.issued_on AND c.valid_until
                                   AND ((c.subject_kind = 'orchard' AND c.subject_id = o.orchard_id)
                                     OR (c.subject_kind = 'grower' AND c.subject_id = o.grower_id)
                                     OR (c.subject_kind = 'cooperative' AND c.subject_id = o.cooperative_id))),
                                '{{}}') AS certifications,
                       p.price_fen_per_kg
                FROM lot_grades lg JOIN lots l USING (lot_id) JOIN cold_rooms r USING (cold_room_id)
                JOIN warehouses w ON w.warehouse_id = r.warehouse_id
                JOIN orchards o ON o.orchard_id = l.orchard_id JOIN townships t ON t.township_id = o.township_id
                LEFT JOIN spot_prices p ON p.warehouse_id = r.warehouse_id AND p.grade = lg.grade
                     AND p.price_date = %(day)s
                WHERE lg.remaining_kg - lg.reserved_kg > 0
                  AND (%(wh)s::text IS NULL OR r.warehouse_id = %(wh)s)
                  AND (%(grade)s::text IS NULL OR lg.grade = %(grade)s)
                  AND l.orchard_id NOT IN ({BLACKLISTED_ORCHARDS_SQL})
                ORDER BY l.harvested_on, l.lot_id, lg.grade""",
            {"day": day, "wh": warehouse_id, "grade": grade}).fetchall()


# ------------------------------------------------------------------------------------ reading

def get_sale(conn: psycopg.Connection, sale_id: str) -> Sale:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM spot_sales WHERE sale_id = %s", (sale_id,)).fetchone()
        if row is None:
            raise NotFound(f"sale {sale_id} not found", f"销售单 {sale_id} 不存在", sale_id=sale_id)
        lines = cur.execute("SELECT line_no, lot_id, grade, kg, price_fen_per_kg, amount_fen, trace_code "
                            "FROM spot_sale_lines WHERE sale_id = %s ORDER BY line_no", (sale_id,)).fetchall()
    row.pop("request_hash", None)
    return Sale(**row, lines=[SaleLine(**ln) for ln in lines])


def list_sales(conn: psycopg.Connection, *, buyer_id: str | None = None, warehouse_id: str | None = None,
               status: str | None = None, limit: int = 100) -> list[Sale]:
    ids = [r[0] for r in conn.execute(
        "SELECT sale_id FROM spot_sales WHERE (%s::text IS NULL OR buyer_id = %s) "
        "AND (%s::text IS NULL OR warehouse_id = %s) AND (%s::text IS NULL OR status = %s) "
        "ORDER BY created_at DESC, sale_id LIMIT %s",
        (buyer_id, buyer_id, warehouse_id, warehouse_id, status, status, limit)).fetchall()]
    return [get_sale(conn, s) for s in ids]


# ------------------------------------------------------------------------------------ writing

def _existing(conn: psycopg.Connection, actor: str, request_id: str, h: str) -> Sale | None:
    row = conn.execute("SELECT sale_id, request_hash FROM spot_sales WHERE actor = %s AND client_request_id = %s",
                       (actor, request_id)).fetchone()
    if row is None:
        return None
    if row[1] != h:
        raise Conflict("this client_request_id was used for another request", "该请求编号已用于另一笔请求",
                       sale_id=row[0])
    return get_sale(conn, row[0])


def _site_of(conn: psycopg.Connection, lot_ids: list[str]) -> str:
    rows = conn.execute("SELECT l.lot_id, r.warehouse_id, l.orchard_id FROM lots l JOIN cold_rooms r "
                        "USING (cold_room_id) WHERE l.lot_id = ANY(%s)", (lot_ids,)).fetchall()
    found = {r[0]: r for r in rows}
    for lot in lot_ids:
        if lot not in found:
            raise NotFound(f"lot {lot} not found", f"批次 {lot} 不存在", lot_id=lot)
        if is_orchard_blacklisted(conn, found[lot][2]):
            raise Forbidden(f"lot {lot} comes from a blacklisted supplier", "该批次来自黑名单供应方, 不能销售",
                            lot_id=lot)
    sites = {r[1] for r in rows}
    if len(sites) != 1:
        raise Invalid("all lines of a sale must be stock of one site", "一笔销售的货品须在同一仓库",
                      sites=sorted(sites))
    return sites.pop()


def _prices(conn: psycopg.Connection, site: str, grades: set[str], day: date) -> dict[str, int]:
    rows = conn.execute("SELECT grade, price_fen_per_kg FROM spot_prices WHERE warehouse_id = %s AND price_date = %s",
                        (site, day)).fetchall()
    got = {r[0]: int(r[1]) for r in rows}
    missing = sorted(grades - set(got))
    if missing:
        raise Conflict(f"site {site} has no list price for {', '.join(missing)} on {day}",
                       f"仓库今日未定 {'、'.join(missing)} 级挂牌价", warehouse_id=site, grades=missing,
                       price_date=day.isoformat())
    return got


def _insert_sale(conn: psycopg.Connection, *, channel: str, site: str, buyer_id: str | None,
                 walk_in_name: str | None, actor: str, request_id: str, h: str, status: str, fulfilment: str,
                 destination: str | None, payment: str | None, offer_id: int | None, hold_minutes: int | None,
                 lines: list[tuple[str, str, Decimal, int]], now: datetime | None) -> str | None:
    """Insert the sale and its lines; None when the (actor, request id) exists (a concurrent retry)."""
    season = local_today(now).year
    sale_id = f"SP-{season}-{secrets.token_hex(4).upper()}"
    total = sum(_fen(kg, p) for _, _, kg, p in lines)
    row = conn.execute(
        """INSERT INTO spot_sales (sale_id, channel, warehouse_id, buyer_id, walk_in_name, actor, client_request_id,
               request_hash, status, fulfilment, destination, payment_method, offer_id, expires_at, total_fen,
               confirmed_at, delivered_at)
           VALUES (%(id)s, %(ch)s, %(site)s, %(buyer)s, %(walk)s, %(actor)s, %(rid)s, %(h)s, %(st)s, %(ful)s,
                   %(dest)s, %(pay)s, %(offer)s,
                   CASE WHEN %(hold)s::int IS NULL THEN NULL
                        ELSE coalesce(%(now)s::timestamptz, now()) + make_interval(mins => %(hold)s::int) END,
                   %(total)s,
                   CASE WHEN %(st)s = 'delivered' THEN coalesce(%(now)s::timestamptz, now()) END,
                   CASE WHEN %(st)s = 'delivered' THEN coalesce(%(now)s::timestamptz, now()) END)
           ON CONFLICT (actor, client_request_id) DO NOTHING RETURNING sale_id""",
        {"id": sale_id, "ch": channel, "site": site, "buyer": buyer_id, "walk": walk_in_name, "actor": actor,
         "rid": request_id, "h": h, "st": status, "ful": fulfilment, "dest": destination, "pay": payment,
         "offer": offer_id, "hold": hold_minutes, "now": now, "total": total}).fetchone()
    if row is None:
        return None
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO spot_sale_lines (sale_id, line_no, lot_id, grade, kg, price_fen_per_kg, amount_fen, "
            "trace_code) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(sale_id, i + 1, lot, g, kg, p, _fen(kg, p), new_trace_code(season) if status == "delivered" else None)
             for i, (lot, g, kg, p) in enumerate(lines)])
    return sale_id


def _hold_minutes(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_HOLD_MINUTES:
        raise Invalid(f"hold_minutes must be 1-{MAX_HOLD_MINUTES}", "保留时长不正确", field="hold_minutes")
    return v


def _buyer(conn: psycopg.Connection, buyer_id: str) -> None:
    if conn.execute("SELECT 1 FROM buyers WHERE buyer_id = %s", (buyer_id,)).fetchone() is None:
        raise NotFound(f"buyer {buyer_id} not found", "采购商不存在", buyer_id=buyer_id)


def reserve(conn: psycopg.Connection, *, buyer_id: str, actor: str, client_request_id: str, lines: Any,
            fulfilment: str = "pickup", destination: str | None = None,
            hold_minutes: int = DEFAULT_HOLD_MINUTES, now: datetime | None = None) -> Sale:
    """An online buyer holds kg of one site's lots at today's list prices for ``hold_minutes``.

    ``Conflict`` when a lot lacks the kg or the site has no list price today, ``NotFound`` for an unknown
    buyer or lot, ``Forbidden`` for a blacklisted supplier's lot, ``Invalid`` for malformed lines."""
    rid = _request_id(client_request_id)
    clean = _clean_lines(lines)
    if fulfilment not in FULFILMENTS:
        raise Invalid(f"fulfilment must be one of {FULFILMENTS}", "提货方式不正确", field="fulfilment")
    if fulfilment == "shipment" and not destination:
        raise Invalid("a shipment needs a destination", "发货需要目的地", field="destination")
    hold_m = _hold_minutes(hold_minutes)
    h = _hash({"op": "reserve", "buyer": buyer_id, "lines": clean, "fulfilment": fulfilment,
               "destination": destination, "hold": hold_m})
    with conn.transaction():
        _buyer(conn, buyer_id)
        return _create(conn, actor, rid, h, clean, None, stock.hold, now, channel="online", buyer_id=buyer_id,
                       walk_in_name=None, status="held", fulfilment=fulfilment, destination=destination,
                       payment=None, offer_id=None, hold_minutes=hold_m)


def _create(conn: psycopg.Connection, actor: str, rid: str, h: str, clean: list[tuple[str, str, Decimal]],
            site_must_be: str | None, take: Any, now: datetime | None, **sale: Any) -> Sale:
    """The common path of a new sale: the earlier result for a retried request id, else the sale and its
    lines at the site's list prices, then the stock rows locked and ``take`` (hold or take) per line."""
    if (old := _existing(conn, actor, rid, h)) is not None:
        return old
    site = _site_of(conn, [lot for lot, _, _ in clean])
    if site_must_be is not None and site != site_must_be:
        raise Invalid(f"the lots are stock of {site}, not {site_must_be}", "货品不在本仓库", site=site)
    prices = _prices(conn, site, {g for _, g, _ in clean}, local_today(now))
    sale_id = _insert_sale(conn, site=site, actor=actor, request_id=rid, h=h, now=now,
                           lines=[(lot, g, kg, prices[g]) for lot, g, kg in clean], **sale)
    if sale_id is None:
        return _existing_after_race(conn, actor, rid, h)
    stock.lock_rows(conn, [(lot, g) for lot, g, _ in clean], now=now)
    for lot, g, kg in clean:
        take(conn, (lot, g), kg)
    return get_sale(conn, sale_id)


def _existing_after_race(conn: psycopg.Connection, actor: str, rid: str, h: str) -> Sale:
    old = _existing(conn, actor, rid, h)
    assert old is not None   # the unique index said it exists
    return old


def hall_sale(conn: psycopg.Connection, *, warehouse_id: str, actor: str, client_request_id: str, lines: Any,
              payment_method: str, buyer_id: str | None = None, walk_in_name: str | None = None,
              now: datetime | None = None) -> Sale:
    """Hall staff record a counter sale at ``warehouse_id``: paid (cash or transfer) and taken at once, at
    today's list prices; every line gets a trace code. Same errors as :func:`reserve`; ``Invalid`` when a
    lot is stock of another site."""
    rid = _request_id(client_request_id)
    clean = _clean_lines(lines)
    if payment_method not in PAYMENT_METHODS:
        raise Invalid(f"payment_method must be one of {PAYMENT_METHODS}", "付款方式不正确", field="payment_method")
    name = (walk_in_name or "").strip() or None
    if buyer_id is None and name is None:
        name = "散客"
    h = _hash({"op": "hall", "site": warehouse_id, "buyer": buyer_id, "walk_in": name, "lines": clean,
               "pay": payment_method})
    with conn.transaction():
        if buyer_id is not None:
            _buyer(conn, buyer_id)
        return _create(conn, actor, rid, h, clean, warehouse_id, stock.take_available, now, channel="hall",
                       buyer_id=buyer_id, walk_in_name=name, status="delivered", fulfilment="counter",
                       destination=None, payment=payment_method, offer_id=None, hold_minutes=None)


def _lock_sale(conn: psycopg.Connection, sale_id: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT sale_id, buyer_id, status FROM spot_sales WHERE sale_id = %s FOR UPDATE",
                          (sale_id,)).fetchone()
    if row is None:
        raise NotFound(f"sale {sale_id} not found", f"销售单 {sale_id} 不存在", sale_id=sale_id)
    return row


def _lines(conn: psycopg.Connection, sale_id: str) -> list[tuple[str, str, Decimal]]:
    return [(r[0], r[1], Decimal(r[2])) for r in conn.execute(
        "SELECT lot_id, grade, kg FROM spot_sale_lines WHERE sale_id = %s ORDER BY lot_id, grade",
        (sale_id,)).fetchall()]


def _give_back(conn: psycopg.Connection, sale_id: str, status: str) -> None:
    lines = _lines(conn, sale_id)
    stock.lock_rows(conn, [(lot, g) for lot, g, _ in lines])
    for lot, g, kg in lines:
        stock.release(conn, (lot, g), kg)
    conn.execute("UPDATE spot_sales SET status = %s, expires_at = CASE WHEN %s = 'expired' THEN expires_at END "
                 "WHERE sale_id = %s", (status, status, sale_id))


def _own(row: dict[str, Any], buyer_id: str | None) -> None:
    if buyer_id is not None and row["buyer_id"] != buyer_id:
        raise Forbidden("that sale belongs to another buyer", "这不是您的订单", sale_id=row["sale_id"])


def confirm(conn: psycopg.Connection, sale_id: str, *, buyer_id: str | None = None,
            now: datetime | None = None) -> Sale:
    """The buyer confirms a hold: the sale is firm and no longer expires. Confirming twice is a no-op.
    ``Conflict`` when the hold has run out (its kg go back to stock) or the sale was cancelled."""
    with conn.transaction():
        row = _lock_sale(conn, sale_id)
        _own(row, buyer_id)
        status = row["status"]
        if status == "held" and _run_out(conn, sale_id, now):
            _give_back(conn, sale_id, "expired")
            status = "expired"
        elif status == "held":
            conn.execute("UPDATE spot_sales SET status = 'confirmed', confirmed_at = coalesce(%s::timestamptz, "
                         "now()), expires_at = NULL, payment_method = 'online' WHERE sale_id = %s", (now, sale_id))
            status = "confirmed"
    if status in ("confirmed", "delivered"):
        return get_sale(conn, sale_id)
    raise Conflict(f"sale {sale_id} is {status}; reserve again",
                   "保留已过期, 请重新下单" if status == "expired" else "该销售单已取消", status=status)


def _run_out(conn: psycopg.Connection, sale_id: str, now: datetime | None) -> bool:
    row = conn.execute("SELECT expires_at <= coalesce(%s::timestamptz, now()) FROM spot_sales WHERE sale_id = %s",
                       (now, sale_id)).fetchone()
    return bool(row and row[0])


def deliver(conn: psycopg.Connection, sale_id: str, *, now: datetime | None = None) -> Sale:
    """Record that a confirmed sale left the site (picked up or shipped): the kg leave the stock and every
    line gets a trace code. Delivering twice is a no-op; ``Conflict`` unless the sale is confirmed."""
    with conn.transaction():
        row = _lock_sale(conn, sale_id)
        if row["status"] == "delivered":
            return get_sale(conn, sale_id)
        if row["status"] != "confirmed":
            raise Conflict(f"sale {sale_id} is {row['status']}; only confirmed sales are delivered",
                           "只有已确认的销售单才能提货/发货", status=row["status"])
        lines = _lines(conn, sale_id)
        stock.lock_rows(conn, [(lot, g) for lot, g, _ in lines], now=now)
        for lot, g, kg in lines:
            stock.collect(conn, (lot, g), kg)
        season = local_today(now).year
        for (line_no,) in conn.execute("SELECT line_no FROM spot_sale_lines WHERE sale_id = %s ORDER BY line_no",
                                       (sale_id,)).fetchall():
            conn.execute("UPDATE spot_sale_lines SET trace_code = %s WHERE sale_id = %s AND line_no = %s",
                         (new_trace_code(season), sale_id, line_no))
        conn.execute("UPDATE spot_sales SET status = 'delivered', delivered_at = coalesce(%s::timestamptz, now()) "
                     "WHERE sale_id = %s", (now, sale_id))
    return get_sale(conn, sale_id)


def cancel(conn: psycopg.Connection, sale_id: str, *, buyer_id: str | None = None) -> Sale:
    """Cancel a held sale (the buyer) or a confirmed one (a manager: ``buyer_id=None``); the kg return
    to stock. ``Conflict`` for a delivered sale; cancelling twice is a no-op."""
    with conn.transaction():
        row = _lock_sale(conn, sale_id)
        _own(row, buyer_id)
        if row["status"] in ("cancelled", "expired"):
            return get_sale(conn, sale_id)
        if row["status"] == "delivered" or (row["status"] == "confirmed" and buyer_id is not None):
            raise Conflict(f"sale {sale_id} is {row['status']} and cannot be cancelled here",
                           "该销售单已确认或已提货, 不能取消", status=row["status"])
        _give_back(conn, sale_id, "cancelled")
    return get_sale(conn, sale_id)


def expire_holds(conn: psycopg.Connection, *, now: datetime | None = None) -> int:
    """Expire every hold that has run out and return its kg to stock (scheduler job); returns sales expired."""
    with conn.transaction():
        keys = [(r[0], r[1]) for r in conn.execute(
            "SELECT DISTINCT l.lot_id, l.grade FROM spot_sale_lines l JOIN spot_sales s USING (sale_id) "
            "WHERE s.status = 'held' AND s.expires_at <= coalesce(%s::timestamptz, now())", (now,)).fetchall()]
        if not keys:
            return 0
        before = conn.execute("SELECT count(*) FROM spot_sales WHERE status = 'expired'").fetchone()
        stock.lock_rows(conn, keys, now=now)
        after = conn.execute("SELECT count(*) FROM spot_sales WHERE status = 'expired'").fetchone()
    return int(after[0]) - int(before[0]) if before and after else 0


def scheduled_expiry(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Scheduler entry point: expire run-out holds; a small JSON-able detail."""
    return {"expired_sales": expire_holds(conn, now=now)}


def record_loss(conn: psycopg.Connection, *, lot_id: str, grade: str, kg: Any, reason: str, recorded_by: str,
                note: str = "") -> dict[str, Any]:
    """Record shrink or loss (kg that left the stock without a sale). ``Conflict`` beyond the available kg."""
    q = _kg(kg, "kg")
    _grade(grade)
    if reason not in ("shrink", "decay", "damage", "other"):
        raise Invalid("reason must be shrink, decay, damage or other", "损耗原因不正确", field="reason")
    with conn.transaction():
        stock.lock_rows(conn, [(lot_id, grade)])
        stock.take_available(conn, (lot_id, grade), q)
        row = conn.execute("INSERT INTO lot_losses (lot_id, grade, kg, reason, note, recorded_by) VALUES "
                           "(%s, %s, %s, %s, %s, %s) RETURNING loss_id", (lot_id, grade, q, reason, note,
                                                                        recorded_by)).fetchone()
    return {"loss_id": int(row[0]) if row else None, "lot_id": lot_id, "grade": grade, "kg": q, "reason": reason}


# ----------------------------------------------------------------------------- buyer offers

def make_offer(conn: psycopg.Connection, *, buyer_id: str, client_request_id: str, lot_id: str, grade: str,
               kg: Any, price_fen_per_kg: int, note: str = "") -> dict[str, Any]:
    """A buyer offers a price for kg of a lot (pending until the manager decides). Idempotent on the
    request id. ``Conflict`` when the lot has fewer kg available than offered for."""
    rid = _request_id(client_request_id)
    q = _kg(kg, "kg")
    _grade(grade)
    _price(price_fen_per_kg)
    with conn.transaction():
        _buyer(conn, buyer_id)
        _site_of(conn, [lot_id])
        have = stock.available_kg(conn, (lot_id, grade))
        with conn.cursor(row_factory=dict_row) as cur:
            old = cur.execute("SELECT * FROM spot_offers WHERE buyer_id = %s AND client_request_id = %s",
                              (buyer_id, rid)).fetchone()
            if old is not None:
                if (old["lot_id"], old["grade"], old["kg"], old["price_fen_per_kg"]) != (lot_id, grade, q,
                                                                                       price_fen_per_kg):
                    raise Conflict("this client_request_id was used for another offer", "该请求编号已用于另一报价")
                return old
            if have < q:
                raise Conflict(f"lot {lot_id} has {have} kg of {grade} available", "可售数量不足",
                               available_kg=str(have))
            row = cur.execute("INSERT INTO spot_offers (buyer_id, lot_id, grade, kg, price_fen_per_kg, "
                              "client_request_id, note) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                              "ON CONFLICT (buyer_id, client_request_id) DO NOTHING RETURNING *",
                              (buyer_id, lot_id, grade, q, price_fen_per_kg, rid, note)).fetchone()
            if row is None:
                row = cur.execute("SELECT * FROM spot_offers WHERE buyer_id = %s AND client_request_id = %s",
                                  (buyer_id, rid)).fetchone()
    return dict(row or {})


def list_offers(conn: psycopg.Connection, *, status: str | None = "pending", buyer_id: str | None = None
                ) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM spot_offers WHERE (%s::text IS NULL OR status = %s) "
                           "AND (%s::text IS NULL OR buyer_id = %s) ORDER BY created_at, offer_id",
                           (status, status, buyer_id, buyer_id)).fetchall()


def decide_offer(conn: psycopg.Connection, offer_id: int, *, accept: bool, actor: str,
                 hold_minutes: int = 24 * 60, fulfilment: str = "pickup", destination: str | None = None
                 ) -> dict[str, Any]:
    """The manager accepts (a held sale at the offered price, ``hold_minutes`` for the buyer to confirm)
    or declines a pending offer. Deciding the same way twice is a no-op; ``Conflict`` when the offer was
    decided otherwise or the kg are no longer available."""
    hold_m = _hold_minutes(hold_minutes)
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            off = cur.execute("SELECT * FROM spot_offers WHERE offer_id = %s FOR UPDATE", (offer_id,)).fetchone()
        if off is None:
            raise NotFound(f"offer {offer_id} not found", "报价不存在", offer_id=offer_id)
        want = "accepted" if accept else "declined"
        if off["status"] == want:
            return dict(off)
        if off["status"] != "pending":
            raise Conflict(f"offer {offer_id} was already {off['status']}", "该报价已处理", status=off["status"])
        sale_id = None
        if accept:
            site = _site_of(conn, [off["lot_id"]])
            key = (off["lot_id"], off["grade"])
            sale_id = _insert_sale(conn, channel="online", site=site, buyer_id=off["buyer_id"], walk_in_name=None,
                                   actor=actor, request_id=f"offer-{offer_id}", h=_hash({"offer": offer_id}),
                                   status="held", fulfilment=fulfilment, destination=destination, payment=None,
                                   offer_id=offer_id, hold_minutes=hold_m,
                                   lines=[(off["lot_id"], off["grade"], Decimal(off["kg"]),
                                           int(off["price_fen_per_kg"]))], now=None)
            stock.lock_rows(conn, [key])
            stock.hold(conn, key, Decimal(off["kg"]))
        conn.execute("UPDATE spot_offers SET status = %s, decided_by = %s, decided_at = now(), sale_id = %s "
                     "WHERE offer_id = %s", (want, actor, sale_id, offer_id))
        with conn.cursor(row_factory=dict_row) as cur:
            out = cur.execute("SELECT * FROM spot_offers WHERE offer_id = %s", (offer_id,)).fetchone()
    return dict(out) if out else {}


# ------------------------------------------------------------------------------- hall staff

def grant_hall_staff(conn: psycopg.Connection, *, username: str, warehouse_id: str, granted_by: str
                     ) -> dict[str, Any]:
    """Let ``username`` record counter sales at ``warehouse_id`` (idempotent)."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM warehouses WHERE warehouse_id = %s", (warehouse_id,)).fetchone() is None:
            raise NotFound(f"warehouse {warehouse_id} not found", "仓库不存在", warehouse_id=warehouse_id)
        conn.execute("INSERT INTO hall_staff (username, warehouse_id, granted_by) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (username, warehouse_id, granted_by))
    return {"username": username, "warehouse_id": warehouse_id}


def is_hall_staff(conn: psycopg.Connection, username: str, warehouse_id: str) -> bool:
    return conn.execute("SELECT 1 FROM hall_staff WHERE username = %s AND warehouse_id = %s",
                        (username, warehouse_id)).fetchone() is not None
