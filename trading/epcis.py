"""Lot genealogy as GS1 EPCIS 2.0 JSON-LD, and the subset of the EPCIS 2.0 query interface buyers poll.

Standards: GS1 EPCIS 2.0 (2022) §7 (event types) and §9 (JSON/JSON-LD binding, validated in the tests
against GS1's published ``EPCIS-JSON-Schema.json``); GS1 CBV 2.0 business steps and dispositions
(bare names such as ``"commissioning"``, which the EPCIS 2.0 JSON-LD context expands to
``https://ref.gs1.org/cbv/BizStep-commissioning``).

Identifiers are GS1 Digital Link URIs (``trading.gs1``): lots are class-level (``quantityList`` with
``epcClass`` = ``<resolver>/01/<GTIN>/10/<lot>``, ``quantity`` in kg, ``uom`` ``KGM`` from UN/ECE
Recommendation 20); packed units are instance-level (``<resolver>/00/<SSCC>``). Places (townships,
sites, cold rooms), buyers and orders are URIs under the resolver (*assumption*: no GLNs are issued yet).

Mapping (event type, bizStep): harvest = ObjectEvent ADD commissioning with ILMD (CBV master data
``cbvmda:countryOfOrigin``, ``cbvmda:harvestStartDate``/``harvestEndDate``); receiving / storing /
shipping = ObjectEvent OBSERVE; grading and merging = TransformationEvent (inputs, outputs; losses in
``yc:loss`` as an extension); packing = AggregationEvent ADD (``parentID`` = SSCC, ``childQuantityList``).
The origin in events is the township, never a grower's name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trading.errors import Invalid
from trading.gs1 import Gs1Config, lot_uri, parse_link, sscc_uri

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
YC_NS = "https://ns.yuncang.example/epcis/"       # namespace of yuncang's own extension fields
MAX_EVENTS = 10_000                                # per query answer (EPCIS: a query may be refused as too large)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _kg(v: Decimal) -> float:
    return float(v)


def object_uri(cfg: Gs1Config, obj: dict[str, Any]) -> str:
    """The EPC (packed unit) or EPC class (lot) URI of a ``trace_objects`` row."""
    if obj["kind"] == "packed_unit":
        return sscc_uri(cfg, obj["sscc"])
    return lot_uri(cfg, obj["gtin"], obj["lot_number"])


def _place(cfg: Gs1Config, location_id: str) -> dict[str, str]:
    return {"id": f"{cfg.resolver.rstrip('/')}/loc/{location_id}"}


def _qty(cfg: Gs1Config, obj: dict[str, Any], kg: Decimal) -> dict[str, Any]:
    return {"epcClass": object_uri(cfg, obj), "quantity": _kg(kg), "uom": "KGM"}


def _split_items(cfg: Gs1Config, items: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Packed units go in an EPC list (instance level), lots in a quantity list (class level, kg)."""
    epcs = [object_uri(cfg, i) for i in items if i["kind"] == "packed_unit"]
    qty = [_qty(cfg, i, i["item_kg"]) for i in items if i["kind"] != "packed_unit"]
    return epcs, qty


