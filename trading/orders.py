"""Forward orders (订单农业): place (idempotent), amend and cancel until allocated, read, list.

Quantities are kg as :class:`~decimal.Decimal` (up to 3 decimals); ``crates_to_kg`` converts whole
crates (``CRATE_KG`` kg each, *assumption*, configurable per call). Prices are integer fen per kg.
A delivery window is a range of ISO weeks given by their Mondays (``week_from`` .. ``week_to``,
both inclusive); the season is ``week_from``'s year.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg.rows import dict_row

from registry.grades import GRADE_CODES
from trading.errors import Conflict, Forbidden, Invalid, NotFound
from trading.geo import city
from trading.limits import check_trade_date

CRATE_KG = Decimal(10)            #: kg per crate (assumption; orders are filled in whole crates)
MAX_WINDOW_WEEKS = 8              #: longest delivery window, weeks
MAX_QUANTITY_KG = Decimal(10_000_000)
ORDER_STATUSES = ("open", "allocated", "fulfilled", "cancelled")
AMENDABLE = ("grade", "quantity_kg", "week_from", "week_to", "destination", "price_fen_per_kg",
             "floor_price_fen_per_kg")


@dataclass
class Order:
    order_id: str
    buyer_id: str
    idempotency_key: str
    season: int
    grade: str
    quantity_kg: Decimal
    week_from: date
    week_to: date
    destination: str
    price_fen_per_kg: int
    floor_price_fen_per_kg: int | None
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    #: from the latest allocation run of the season (None before the first run that saw the order)
    committed_kg: Decimal | None = None
    expected_kg: Decimal | None = None
    shortfall_kg: Decimal | None = None
    shipped_kg: Decimal = Decimal(0)

    @property
    def value_fen(self) -> int:
        """Order value at its price, fen (kg x fen/kg, rounded half up)."""
        return int((self.quantity_kg * self.price_fen_per_kg).to_integral_value(rounding="ROUND_HALF_UP"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OrderPage:
    """One page of orders; unpacks as ``items, total = list_orders(...)``."""

    items: list[Order]
    total: int

    def __iter__(self) -> Iterator[Any]:
        return iter((self.items, self.total))


def crates_to_kg(crates: int, crate_kg: Decimal | int = CRATE_KG) -> Decimal:
    if crates <= 0:
        raise Invalid("crates must be > 0", "箱数必须大于0", field="crates")
    return Decimal(crates) * Decimal(crate_kg)


def _kg(v: Any, field: str = "quantity_kg") -> Decimal:
    try:
        d = v if isinstance(v, Decimal) else Decimal(str(v))
    except (InvalidOperation, ValueError) as exc:
        raise Invalid(f"{field} must be a number of kg", f"{field} 必须是公斤数", field=field) from exc
    if not d.is_finite() or d <= 0 or d > MAX_QUANTITY_KG:
        raise Invalid(f"{field} must be > 0 and <= {MAX_QUANTITY_KG} kg", "数量必须大于0", field=field)
    if d != d.quantize(Decimal("0.001")):
        raise Invalid(f"{field} has more than 3 decimals", "数量最多保留3位小数", field=field)
    return d.quantize(Decimal("0.001"))


def _validate(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if out["grade"] not in GRADE_CODES:
        raise Invalid(f"grade must be one of {GRADE_CODES}", f"等级必须是 {GRADE_CODES} 之一", field="grade")
    out["quantity_kg"] = _kg(out["quantity_kg"])
    for f in ("week_from", "week_to"):
        v = out[f]
        if isinstance(v, str):
            try:
                v = date.fromisoformat(v)
            except ValueError as exc:
                raise Invalid(f"{f} must be a date", f"{f} 必须是日期", field=f) from exc
        if isinstance(v, datetime) or not isinstance(v, date):
            raise Invalid(f"{f} must be a date", f"{f} 必须是日期", field=f)
        if v.isoweekday() != 1:
            raise Invalid(f"{f} must be a Monday (week start)", f"{f} 必须是周一", field=f)
        out[f] = check_trade_date(v, f)
    if out["week_to"] < out["week_from"]:
        raise Invalid("week_to is before week_from", "结束周早于开始周", field="week_to")
    if (out["week_to"] - out["week_from"]).days // 7 + 1 > MAX_WINDOW_WEEKS:
        raise Invalid(f"delivery window longer than {MAX_WINDOW_WEEKS} weeks", "交货窗口过长", field="week_to")
    if out["week_to"].isocalendar().year != out["week_from"].isocalendar().year:
        raise Invalid("delivery window must lie in one season", "交货窗口须在同一产季内", field="week_to")
    out["destination"] = city(str(out["destination"])).key
    for f in ("price_fen_per_kg", "floor_price_fen_per_kg"):
        v = out.get(f)
        if v is None and f == "floor_price_fen_per_kg":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 1_000_000:
            raise Invalid(f"{f} must be an integer number of fen per kg (0-1,000,000)",
                          f"{f} 必须是整数(分/公斤)", field=f)
    fl = out.get("floor_price_fen_per_kg")
    if fl is not None and fl > out["price_fen_per_kg"]:
        raise Invalid("floor price is above the price", "保底价高于价格", field="floor_price_fen_per_kg")
    return out


def _hash(body: dict[str, Any]) -> str:
    canon = {k: (str(v) if isinstance(v, Decimal | date) else v) for k, v in sorted(body.items())}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


_SELECT = """
SELECT o.order_id, o.buyer_id, o.idempotency_key, o.season, o.grade, o.quantity_kg, o.week_from, o.week_to,
       o.destination, o.price_fen_per_kg, o.floor_price_fen_per_kg, o.status, o.version, o.created_at,
       o.updated_at, ao.committed_kg, ao.expected_kg, ao.shortfall_kg,
       coalesce((SELECT sum(s.kg) FROM shipments s WHERE s.order_id = o.order_id), 0) AS shipped_kg
