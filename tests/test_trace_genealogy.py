"""Lot genealogy against the real database: harvest -> grade -> pack -> store -> merge -> ship, mass
balance at every step, trace back and recall both ways, idempotent retries, no double consumption
under concurrency, and the EPCIS 2.0 export validated against GS1's published JSON schema."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import psycopg
import pytest

from registry.seed import SeedParams, seed
from trading import buyers, epcis, genealogy, warehouse
from trading.errors import Conflict, Invalid, NotFound
from trading.gs1 import Gs1Config, parse_link
from yuncang.migrations import migrate

CFG = Gs1Config(company_prefix="6970000", resolver="https://id.example.cn")
SCHEMA = json.loads((Path(__file__).parent / "data" / "gs1" / "EPCIS-JSON-Schema.json").read_text("utf-8"))
T0 = datetime(2026, 7, 20, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def url(make_database) -> str:
    u = make_database()
    migrate(u)
    with psycopg.connect(u) as c:
        seed(c, SeedParams())
        buyers.seed_buyers(c)
        warehouse.seed_warehouse(c)
    return u


@pytest.fixture
def conn(url: str):
    with psycopg.connect(url, autocommit=True) as c:
        yield c


def _orchards(conn: psycopg.Connection, n: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT orchard_id FROM orchards ORDER BY orchard_id LIMIT %s", (n,))]


def _buyers(conn: psycopg.Connection, n: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT buyer_id FROM buyers ORDER BY buyer_id LIMIT %s", (n,))]


def _chain(conn: psycopg.Connection, orchards: list[str], buyer: str, day: date) -> dict[str, object]:
    """Two family orchards' harvests graded, packed, stored, merged into one shipment lot and shipped."""
    t = T0.replace(day=day.day)
    graded = []
    for oid in orchards:
        h = genealogy.harvest(conn, orchard_id=oid, harvested_on=day, kg="1000", cfg=CFG, at=t)
        genealogy.receive(conn, object_ids=[h.created["lot"]], site_id="WH-WUSHAN", at=t + timedelta(hours=2))
        g = genealogy.grade(conn, inputs={h.created["lot"]: "1000"},
                            outputs_kg_by_grade={"XL": "300", "L": "500", "M": "180"},
                            losses=[("20", "裂果")], site_id="WH-WUSHAN", cfg=CFG, at=t + timedelta(hours=3))
        graded.append(g.created["L"])
    units = [genealogy.pack(conn, children={lot: "500"}, site_id="WH-WUSHAN", cfg=CFG,
                            at=t + timedelta(hours=4)).created["unit"] for lot in graded]
    genealogy.store(conn, object_ids=units, cold_room_id="CR-01", at=t + timedelta(hours=5))
    merged = genealogy.merge(conn, inputs={u: "500" for u in units}, losses=[("2.5", "称重损耗")],
                             site_id="WH-WUSHAN", cfg=CFG, at=t + timedelta(hours=20)).created["lot"]
    sh = genealogy.ship(conn, items={merged: "997.5"}, buyer_id=buyer, destination="杭州",
                        site_id="WH-WUSHAN", at=t + timedelta(hours=21))
    return {"graded": graded, "units": units, "merged": merged, "ship": sh}


def test_full_chain_traces_back_to_every_orchard_and_recall_finds_the_buyer(conn):
    o = _orchards(conn, 3)
    b1, _b2 = _buyers(conn, 2)
    c = _chain(conn, o[:2], b1, date(2026, 7, 20))
    back = genealogy.trace_back(conn, c["merged"])
    assert sorted(r["orchard_id"] for r in back) == sorted(o[:2])
    assert all(r["harvested_on"] == date(2026, 7, 20) and r["kg"] == Decimal("1000") for r in back)
    # recall from one orchard finds the buyer and the shipped kg, and nothing of another orchard's
    rec = genealogy.recall(conn, orchard_id=o[0], date_from=date(2026, 7, 19), date_to=date(2026, 7, 21))
    assert [(r["buyer_id"], r["object_id"], r["kg"]) for r in rec] == [(b1, c["merged"], Decimal("997.500"))]
    assert genealogy.recall(conn, orchard_id=o[2], date_from=date(2026, 7, 1), date_to=date(2026, 8, 1)) == []
    assert genealogy.recall(conn, orchard_id=o[0], date_from=date(2026, 7, 21), date_to=date(2026, 7, 30)) == []
    # the shipment closed the cold-room stays of what was consumed
    stays = conn.execute("SELECT object_id, left_at FROM trace_room_stays WHERE object_id = ANY(%s)",
                         (c["units"],)).fetchall()
    assert len(stays) == 2 and all(left is not None for _, left in stays)