def event_json(cfg: Gs1Config, ev: dict[str, Any], items: list[dict[str, Any]], losses: list[dict[str, Any]],
               parent: dict[str, Any] | None) -> dict[str, Any]:
    """One ``trace_events`` row (with its items, losses and parent) as an EPCIS 2.0 JSON-LD event."""
    out: dict[str, Any] = {
        "type": ev["event_type"],
        "eventTime": _iso(ev["event_time"]),
        "eventTimeZoneOffset": "+08:00",
        "recordTime": _iso(ev["recorded_at"]),
        "eventID": ev["event_id"],
        "bizStep": ev["biz_step"],
        "readPoint": _place(cfg, ev["location_id"]),
        "bizLocation": _place(cfg, ev["location_id"]),
    }
    if ev["disposition"]:
        out["disposition"] = ev["disposition"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for i in items:
        by_role.setdefault(i["role"], []).append(i)
    detail = ev["detail"] or {}
    if ev["event_type"] == "ObjectEvent":
        out["action"] = ev["action"]
        epcs, qty = _split_items(cfg, by_role.get("object", []))
        out["epcList"] = epcs
        if qty:
            out["quantityList"] = qty
        if ev["action"] == "ADD" and detail.get("harvested_on"):
            out["ilmd"] = {"cbvmda:countryOfOrigin": "CN", "cbvmda:harvestStartDate": detail["harvested_on"],
                           "cbvmda:harvestEndDate": detail["harvested_on"]}
        if ev["biz_step"] == "shipping":
            if detail.get("order_id"):
                out["bizTransactionList"] = [{"type": "po", "bizTransaction":
                                              f"{cfg.resolver.rstrip('/')}/po/{detail['order_id']}"}]
            out["destinationList"] = [{"type": "owning_party",
                                       "destination": f"{cfg.resolver.rstrip('/')}/party/{detail['buyer_id']}"}]
    elif ev["event_type"] == "TransformationEvent":
        for role, key in (("input", "input"), ("output", "output")):
            epcs, qty = _split_items(cfg, by_role.get(role, []))
            if epcs:
                out[f"{key}EPCList"] = epcs
            if qty:
                out[f"{key}QuantityList"] = qty
        if losses:
            out["yc:loss"] = [{"yc:kg": _kg(x["kg"]), "yc:reason": x["reason"]} for x in losses]
    else:  # AggregationEvent
        out["action"] = ev["action"]
        if parent is not None:
            out["parentID"] = object_uri(cfg, parent)
        epcs, qty = _split_items(cfg, by_role.get("child", []))
        out["childEPCs"] = epcs
        if qty:
            out["childQuantityList"] = qty
    return out


def _context() -> list[Any]:
    return [EPCIS_CONTEXT, {"yc": YC_NS}]


def query_events(conn: psycopg.Connection, cfg: Gs1Config, *, ge_time: datetime | None = None,
                 lt_time: datetime | None = None, match_epc: list[str] | None = None,
                 visible: set[str] | None = None, viewer: str | None = None,
                 limit: int = MAX_EVENTS) -> list[dict[str, Any]]:
    """Events by time (``GE_eventTime`` <= t < ``LT_eventTime``) and by EPC / EPC class
    (``MATCH_anyEPC``, ``MATCH_anyEPCClass``: Digital Link URIs), in event-time order.

    ``visible`` (object ids, see ``trading.genealogy.received_by``) limits the answer to events naming
    an object the buyer ``viewer`` may see, and to deliveries made to that buyer (a buyer never sees
    another buyer's shipments). ``visible=None``: everything (managers, administrators)."""
    objs: list[str] | None = None
    if match_epc:
        objs = _objects_for_uris(conn, match_epc)
    with conn.cursor(row_factory=dict_row) as cur:
        evs = cur.execute(
            """SELECT DISTINCT e.* FROM trace_events e
                LEFT JOIN trace_event_items i ON i.event_id = e.event_id
               WHERE (%(ge)s::timestamptz IS NULL OR e.event_time >= %(ge)s)
                 AND (%(lt)s::timestamptz IS NULL OR e.event_time < %(lt)s)
                 AND (%(objs)s::text[] IS NULL OR i.object_id = ANY(%(objs)s) OR e.parent_id = ANY(%(objs)s))
               ORDER BY e.event_time, e.event_id LIMIT %(lim)s""",
            {"ge": ge_time, "lt": lt_time, "objs": objs, "lim": limit + 1}).fetchall()
        if len(evs) > limit:
            raise Invalid(f"more than {limit} events match; narrow the time range",
                          f"匹配的事件超过 {limit} 条, 请缩小时间范围", field="GE_eventTime")
        ids = [e["event_id"] for e in evs]
        items = cur.execute(
            """SELECT i.event_id, i.role, i.kg AS item_kg, o.* FROM trace_event_items i
                 JOIN trace_objects o USING (object_id) WHERE i.event_id = ANY(%s)
                ORDER BY i.event_id, i.role, o.object_id""", (ids,)).fetchall()
        losses = cur.execute("SELECT event_id, kg, reason FROM trace_losses WHERE event_id = ANY(%s)",
                             (ids,)).fetchall()
        parents = cur.execute("SELECT * FROM trace_objects WHERE object_id IN "
                              "(SELECT parent_id FROM trace_events WHERE event_id = ANY(%s))", (ids,)).fetchall()
    by_ev: dict[str, list[dict[str, Any]]] = {}
    for i in items:
        by_ev.setdefault(i["event_id"], []).append(i)
    loss_by: dict[str, list[dict[str, Any]]] = {}
    for x in losses:
        loss_by.setdefault(x["event_id"], []).append(x)
    parent_by = {p["object_id"]: p for p in parents}
    out = []
    for e in evs:
        its = by_ev.get(e["event_id"], [])
        if visible is not None and not _may_see(e, its, visible, viewer):
            continue
        out.append(event_json(cfg, e, its, loss_by.get(e["event_id"], []), parent_by.get(e["parent_id"])))
    return out


def _may_see(ev: dict[str, Any], items: list[dict[str, Any]], visible: set[str], viewer: str | None) -> bool:
    """A buyer sees an event that names something upstream of what it received; of shipping events
    only its own deliveries."""
    if ev["biz_step"] == "shipping" and ev["detail"].get("buyer_id") != viewer:
        return False
    named = {i["object_id"] for i in items} | ({ev["parent_id"]} if ev["parent_id"] else set())
    return bool(named & visible)


def _objects_for_uris(conn: psycopg.Connection, uris: list[str]) -> list[str]:
    ids: list[str] = []
    for u in uris:
        try:
            p = parse_link(u)
        except ValueError as exc:
            raise Invalid(f"not a GS1 Digital Link EPC: {u!r} ({exc})", "EPC 格式不正确", field="MATCH_anyEPC") from exc
        if p.sscc:
            row = conn.execute("SELECT object_id FROM trace_objects WHERE sscc = %s", (p.sscc,)).fetchone()
        else:
            row = conn.execute("SELECT object_id FROM trace_objects WHERE gtin = %s AND lot_number = %s",
                               (p.gtin, p.lot)).fetchone()
        if row:
            ids.append(row[0])
    return ids


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    """An EPCIS 2.0 ``EPCISDocument`` carrying ``events`` (a capture/export file)."""
    return {"@context": _context(), "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": _iso(datetime.now(UTC)), "epcisBody": {"eventList": events}}


def query_document(events: list[dict[str, Any]], query_name: str = "SimpleEventQuery") -> dict[str, Any]:
    """An EPCIS 2.0 ``EPCISQueryDocument`` (the answer of the query interface)."""
    return {"@context": _context(), "type": "EPCISQueryDocument", "schemaVersion": "2.0",
            "creationDate": _iso(datetime.now(UTC)),
            "epcisBody": {"queryResults": {"queryName": query_name, "resultsBody": {"eventList": events}}}}
