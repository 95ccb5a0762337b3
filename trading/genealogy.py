"""Lot genealogy (批次谱系): harvest lot -> graded lots -> packed units -> shipment lots -> buyer.

Each step is one event with time, place and kg in and out, in the terms of GS1 EPCIS 2.0 / CBV 2.0
(exported by ``trading.epcis``):

===============  ===================  ==============  ========================================
step             EPCIS event          CBV bizStep     kg rule (Decimal kg, 3 decimals)
===============  ===================  ==============  ========================================
``harvest``      ObjectEvent ADD      commissioning   creates a harvest lot of ``kg``
``receive``      ObjectEvent OBSERVE  receiving       none (the objects arrive at a site)
``grade``        TransformationEvent  commissioning   sum(inputs) = sum(outputs) + sum(losses)
``pack``         AggregationEvent ADD packing         unit kg = sum(children kg)
``merge``        TransformationEvent  commissioning   sum(inputs) = output + sum(losses)
``store``        ObjectEvent OBSERVE  storing         none (opens a stay in a cold room)
``ship``         ObjectEvent OBSERVE  shipping        kg shipped <= remaining kg of each object
===============  ===================  ==============  ========================================

Inputs are taken with one conditional ``UPDATE ... WHERE remaining_kg >= kg`` per object, so no kg is
ever consumed twice, even by concurrent steps; a violated balance raises ``Invalid`` and records
nothing. Every step takes an optional idempotency key: a retried step returns the first result.
Losses always carry a reason (e.g. "腐烂", "裂果", "称重损耗").

``trace_back`` walks genealogy edges back from any object to every contributing orchard;
``recall`` walks forward from an orchard's harvest lots in a date range to every shipment and buyer.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from registry.grades import GRADE_CODES
from trading.errors import Conflict, Invalid, NotFound
from trading.gs1 import Gs1Config, gtin_for_grade, sscc
from trading.orders import _kg

KG0 = Decimal("0.000")


@dataclass(frozen=True)
class StepResult:
    """The event recorded (or found again by its idempotency key) and the objects it created."""

    event_id: str
    created: dict[str, str]          # label (grade, 'lot', 'unit') -> object id
    replayed: bool = False


def _now(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:
        raise Invalid("event time must be timezone-aware", "事件时间缺少时区", field="at")
    return at


def _new_id(prefix: str, at: datetime) -> str:
    return f"{prefix}{at.year % 100:02d}-{secrets.token_hex(4).upper()}"


def _kgs(items: dict[str, Any], what: str) -> dict[str, Decimal]:
    if not items:
        raise Invalid(f"{what} is empty", f"{what} 不能为空", field=what)
    return {k: _kg(v, f"{what}[{k}]") for k, v in items.items()}


def _losses(losses: list[tuple[Any, str]] | None) -> list[tuple[Decimal, str]]:
    out = []
    for kg, reason in losses or []:
        reason = (reason or "").strip()
        if not reason or len(reason) > 200:
            raise Invalid("every loss needs a reason (1-200 characters)", "损耗必须注明原因", field="losses")
        out.append((_kg(kg, "losses.kg"), reason))
    return out


def _replay(conn: psycopg.Connection, key: str | None) -> StepResult | None:
    if key is None:
        return None
    row = conn.execute("SELECT event_id, detail->'created' FROM trace_events WHERE idempotency_key = %s",
                       (key,)).fetchone()
    return StepResult(row[0], dict(row[1] or {}), replayed=True) if row else None


def _event(conn: psycopg.Connection, *, event_type: str, action: str | None, biz_step: str,
           disposition: str | None, at: datetime, location_id: str, key: str | None,
           parent_id: str | None = None, detail: dict[str, Any] | None = None) -> str:
    event_id = f"urn:uuid:{uuid.uuid4()}"
    conn.execute(
        "INSERT INTO trace_events (event_id, event_type, action, biz_step, disposition, event_time, "
        "location_id, parent_id, idempotency_key, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (event_id, event_type, action, biz_step, disposition, at, location_id, parent_id, key,
         Jsonb(detail or {})))
    return event_id


def _items(conn: psycopg.Connection, event_id: str, role: str, kgs: dict[str, Decimal]) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO trace_event_items (event_id, role, object_id, kg) VALUES (%s, %s, %s, %s)",
                        [(event_id, role, o, k) for o, k in kgs.items()])


def _take(conn: psycopg.Connection, inputs: dict[str, Decimal], at: datetime) -> dict[str, dict[str, Any]]:
    """Take kg from each input object (row-locked, never below 0); ``NotFound``/``Conflict`` otherwise.
    An object used up leaves its cold room at ``at``."""
    got: dict[str, dict[str, Any]] = {}
    for obj, kg in sorted(inputs.items()):       # a fixed order: concurrent steps never deadlock
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "UPDATE trace_objects SET remaining_kg = remaining_kg - %s WHERE object_id = %s "
                "AND remaining_kg >= %s RETURNING object_id, kind, grade, township_id, remaining_kg",
                (kg, obj, kg)).fetchone()
            if row is None:
                have = cur.execute("SELECT remaining_kg FROM trace_objects WHERE object_id = %s", (obj,)).fetchone()
                if have is None:
                    raise NotFound(f"lot or unit {obj} not found", f"批次或包装件 {obj} 不存在", object_id=obj)
                raise Conflict(f"{obj} has {have['remaining_kg']} kg left, asked {kg}",
                               f"{obj} 剩余 {have['remaining_kg']} 公斤, 不足 {kg} 公斤",
                               object_id=obj, available_kg=str(have["remaining_kg"]))
        got[obj] = row
    _close_stays(conn, [o for o, r in got.items() if r["remaining_kg"] == 0], at)
    return got


def _new_object(conn: psycopg.Connection, *, object_id: str, kind: str, kg: Decimal, at: datetime,
                location_id: str, cfg: Gs1Config, grade: str | None = None, orchard_id: str | None = None,
                township_id: str | None = None, harvested_on: date | None = None, unit_sscc: str | None = None,
                ) -> None:
    gtin = gtin_for_grade(cfg, grade)
    conn.execute(
        "INSERT INTO trace_objects (object_id, kind, lot_number, gtin, sscc, grade, orchard_id, township_id, "
        "harvested_on, kg, remaining_kg, created_at, location_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (object_id, kind, object_id, gtin, unit_sscc, grade, orchard_id, township_id, harvested_on, kg, kg, at,
         location_id))


def _edges(conn: psycopg.Connection, event_id: str, pairs: list[tuple[str, str, Decimal]]) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO trace_edges (from_object, to_object, event_id, kg) VALUES (%s, %s, %s, %s)",
                        [(a, b, event_id, k) for a, b, k in pairs if k > 0])


def _split(inputs: dict[str, Decimal], outputs: dict[str, Decimal]) -> list[tuple[str, str, Decimal]]:
    """Edges input -> output with kg shared in proportion to each output's share of the output kg."""
    total_out = sum(outputs.values(), KG0)
    pairs = []
    for i, ki in inputs.items():
        for o, ko in outputs.items():
            pairs.append((i, o, (ki * ko / total_out).quantize(Decimal("0.001")) if total_out else KG0))
    return pairs