def test_mass_balance_is_enforced_and_nothing_is_recorded_on_failure(conn):
    oid = _orchards(conn, 1)[0]
    h = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 22), kg="100", cfg=CFG, at=T0)
    lot = h.created["lot"]
    before = conn.execute("SELECT count(*) FROM trace_events").fetchone()[0]
    with pytest.raises(Invalid) as e:   # 100 in, 90 out, no loss recorded
        genealogy.grade(conn, inputs={lot: "100"}, outputs_kg_by_grade={"L": "90"}, losses=[], site_id="S",
                        cfg=CFG, at=T0)
    assert "mass balance" in str(e.value) and e.value.http_status == 422
    with pytest.raises(Invalid):        # a loss without a reason
        genealogy.grade(conn, inputs={lot: "100"}, outputs_kg_by_grade={"L": "90"}, losses=[("10", " ")],
                        site_id="S", cfg=CFG, at=T0)
    with pytest.raises(Conflict):       # more than the lot holds
        genealogy.grade(conn, inputs={lot: "150"}, outputs_kg_by_grade={"L": "150"}, losses=[], site_id="S",
                        cfg=CFG, at=T0)
    with pytest.raises(NotFound):
        genealogy.grade(conn, inputs={"HL26-NOPE": "1"}, outputs_kg_by_grade={"L": "1"}, losses=[],
                        site_id="S", cfg=CFG, at=T0)
    assert conn.execute("SELECT count(*) FROM trace_events").fetchone()[0] == before
    assert conn.execute("SELECT remaining_kg FROM trace_objects WHERE object_id = %s", (lot,)).fetchone()[0] == 100
    g = genealogy.grade(conn, inputs={lot: "100"}, outputs_kg_by_grade={"L": "90"}, losses=[("10", "腐烂")],
                        site_id="S", cfg=CFG, at=T0)
    assert conn.execute("SELECT kg, reason FROM trace_losses WHERE event_id = %s", (g.event_id,)).fetchall() == [
        (Decimal("10.000"), "腐烂")]
    h2 = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 22), kg="5", cfg=CFG, at=T0)
    with pytest.raises(Invalid):        # a packed unit is one grade of graded lots, not a harvest lot
        genealogy.pack(conn, children={h2.created["lot"]: "1"}, site_id="S", cfg=CFG, at=T0)
    assert conn.execute("SELECT remaining_kg FROM trace_objects WHERE object_id = %s",
                        (h2.created["lot"],)).fetchone()[0] == 5


def test_a_retried_step_is_recorded_once(conn):
    oid = _orchards(conn, 1)[0]
    a = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 23), kg="50", cfg=CFG, at=T0,
                          idempotency_key="h-retry-1")
    b = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 23), kg="50", cfg=CFG, at=T0,
                          idempotency_key="h-retry-1")
    assert b.replayed and (a.event_id, a.created) == (b.event_id, b.created)
    g1 = genealogy.grade(conn, inputs={a.created["lot"]: "50"}, outputs_kg_by_grade={"M": "50"}, losses=[],
                         site_id="S", cfg=CFG, at=T0, idempotency_key="g-retry-1")
    g2 = genealogy.grade(conn, inputs={a.created["lot"]: "50"}, outputs_kg_by_grade={"M": "50"}, losses=[],
                         site_id="S", cfg=CFG, at=T0, idempotency_key="g-retry-1")
    assert g2.created == g1.created
    assert conn.execute("SELECT count(*) FROM trace_objects WHERE kind = 'graded_lot' AND object_id = %s",
                        (g1.created["M"],)).fetchone()[0] == 1


def test_concurrent_packing_never_consumes_a_lot_twice(url, conn):
    oid = _orchards(conn, 1)[0]
    h = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 24), kg="100", cfg=CFG, at=T0)
    lot = genealogy.grade(conn, inputs={h.created["lot"]: "100"}, outputs_kg_by_grade={"XL": "100"},
                          losses=[], site_id="S", cfg=CFG, at=T0).created["XL"]
    ok, refused = [], []

    def worker() -> None:
        with psycopg.connect(url, autocommit=True) as c:
            for _ in range(5):
                try:
                    ok.append(genealogy.pack(c, children={lot: "7"}, site_id="S", cfg=CFG, at=T0))
                except Conflict:
                    refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 14 and len(refused) == 40 - 14            # 14 x 7 kg = 98 kg of 100
    rem = conn.execute("SELECT remaining_kg FROM trace_objects WHERE object_id = %s", (lot,)).fetchone()[0]
    assert rem == Decimal("2.000")
    assert len({r.created["sscc"] for r in ok}) == 14            # every unit its own SSCC