FROM orders o
LEFT JOIN LATERAL (
    SELECT a.committed_kg, a.expected_kg, a.shortfall_kg FROM allocation_orders a
    WHERE a.order_id = o.order_id
      AND a.alloc_run_id = (SELECT max(r.alloc_run_id) FROM allocation_runs r WHERE r.season = o.season)
) ao ON true
"""


def place_order(conn: psycopg.Connection, *, buyer_id: str, idempotency_key: str, grade: str,
                quantity_kg: Decimal | int | str, week_from: date, week_to: date, destination: str,
                price_fen_per_kg: int, floor_price_fen_per_kg: int | None = None) -> Order:
    """Place a forward order. The same ``idempotency_key`` with the same body returns the order already
    placed (no second order, even under concurrent retries); with a different body -> ``Conflict``.
    ``NotFound`` for an unknown buyer, ``Invalid`` for bad fields."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise Invalid("idempotency_key is required (1-200 characters)", "缺少幂等键", field="idempotency_key")
    body = _validate({"grade": grade, "quantity_kg": quantity_kg, "week_from": week_from, "week_to": week_to,
                      "destination": destination, "price_fen_per_kg": price_fen_per_kg,
                      "floor_price_fen_per_kg": floor_price_fen_per_kg})
    h = _hash(body)
    season = body["week_from"].isocalendar().year
    with conn.transaction():
        if conn.execute("SELECT 1 FROM buyers WHERE buyer_id = %s", (buyer_id,)).fetchone() is None:
            raise NotFound(f"buyer {buyer_id} not found", f"采购商 {buyer_id} 不存在", buyer_id=buyer_id)
        order_id = f"ORD-{season}-{secrets.token_hex(5).upper()}"
        row = conn.execute(
            """INSERT INTO orders (order_id, buyer_id, idempotency_key, request_hash, season, grade, quantity_kg,
                                   week_from, week_to, destination, price_fen_per_kg, floor_price_fen_per_kg)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (buyer_id, idempotency_key) DO NOTHING RETURNING order_id""",
            (order_id, buyer_id, idempotency_key, h, season, body["grade"], body["quantity_kg"],
             body["week_from"], body["week_to"], body["destination"], body["price_fen_per_kg"],
             body["floor_price_fen_per_kg"]),
        ).fetchone()
        if row is None:
            prev = conn.execute("SELECT order_id, request_hash FROM orders WHERE buyer_id = %s AND "
                                "idempotency_key = %s", (buyer_id, idempotency_key)).fetchone()
            assert prev is not None
            if prev[1] != h:
                raise Conflict("idempotency key already used for a different order",
                               "该幂等键已用于另一笔不同的订单", order_id=prev[0])
            order_id = prev[0]
    return get_order(conn, order_id)