def harvest(conn: psycopg.Connection, *, orchard_id: str, harvested_on: date, kg: Any, cfg: Gs1Config,
            at: datetime | None = None, idempotency_key: str | None = None) -> StepResult:
    """Record a harvest lot picked in ``orchard_id`` on ``harvested_on`` (Asia/Shanghai day), ``kg``."""
    q = _kg(kg, "kg")
    at = _now(at)
    if isinstance(harvested_on, datetime) or not isinstance(harvested_on, date) or not 2000 <= harvested_on.year <= 2100:
        raise Invalid("harvested_on must be a date in 2000-2100", "采收日期不正确", field="harvested_on")
    with conn.transaction():
        if (done := _replay(conn, idempotency_key)) is not None:
            return done
        row = conn.execute("SELECT township_id FROM orchards WHERE orchard_id = %s", (orchard_id,)).fetchone()
        if row is None:
            raise NotFound(f"orchard {orchard_id} not found", f"果园 {orchard_id} 不存在")
        township = row[0]
        lot = _new_id("HL", at)
        created = {"lot": lot}
        event_id = _event(conn, event_type="ObjectEvent", action="ADD", biz_step="commissioning",
                          disposition="active", at=at, location_id=township, key=idempotency_key,
                          detail={"created": created, "harvested_on": harvested_on.isoformat()})
        _new_object(conn, object_id=lot, kind="harvest_lot", kg=q, at=at, location_id=township, cfg=cfg,
                    orchard_id=orchard_id, township_id=township, harvested_on=harvested_on)
        _items(conn, event_id, "object", {lot: q})
    return StepResult(event_id, created)