def _validate(doc: dict) -> None:
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_epcis_export_validates_against_the_gs1_schema_and_names_no_person(conn):
    o = _orchards(conn, 2)
    b1 = _buyers(conn, 1)[0]
    c = _chain(conn, o, b1, date(2026, 7, 25))
    t0, t1 = T0.replace(day=25), T0.replace(day=25) + timedelta(days=2)
    events = epcis.query_events(conn, CFG, ge_time=t0, lt_time=t1)
    kinds = sorted({(e["type"], e["bizStep"]) for e in events})
    assert kinds == [("AggregationEvent", "packing"), ("ObjectEvent", "commissioning"), ("ObjectEvent", "receiving"),
                     ("ObjectEvent", "shipping"), ("ObjectEvent", "storing"), ("TransformationEvent", "commissioning")]
    doc = epcis.document(events)
    _validate(doc)
    _validate(epcis.query_document(events))
    names = [r[0] for r in conn.execute("SELECT head_name FROM households")]
    text = json.dumps(doc, ensure_ascii=False)
    assert not any(n in text for n in names)
    grading = [e for e in events if e["type"] == "TransformationEvent" and "inputQuantityList" in e]
    assert grading and all(sum(q["quantity"] for q in e["inputQuantityList"]) ==
                           sum(q["quantity"] for q in e["outputQuantityList"]) + sum(x["yc:kg"] for x in e["yc:loss"])
                           for e in grading)
    # query by EPC: the shipment lot's Digital Link finds its merge and shipping events only
    merged_uri = next(q["epcClass"] for e in events if e["bizStep"] == "shipping" for q in e["quantityList"])
    assert parse_link(merged_uri).lot == c["merged"]
    by_epc = epcis.query_events(conn, CFG, match_epc=[merged_uri])
    assert sorted(e["type"] for e in by_epc) == ["ObjectEvent", "TransformationEvent"]
    # a document a schema rejects really is rejected (the check can fail)
    broken = json.loads(json.dumps(doc))
    broken["epcisBody"]["eventList"][0]["bizStep"] = "https://ns.gs1.org/cbv/BizStep-harvesting"
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)


def test_a_buyer_sees_only_the_genealogy_of_what_it_received(conn):
    o = _orchards(conn, 4)
    b1, b2 = _buyers(conn, 2)
    c1 = _chain(conn, o[:2], b1, date(2026, 7, 27))
    c2 = _chain(conn, o[2:4], b2, date(2026, 7, 27))
    vis = genealogy.received_by(conn, b1)
    assert c1["merged"] in vis and c2["merged"] not in vis
    evs = epcis.query_events(conn, CFG, ge_time=T0.replace(day=27), lt_time=T0.replace(day=29), visible=vis,
                             viewer=b1)
    text = json.dumps(evs)
    assert c1["merged"] in text and c2["merged"] not in text and f"/party/{b2}" not in text
    ships = [e for e in evs if e["bizStep"] == "shipping"]
    assert len(ships) == 1 and ships[0]["destinationList"][0]["destination"].endswith(f"/party/{b1}")


def test_a_warehouse_receipt_and_shipment_are_recorded_as_genealogy(conn):
    from trading import orders

    oid = _orchards(conn, 10)[9]
    buyer = _buyers(conn, 1)[0]
    order = orders.place_order(conn, buyer_id=buyer, idempotency_key="gen-wh-1", grade="L", quantity_kg=300,
                               week_from=date(2026, 7, 20), week_to=date(2026, 7, 27), destination="hangzhou",
                               price_fen_per_kg=800)
    conn.execute("UPDATE orders SET status = 'allocated' WHERE order_id = %s", (order.order_id,))
    lot = warehouse.receive_lot(conn, orchard_id=oid, harvested_on=date(2026, 7, 21),
                                kg_by_grade={"XL": 100, "L": 300}, cold_room_id="CR-04")
    s = warehouse.fulfil(conn, order_id=order.order_id, lot_id=lot.lot_id, grade="L", kg=250)
    rec = genealogy.recall(conn, orchard_id=oid, date_from=date(2026, 7, 21), date_to=date(2026, 7, 21))
    assert [(r["buyer_id"], r["order_id"], r["kg"]) for r in rec] == [(buyer, order.order_id, Decimal("250.000"))]
    sid = conn.execute("SELECT shipment_id FROM trace_deliveries WHERE event_id = %s", (rec[0]["event_id"],)).fetchone()
    assert sid[0] == s.shipment_id
    graded = conn.execute("SELECT object_id, grade, remaining_kg FROM trace_objects WHERE warehouse_lot = %s "
                          "AND kind = 'graded_lot' ORDER BY grade", (lot.lot_id,)).fetchall()
    assert [(g, r) for _, g, r in graded] == [("L", Decimal("50.000")), ("XL", Decimal("100.000"))]
    assert [r["orchard_id"] for r in genealogy.trace_back(conn, graded[0][0])] == [oid]
    stays = conn.execute("SELECT cold_room_id FROM trace_room_stays WHERE object_id = %s", (graded[0][0],)).fetchall()
    assert stays == [("CR-04",)]
