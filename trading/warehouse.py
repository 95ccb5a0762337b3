"""The origin cloud warehouse (产地云仓): cold rooms, harvest lots, stock and shipments with trace codes.

* ``receive_lot``: a lot arrives from an orchard, weighed and graded (kg per grade), into a cold room;
  the room's capacity (kg) is enforced under a row lock on the room, so concurrent receipts cannot
  overfill it.
* ``fulfil``: ship kg of one grade from a lot to an allocated order. The stock decrement is one
  conditional ``UPDATE ... WHERE remaining_kg >= kg`` (row-locked; PostgreSQL re-checks the condition
  after a concurrent writer commits) and a ``CHECK (remaining_kg >= 0)`` backs it, so concurrent
  fulfilments can never oversell a lot; the order row is locked too, so an order is never shipped
  beyond its quantity. Each shipment gets a unique, unguessable trace code.
* A blacklisted supplier's lot cannot be shipped (``Forbidden``).

kg are Decimal with 3 decimals; prices integer fen per kg; money integer fen (rounded half up).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from registry.grades import GRADE_CODES, can_fill
from trading import genealogy
from trading.errors import Conflict, Forbidden, Invalid, NotFound
from trading.limits import check_trade_date
from trading.orders import _kg
from trading.quality import is_orchard_blacklisted
from trading.stock import lock_rows, take_available

DEFAULT_WAREHOUSE = ("WH-WUSHAN", "巫山脆李产地云仓", 31.074, 109.878)
#: demo cold rooms: (id, name, capacity kg, set point °C) — sizes are an assumption
DEFAULT_ROOMS: tuple[tuple[str, str, int, float], ...] = tuple(
    (f"CR-{i:02d}", f"{i}号冷库", 1_500_000, 1.0) for i in range(1, 9)
)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass
class Lot:
    lot_id: str
    orchard_id: str
    season: int
    harvested_on: date
    received_at: datetime
    cold_room_id: str
    received_kg: dict[str, Decimal] = field(default_factory=dict)
    remaining_kg: dict[str, Decimal] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Shipment:
    shipment_id: int
    trace_code: str
    order_id: str
    lot_id: str
    grade: str
    kg: Decimal
    price_fen_per_kg: int
    amount_fen: int
    shipped_at: datetime
    from_warehouse_id: str | None = None
    client_request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_warehouse(conn: psycopg.Connection) -> int:
    """Create the demo warehouse and its cold rooms (idempotent); returns rooms created."""
    wid, name, lat, lon = DEFAULT_WAREHOUSE
    n = 0
    with conn.transaction():
        conn.execute("INSERT INTO warehouses (warehouse_id, name, lat, lon) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (wid, name, lat, lon))
        for rid, rname, cap, temp in DEFAULT_ROOMS:
            n += conn.execute("INSERT INTO cold_rooms (cold_room_id, warehouse_id, name, capacity_kg, "
                              "temperature_c) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                              (rid, wid, rname, cap, temp)).rowcount
    return n


def create_cold_room(conn: psycopg.Connection, *, cold_room_id: str, warehouse_id: str, name: str,
                     capacity_kg: Decimal | int, temperature_c: float = 1.0) -> dict[str, Any]:
    cap = _kg(capacity_kg, "capacity_kg")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM warehouses WHERE warehouse_id = %s", (warehouse_id,)).fetchone() is None:
            raise NotFound(f"warehouse {warehouse_id} not found", "仓库不存在")
        row = conn.execute("INSERT INTO cold_rooms (cold_room_id, warehouse_id, name, capacity_kg, temperature_c) "
                           "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING cold_room_id",
                           (cold_room_id, warehouse_id, name, cap, temperature_c)).fetchone()
    if row is None:
        raise Conflict(f"cold room {cold_room_id} exists", "冷库编号已存在")
    return {"cold_room_id": cold_room_id, "warehouse_id": warehouse_id, "name": name, "capacity_kg": cap}


def warehouse_location(conn: psycopg.Connection, warehouse_id: str | None = None) -> tuple[str, float, float]:
    """(warehouse_id, lat, lon) of the given or the first warehouse; ``NotFound`` if none exists."""
    row = conn.execute("SELECT warehouse_id, lat, lon FROM warehouses WHERE (%s::text IS NULL OR "
                       "warehouse_id = %s) ORDER BY warehouse_id LIMIT 1", (warehouse_id, warehouse_id)).fetchone()
    if row is None:
        raise NotFound("no warehouse configured (run seed_warehouse)", "尚未配置云仓")
    return str(row[0]), float(row[1]), float(row[2])


def storage_capacity_kg(conn: psycopg.Connection, warehouse_id: str | None = None) -> Decimal:
    row = conn.execute("SELECT coalesce(sum(capacity_kg), 0) FROM cold_rooms WHERE active AND "
                       "(%s::text IS NULL OR warehouse_id = %s)", (warehouse_id, warehouse_id)).fetchone()
    return Decimal(row[0]) if row else Decimal(0)


def receive_lot(conn: psycopg.Connection, *, orchard_id: str, harvested_on: date,
                kg_by_grade: dict[str, Any], cold_room_id: str) -> Lot:
    """Receive a weighed, graded harvest lot into a cold room. ``Invalid`` for unknown grades or
    non-positive kg, ``NotFound`` for an unknown orchard or room, ``Conflict`` when the room is full."""
    if not kg_by_grade:
        raise Invalid("kg_by_grade is empty", "缺少分级重量", field="kg_by_grade")
    kgs: dict[str, Decimal] = {}
    for g, v in kg_by_grade.items():
        if g not in GRADE_CODES:
            raise Invalid(f"grade {g!r} not in {GRADE_CODES}", "等级不正确", field="kg_by_grade")
        kgs[g] = _kg(v, f"kg_by_grade[{g}]")
    if isinstance(harvested_on, datetime) or not isinstance(harvested_on, date):
        raise Invalid("harvested_on must be a date", "采收日期不正确", field="harvested_on")
    check_trade_date(harvested_on, "harvested_on")
    total = sum(kgs.values(), Decimal(0))
    with conn.transaction():
        if conn.execute("SELECT 1 FROM orchards WHERE orchard_id = %s", (orchard_id,)).fetchone() is None:
            raise NotFound(f"orchard {orchard_id} not found", f"果园 {orchard_id} 不存在")
        room = conn.execute("SELECT capacity_kg, active FROM cold_rooms WHERE cold_room_id = %s FOR UPDATE",
                            (cold_room_id,)).fetchone()
        if room is None:
            raise NotFound(f"cold room {cold_room_id} not found", f"冷库 {cold_room_id} 不存在")
        if not room[1]:
            raise Conflict(f"cold room {cold_room_id} is out of service", "冷库已停用")
        used = conn.execute("SELECT coalesce(sum(lg.remaining_kg), 0) FROM lot_grades lg JOIN lots l "
                            "USING (lot_id) WHERE l.cold_room_id = %s", (cold_room_id,)).fetchone()
        used_kg = Decimal(used[0]) if used else Decimal(0)
        if used_kg + total > room[0]:
            raise Conflict(f"cold room {cold_room_id} has {room[0] - used_kg} kg free, lot is {total} kg",
                           f"冷库剩余容量 {room[0] - used_kg} 公斤, 不足 {total} 公斤",
                           free_kg=str(room[0] - used_kg), lot_kg=str(total))
        season = harvested_on.isocalendar().year
        lot_id = f"LOT-{season}-{secrets.token_hex(4).upper()}"
        conn.execute("INSERT INTO lots (lot_id, orchard_id, season, harvested_on, cold_room_id) "
                     "VALUES (%s, %s, %s, %s, %s)", (lot_id, orchard_id, season, harvested_on, cold_room_id))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO lot_grades (lot_id, grade, received_kg, remaining_kg) "
                            "VALUES (%s, %s, %s, %s)", [(lot_id, g, k, k) for g, k in kgs.items()])
        genealogy.record_receipt(conn, lot_id=lot_id, orchard_id=orchard_id, harvested_on=harvested_on,
                                 kg_by_grade=kgs, cold_room_id=cold_room_id,
                                 warehouse_id=_room_warehouse(conn, cold_room_id), at=datetime.now(UTC))
    return get_lot(conn, lot_id)


def _room_warehouse(conn: psycopg.Connection, cold_room_id: str) -> str:
    row = conn.execute("SELECT warehouse_id FROM cold_rooms WHERE cold_room_id = %s", (cold_room_id,)).fetchone()
    return str(row[0]) if row else "warehouse"


def get_lot(conn: psycopg.Connection, lot_id: str) -> Lot:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT lot_id, orchard_id, season, harvested_on, received_at, cold_room_id "
                          "FROM lots WHERE lot_id = %s", (lot_id,)).fetchone()
        if row is None:
            raise NotFound(f"lot {lot_id} not found", f"批次 {lot_id} 不存在", lot_id=lot_id)
        grades = cur.execute("SELECT grade, received_kg, remaining_kg FROM lot_grades WHERE lot_id = %s "
                             "ORDER BY grade", (lot_id,)).fetchall()
    lot = Lot(**row)
    lot.received_kg = {g["grade"]: g["received_kg"] for g in grades}
    lot.remaining_kg = {g["grade"]: g["remaining_kg"] for g in grades}
    return lot


def new_trace_code(season: int) -> str:
    """A new random trace code for a box of the season: ``WS26-XXXX-XXXX-XXXX`` (Crockford base 32, 60 bits)."""
    body = "".join(secrets.choice(_CROCKFORD) for _ in range(12))
    return f"WS{season % 100:02d}-{body[:4]}-{body[4:8]}-{body[8:]}"


def fulfil(conn: psycopg.Connection, *, order_id: str, lot_id: str, grade: str, kg: Any,
           client_request_id: str | None = None) -> Shipment:
    """Ship ``kg`` of ``grade`` from ``lot_id`` to an allocated order; returns the shipment and its trace
    code. ``Conflict`` when the lot lacks the stock or the order would be over-shipped or is not
    allocated, ``Forbidden`` for a blacklisted supplier's lot, ``Invalid`` when the grade cannot fill
    the order (a better grade may fill a lower one, at the order's price).

    The kg come from the lot's *available* stock (remaining minus spot holds, :mod:`trading.stock`), so
    forward orders and spot sales never sell the same kg. With ``client_request_id`` a retry returns the
    first shipment (another body with the same id is a ``Conflict``). The shipment leaves from the site
    whose cold room holds the lot (``from_warehouse_id``)."""
    q = _kg(kg, "kg")
    if grade not in GRADE_CODES:
        raise Invalid(f"grade {grade!r} not in {GRADE_CODES}", "等级不正确", field="grade")
    with conn.transaction():
        if client_request_id is not None:   # concurrent retries of one request wait for each other
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 17))", (client_request_id,))
            with conn.cursor(row_factory=dict_row) as cur:
                prev = cur.execute("SELECT * FROM shipments WHERE client_request_id = %s",
                                   (client_request_id,)).fetchone()
            if prev is not None:
                if (prev["order_id"], prev["lot_id"], prev["grade"], prev["kg"]) != (order_id, lot_id, grade, q):
                    raise Conflict("this client_request_id was used for another shipment",
                                   "该请求编号已用于另一笔发货", shipment_id=prev["shipment_id"])
                return Shipment(**{k: prev[k] for k in Shipment.__dataclass_fields__})
        order = conn.execute("SELECT status, grade, quantity_kg, price_fen_per_kg, floor_price_fen_per_kg, season "
                             "FROM orders WHERE order_id = %s FOR UPDATE", (order_id,)).fetchone()
        if order is None:
            raise NotFound(f"order {order_id} not found", f"订单 {order_id} 不存在", order_id=order_id)
        status, ograde, qty, price, floor, season = order
        if status != "allocated":
            raise Conflict(f"order {order_id} is {status}; only allocated orders are fulfilled",
                           "只有已分配的订单才能发货", status=status)
        if not can_fill(grade, ograde):
            raise Invalid(f"grade {grade} cannot fill an order for {ograde}", "该等级不能满足订单等级",
                          field="grade")
        lot = conn.execute("SELECT l.orchard_id, r.warehouse_id FROM lots l JOIN cold_rooms r USING (cold_room_id) "
                           "WHERE l.lot_id = %s", (lot_id,)).fetchone()
        if lot is None:
            raise NotFound(f"lot {lot_id} not found", f"批次 {lot_id} 不存在", lot_id=lot_id)
        if is_orchard_blacklisted(conn, lot[0]):
            raise Forbidden(f"lot {lot_id} comes from a blacklisted supplier ({lot[0]})",
                            "该批次来自黑名单供应方, 不能发货", lot_id=lot_id)
        shipped = conn.execute("SELECT coalesce(sum(kg), 0) FROM shipments WHERE order_id = %s",
                               (order_id,)).fetchone()
        shipped_kg = Decimal(shipped[0]) if shipped else Decimal(0)
        if shipped_kg + q > qty:
            raise Conflict(f"order {order_id} has {qty - shipped_kg} kg left to ship, asked {q}",
                           f"订单剩余待发 {qty - shipped_kg} 公斤", left_kg=str(qty - shipped_kg))
        lock_rows(conn, [(lot_id, grade)])
        take_available(conn, (lot_id, grade), q)
        paid = max(price, floor or 0)
        amount = int((q * paid).to_integral_value(rounding=ROUND_HALF_UP))
        with conn.cursor(row_factory=dict_row) as cur:
            row = None
            while row is None:
                row = cur.execute(
                    "INSERT INTO shipments (trace_code, order_id, lot_id, grade, kg, price_fen_per_kg, amount_fen, "
                    "from_warehouse_id, client_request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (trace_code) DO NOTHING RETURNING *",
                    (new_trace_code(season), order_id, lot_id, grade, q, paid, amount, lot[1],
                     client_request_id)).fetchone()
        if shipped_kg + q == qty:
            conn.execute("UPDATE orders SET status = 'fulfilled', updated_at = now() WHERE order_id = %s",
                         (order_id,))
        buyer, dest = conn.execute("SELECT buyer_id, destination FROM orders WHERE order_id = %s",
                                   (order_id,)).fetchone()
        genealogy.record_fulfilment(conn, lot_id=lot_id, grade_code=grade, kg=q, buyer_id=buyer, order_id=order_id,
                                    destination=dest, shipment_id=row["shipment_id"], at=row["shipped_at"])
    return Shipment(**{k: row[k] for k in Shipment.__dataclass_fields__})


def stock(conn: psycopg.Connection, *, cold_room_id: str | None = None) -> list[dict[str, Any]]:
    """Stock per cold room and grade: ``{cold_room_id, name, capacity_kg, grade, kg, lots}``; rooms
    without stock appear once with ``grade`` None and ``kg`` 0."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT r.cold_room_id, r.name, r.capacity_kg, s.grade, coalesce(s.kg, 0) AS kg,
                      coalesce(s.lots, 0) AS lots
               FROM cold_rooms r
               LEFT JOIN (SELECT l.cold_room_id, lg.grade, sum(lg.remaining_kg) AS kg,
                                 count(*) FILTER (WHERE lg.remaining_kg > 0) AS lots
                          FROM lots l JOIN lot_grades lg USING (lot_id) GROUP BY 1, 2) s USING (cold_room_id)
               WHERE (%s::text IS NULL OR r.cold_room_id = %s)
               ORDER BY r.cold_room_id, s.grade""", (cold_room_id, cold_room_id)).fetchall()