def receive(conn: psycopg.Connection, *, object_ids: list[str], site_id: str, at: datetime | None = None,
            idempotency_key: str | None = None) -> StepResult:
    """The objects arrive at warehouse site ``site_id`` (weighed in: their kg are what they are now)."""
    return _observe(conn, object_ids, biz_step="receiving", disposition="in_progress", location=site_id,
                    at=at, key=idempotency_key)


def _observe(conn: psycopg.Connection, object_ids: list[str], *, biz_step: str, disposition: str, location: str,
             at: datetime | None, key: str | None) -> StepResult:
    if not object_ids:
        raise Invalid("object_ids is empty", "缺少批次", field="object_ids")
    at = _now(at)
    with conn.transaction():
        if (done := _replay(conn, key)) is not None:
            return done
        rows = conn.execute("SELECT object_id, remaining_kg FROM trace_objects WHERE object_id = ANY(%s) FOR UPDATE",
                            (list(object_ids),)).fetchall()
        found = {r[0]: r[1] for r in rows}
        missing = sorted(set(object_ids) - set(found))
        if missing:
            raise NotFound(f"not found: {', '.join(missing)}", f"批次不存在: {', '.join(missing)}", missing=missing)
        event_id = _event(conn, event_type="ObjectEvent", action="OBSERVE", biz_step=biz_step,
                          disposition=disposition, at=at, location_id=location, key=key, detail={"created": {}})
        _items(conn, event_id, "object", found)
        conn.execute("UPDATE trace_objects SET location_id = %s WHERE object_id = ANY(%s)", (location, list(found)))
    return StepResult(event_id, {})


def grade(conn: psycopg.Connection, *, inputs: dict[str, Any], outputs_kg_by_grade: dict[str, Any],
          losses: list[tuple[Any, str]] | None, site_id: str, cfg: Gs1Config, at: datetime | None = None,
          idempotency_key: str | None = None) -> StepResult:
    """Grade harvest lots into one lot per grade: kg in = kg out + losses (each with a reason)."""
    ins = _kgs(inputs, "inputs")
    outs = _kgs(outputs_kg_by_grade, "outputs")
    bad = sorted(set(outs) - set(GRADE_CODES))
    if bad:
        raise Invalid(f"unknown grades {bad}", "等级不正确", field="outputs")
    loss = _losses(losses)
    _balance(ins, outs, loss)
    at = _now(at)
    with conn.transaction():
        if (done := _replay(conn, idempotency_key)) is not None:
            return done
        taken = _take(conn, ins, at)
        if any(t["kind"] != "harvest_lot" for t in taken.values()):
            raise Invalid("only harvest lots are graded", "只有采收批次可以分级", field="inputs")
        township = _single_township(taken)
        created = {g: _new_id("GL", at) for g in outs}
        event_id = _event(conn, event_type="TransformationEvent", action=None, biz_step="commissioning",
                          disposition="active", at=at, location_id=site_id, key=idempotency_key,
                          detail={"created": created, "step": "grading"})
        for g, obj in created.items():
            _new_object(conn, object_id=obj, kind="graded_lot", kg=outs[g], at=at, location_id=site_id, cfg=cfg,
                        grade=g, township_id=township)
        _record_transformation(conn, event_id, ins, {created[g]: k for g, k in outs.items()}, loss)
    return StepResult(event_id, created)


def _single_township(taken: dict[str, dict[str, Any]]) -> str | None:
    towns = {t["township_id"] for t in taken.values()}
    return towns.pop() if len(towns) == 1 else None


def _balance(ins: dict[str, Decimal], outs: dict[str, Decimal], loss: list[tuple[Decimal, str]]) -> None:
    kin, kout, kloss = sum(ins.values(), KG0), sum(outs.values(), KG0), sum((k for k, _ in loss), KG0)
    if kin != kout + kloss:
        raise Invalid(f"mass balance: {kin} kg in != {kout} kg out + {kloss} kg loss",
                      f"质量不平衡: 投入 {kin} 公斤 ≠ 产出 {kout} 公斤 + 损耗 {kloss} 公斤",
                      field="outputs", in_kg=str(kin), out_kg=str(kout), loss_kg=str(kloss))