def get_order(conn: psycopg.Connection, order_id: str) -> Order:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SELECT + " WHERE o.order_id = %s", (order_id,)).fetchone()
    if row is None:
        raise NotFound(f"order {order_id} not found", f"订单 {order_id} 不存在", order_id=order_id)
    return Order(**row)


def list_orders(conn: psycopg.Connection, *, buyer_id: str | None = None, status: str | None = None,
                season: int | None = None, limit: int = 50, offset: int = 0) -> OrderPage:
    """Orders, newest first: an :class:`OrderPage` (``items, total = list_orders(...)``)."""
    if status is not None and status not in ORDER_STATUSES:
        raise Invalid(f"status must be one of {ORDER_STATUSES}", "订单状态不正确", field="status")
    if not (1 <= limit <= 1000) or offset < 0:
        raise Invalid("limit must be 1-1000 and offset >= 0", "分页参数不正确")
    conds, args = [], []
    for col, val in (("buyer_id", buyer_id), ("status", status), ("season", season)):
        if val is not None:
            conds.append(f"o.{col} = %s")
            args.append(val)
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    with conn.cursor(row_factory=dict_row) as cur:
        total = cur.execute(f"SELECT count(*) AS n FROM orders o {where}", args).fetchone()["n"]  # type: ignore[index]
        rows = cur.execute(_SELECT + f" {where} ORDER BY o.created_at DESC, o.seq DESC LIMIT %s OFFSET %s",
                           [*args, limit, offset]).fetchall()
    return OrderPage([Order(**r) for r in rows], int(total))


def _lock_own_open(conn: psycopg.Connection, order_id: str, buyer_id: str, verb: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM orders WHERE order_id = %s FOR UPDATE", (order_id,)).fetchone()
    if row is None:
        raise NotFound(f"order {order_id} not found", f"订单 {order_id} 不存在", order_id=order_id)
    if row["buyer_id"] != buyer_id:
        raise Forbidden(f"order {order_id} belongs to another buyer", "不能操作其他采购商的订单",
                        order_id=order_id)
    if row["status"] != "open":
        raise Conflict(f"order {order_id} is {row['status']}; it can only be {verb} while open (before "
                       "allocation)", f"订单已{_ZH_STATUS.get(row['status'], row['status'])}, 不能再修改或取消",
                       order_id=order_id, status=row["status"])
    return row


_ZH_STATUS = {"allocated": "分配", "fulfilled": "履约", "cancelled": "取消"}


def amend_order(conn: psycopg.Connection, order_id: str, buyer_id: str, **changes: Any) -> Order:
    """Change fields of an open order (``AMENDABLE``). ``Conflict`` once allocated, ``Forbidden`` for
    another buyer's order, ``Invalid`` for unknown or bad fields."""
    bad = set(changes) - set(AMENDABLE)
    if bad:
        raise Invalid(f"cannot amend {sorted(bad)}; amendable: {AMENDABLE}", "含有不可修改的字段",
                      fields=sorted(bad))
    if not changes:
        raise Invalid("nothing to amend", "没有需要修改的内容")
    with conn.transaction():
        row = _lock_own_open(conn, order_id, buyer_id, "amended")
        body = {k: row[k] for k in AMENDABLE}
        body.update(changes)
        body = _validate(body)
        season = body["week_from"].isocalendar().year
        conn.execute(
            """UPDATE orders SET grade = %s, quantity_kg = %s, week_from = %s, week_to = %s, destination = %s,
                   price_fen_per_kg = %s, floor_price_fen_per_kg = %s, season = %s,
                   version = version + 1, updated_at = now() WHERE order_id = %s""",
            (body["grade"], body["quantity_kg"], body["week_from"], body["week_to"], body["destination"],
             body["price_fen_per_kg"], body["floor_price_fen_per_kg"], season, order_id),
        )
    return get_order(conn, order_id)


def cancel_order(conn: psycopg.Connection, order_id: str, buyer_id: str) -> Order:
    """Cancel an open order. ``Conflict`` once allocated (or already cancelled)."""
    with conn.transaction():
        _lock_own_open(conn, order_id, buyer_id, "cancelled")
        conn.execute("UPDATE orders SET status = 'cancelled', version = version + 1, updated_at = now() "
                     "WHERE order_id = %s", (order_id,))
    return get_order(conn, order_id)