def _record_transformation(conn: psycopg.Connection, event_id: str, ins: dict[str, Decimal],
                           outs: dict[str, Decimal], loss: list[tuple[Decimal, str]]) -> None:
    _items(conn, event_id, "input", ins)
    _items(conn, event_id, "output", outs)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO trace_losses (event_id, kg, reason) VALUES (%s, %s, %s)",
                        [(event_id, k, r) for k, r in loss])
    _edges(conn, event_id, _split(ins, outs))


def pack(conn: psycopg.Connection, *, children: dict[str, Any], site_id: str, cfg: Gs1Config,
         at: datetime | None = None, idempotency_key: str | None = None) -> StepResult:
    """Pack kg of graded lots (one grade) into one packed unit with its own SSCC; unit kg = sum of children."""
    kids = _kgs(children, "children")
    at = _now(at)
    with conn.transaction():
        if (done := _replay(conn, idempotency_key)) is not None:
            return done
        taken = _take(conn, kids, at)
        grades = {t["grade"] for t in taken.values()}
        if len(grades) != 1 or None in grades or any(t["kind"] != "graded_lot" for t in taken.values()):
            raise Invalid("a packed unit holds graded lots of one grade", "一个包装件只能装同一等级的分级批次",
                          field="children")
        row = conn.execute("SELECT nextval('trace_sscc_serial')").fetchone()
        unit = _new_id("PU", at)
        code = sscc(cfg, int(row[0]) if row else 0)
        created = {"unit": unit, "sscc": code}
        event_id = _event(conn, event_type="AggregationEvent", action="ADD", biz_step="packing",
                          disposition="in_progress", at=at, location_id=site_id, key=idempotency_key,
                          parent_id=None, detail={"created": created})
        _new_object(conn, object_id=unit, kind="packed_unit", kg=sum(kids.values(), KG0), at=at,
                    location_id=site_id, cfg=cfg, grade=grades.pop(), township_id=_single_township(taken),
                    unit_sscc=code)
        conn.execute("UPDATE trace_events SET parent_id = %s WHERE event_id = %s", (unit, event_id))
        _items(conn, event_id, "child", kids)
        _edges(conn, event_id, [(c, unit, k) for c, k in kids.items()])
    return StepResult(event_id, created)


def merge(conn: psycopg.Connection, *, inputs: dict[str, Any], losses: list[tuple[Any, str]] | None,
          site_id: str, cfg: Gs1Config, at: datetime | None = None,
          idempotency_key: str | None = None) -> StepResult:
    """Merge graded lots or packed units of one grade (e.g. several family orchards) into one shipment lot."""
    ins = _kgs(inputs, "inputs")
    loss = _losses(losses)
    out_kg = sum(ins.values(), KG0) - sum((k for k, _ in loss), KG0)
    if out_kg <= 0:
        raise Invalid("losses exceed the inputs", "损耗超过投入", field="losses")
    at = _now(at)
    with conn.transaction():
        if (done := _replay(conn, idempotency_key)) is not None:
            return done
        taken = _take(conn, ins, at)
        grades = {t["grade"] for t in taken.values()}
        if len(grades) != 1 or None in grades:
            raise Invalid("a shipment lot is one grade", "发货批次只能是同一等级", field="inputs")
        lot = _new_id("SL", at)
        created = {"lot": lot}
        event_id = _event(conn, event_type="TransformationEvent", action=None, biz_step="commissioning",
                          disposition="active", at=at, location_id=site_id, key=idempotency_key,
                          detail={"created": created, "step": "merging"})
        _new_object(conn, object_id=lot, kind="shipment_lot", kg=out_kg, at=at, location_id=site_id, cfg=cfg,
                    grade=grades.pop(), township_id=_single_township(taken))
        _record_transformation(conn, event_id, ins, {lot: out_kg}, loss)
    return StepResult(event_id, created)


def store(conn: psycopg.Connection, *, object_ids: list[str], cold_room_id: str, at: datetime | None = None,
          idempotency_key: str | None = None) -> StepResult:
    """The objects enter cold room ``cold_room_id`` (closing any stay in another room)."""
    if conn.execute("SELECT 1 FROM cold_rooms WHERE cold_room_id = %s", (cold_room_id,)).fetchone() is None:
        raise NotFound(f"cold room {cold_room_id} not found", f"冷库 {cold_room_id} 不存在")
    at_ = _now(at)
    with conn.transaction():
        res = _observe(conn, object_ids, biz_step="storing", disposition="in_progress", location=cold_room_id,
                       at=at_, key=idempotency_key)
        if not res.replayed:
            _close_stays(conn, object_ids, at_)
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO trace_room_stays (object_id, cold_room_id, entered_at) "
                                "VALUES (%s, %s, %s)", [(o, cold_room_id, at_) for o in set(object_ids)])
    return res


def _close_stays(conn: psycopg.Connection, object_ids: list[str], at: datetime) -> None:
    conn.execute("UPDATE trace_room_stays SET left_at = greatest(entered_at, %s) "
                 "WHERE object_id = ANY(%s) AND left_at IS NULL", (at, list(object_ids)))


def ship(conn: psycopg.Connection, *, items: dict[str, Any], buyer_id: str, destination: str, site_id: str,
         order_id: str | None = None, at: datetime | None = None, idempotency_key: str | None = None) -> StepResult:
    """Ship kg of objects (shipment lots, packed units or graded lots) to ``buyer_id``."""
    kgs = _kgs(items, "items")
    destination = (destination or "").strip()
    if not destination or len(destination) > 200:
        raise Invalid("destination is required (≤ 200 characters)", "缺少目的地", field="destination")
    at = _now(at)
    with conn.transaction():
        if (done := _replay(conn, idempotency_key)) is not None:
            return done
        if conn.execute("SELECT 1 FROM buyers WHERE buyer_id = %s", (buyer_id,)).fetchone() is None:
            raise NotFound(f"buyer {buyer_id} not found", f"采购商 {buyer_id} 不存在")
        if order_id is not None and conn.execute("SELECT 1 FROM orders WHERE order_id = %s AND buyer_id = %s",
                                                 (order_id, buyer_id)).fetchone() is None:
            raise Invalid(f"order {order_id} is not {buyer_id}'s", "订单与采购商不符", field="order_id")
        taken = _take(conn, kgs, at)
        if any(t["kind"] == "harvest_lot" for t in taken.values()):
            raise Invalid("ungraded harvest lots are not shipped", "未分级的采收批次不能发货", field="items")
        event_id = _event(conn, event_type="ObjectEvent", action="OBSERVE", biz_step="shipping",
                          disposition="in_transit", at=at, location_id=site_id, key=idempotency_key,
                          detail={"created": {}, "buyer_id": buyer_id, "order_id": order_id,
                                  "destination": destination})
        _items(conn, event_id, "object", kgs)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO trace_deliveries (event_id, object_id, buyer_id, order_id, destination, kg) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                            [(event_id, o, buyer_id, order_id, destination, k) for o, k in kgs.items()])
    return StepResult(event_id, {})


_BACK = """
WITH RECURSIVE up(object_id) AS (
    SELECT %(obj)s::text
    UNION
    SELECT e.from_object FROM trace_edges e JOIN up ON e.to_object = up.object_id
)
SELECT o.object_id, o.orchard_id, o.township_id, o.harvested_on, o.kg
  FROM up JOIN trace_objects o USING (object_id)
 WHERE o.kind = 'harvest_lot'
 ORDER BY o.harvested_on, o.orchard_id, o.object_id
"""


def trace_back(conn: psycopg.Connection, object_id: str) -> list[dict[str, Any]]:
    """Every harvest lot (orchard, township, harvest day, kg harvested) that went into ``object_id``."""
    if conn.execute("SELECT 1 FROM trace_objects WHERE object_id = %s", (object_id,)).fetchone() is None:
        raise NotFound(f"lot or unit {object_id} not found", f"批次或包装件 {object_id} 不存在")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_BACK, {"obj": object_id}).fetchall()


_FORWARD = """
WITH RECURSIVE down(object_id) AS (
    SELECT object_id FROM trace_objects
     WHERE orchard_id = %(orchard)s AND harvested_on BETWEEN %(d0)s AND %(d1)s
    UNION
    SELECT e.to_object FROM trace_edges e JOIN down ON e.from_object = down.object_id
)
SELECT d.buyer_id, b.name AS buyer_name, d.order_id, d.destination, d.object_id, d.kg,
       ev.event_time AS shipped_at, ev.event_id
  FROM down JOIN trace_deliveries d USING (object_id)
  JOIN trace_events ev ON ev.event_id = d.event_id
  JOIN buyers b ON b.buyer_id = d.buyer_id
 ORDER BY ev.event_time, d.buyer_id, d.object_id
"""


def recall(conn: psycopg.Connection, *, orchard_id: str, date_from: date, date_to: date) -> list[dict[str, Any]]:
    """Every shipment (buyer, order, destination, object, kg, time) that carried fruit of ``orchard_id``
    harvested between ``date_from`` and ``date_to`` (inclusive): the recall query (召回)."""
    if date_to < date_from:
        raise Invalid("date_to is before date_from", "结束日期早于开始日期", field="date_to")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_FORWARD, {"orchard": orchard_id, "d0": date_from, "d1": date_to}).fetchall()


def received_by(conn: psycopg.Connection, buyer_id: str) -> set[str]:
    """Every object upstream of what ``buyer_id`` received (what that buyer may see the events of)."""
    rows = conn.execute(
        """WITH RECURSIVE up(object_id) AS (
               SELECT object_id FROM trace_deliveries WHERE buyer_id = %s
               UNION
               SELECT e.from_object FROM trace_edges e JOIN up ON e.to_object = up.object_id)
           SELECT object_id FROM up""", (buyer_id,)).fetchall()
    return {r[0] for r in rows}


def record_receipt(conn: psycopg.Connection, *, lot_id: str, orchard_id: str, harvested_on: date,
                   kg_by_grade: dict[str, Decimal], cold_room_id: str, warehouse_id: str, at: datetime,
                   cfg: Gs1Config | None = None) -> dict[str, str]:
    """The genealogy of a warehouse receipt (``trading.warehouse.receive_lot``, which weighs and grades in
    one go): a harvest lot of the total kg, graded without loss into one graded lot per grade (kept as
    the warehouse lot), received and stored in the cold room. Runs in the caller's transaction."""
    cfg = cfg or Gs1Config()
    total = sum(kg_by_grade.values(), KG0)
    h = harvest(conn, orchard_id=orchard_id, harvested_on=harvested_on, kg=total, cfg=cfg, at=at,
                idempotency_key=f"receipt:{lot_id}:harvest")
    receive(conn, object_ids=[h.created["lot"]], site_id=warehouse_id, at=at, idempotency_key=f"receipt:{lot_id}:in")
    g = grade(conn, inputs={h.created["lot"]: total}, outputs_kg_by_grade=dict(kg_by_grade), losses=[],
              site_id=warehouse_id, cfg=cfg, at=at, idempotency_key=f"receipt:{lot_id}:grade")
    conn.execute("UPDATE trace_objects SET warehouse_lot = %s WHERE object_id = ANY(%s)",
                 (lot_id, [h.created["lot"], *g.created.values()]))
    store(conn, object_ids=list(g.created.values()), cold_room_id=cold_room_id, at=at,
          idempotency_key=f"receipt:{lot_id}:store")
    return g.created


def record_fulfilment(conn: psycopg.Connection, *, lot_id: str, grade_code: str, kg: Decimal, buyer_id: str,
                      order_id: str, destination: str, shipment_id: int, at: datetime) -> str | None:
    """The shipping event of a warehouse shipment (``trading.warehouse.fulfil``) from the graded lot the
    receipt recorded; None for a lot received before genealogy was recorded. Caller's transaction."""
    row = conn.execute("SELECT object_id FROM trace_objects WHERE warehouse_lot = %s AND kind = 'graded_lot' "
                       "AND grade = %s", (lot_id, grade_code)).fetchone()
    if row is None:
        return None
    wh = conn.execute("SELECT location_id FROM trace_objects WHERE object_id = %s", (row[0],)).fetchone()
    res = ship(conn, items={row[0]: kg}, buyer_id=buyer_id, order_id=order_id, destination=destination,
               site_id=wh[0] if wh else "warehouse", at=at, idempotency_key=f"shipment:{shipment_id}")
    conn.execute("UPDATE trace_deliveries SET shipment_id = %s WHERE event_id = %s", (shipment_id, res.event_id))
    return res.event_id


def upstream(conn: psycopg.Connection, object_id: str) -> set[str]:
    """``object_id`` and every object it was made of (what its public EPCIS view may show)."""
    rows = conn.execute(
        """WITH RECURSIVE up(object_id) AS (SELECT %s::text UNION
               SELECT e.from_object FROM trace_edges e JOIN up ON e.to_object = up.object_id)
           SELECT object_id FROM up""", (object_id,)).fetchall()
    return {r[0] for r in rows}
