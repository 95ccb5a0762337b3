"""Spot trading from one stock (trading.spot, trading.stock) against the real database: holds, expiry,
confirmation, delivery, counter sales, buyer offers, losses and forward fulfilment drawing on the same
lot rows; every kg accounted for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from trading import spot, stock, warehouse
from trading.errors import Conflict, Forbidden, Invalid, NotFound


@pytest.fixture
def db(spot_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(spot_db, autocommit=True) as conn:
        yield conn


def _lot(db, room="CR-01", kg=None, orchard=None):
    orchard = orchard or db.execute("SELECT orchard_id FROM orchards ORDER BY orchard_id LIMIT 1").fetchone()[0]
    return warehouse.receive_lot(db, orchard_id=orchard, harvested_on=date(2026, 7, 20),
                                 kg_by_grade=kg or {"XL": 300, "L": 500}, cold_room_id=room)


def _price(db, site="WH-WUSHAN", **prices):
    for g, p in (prices or {"XL": 1400, "L": 1000, "M": 700}).items():
        spot.set_list_price(db, warehouse_id=site, grade=g, price_fen_per_kg=p, set_by="mgr")


def _assert_conserved(db):
    for row in stock.balance(db):
        assert row["unexplained_kg"] == 0, row
        assert row["reserved_mismatch_kg"] == 0, row
        assert row["remaining_kg"] >= row["reserved_kg"] >= 0, row


def test_reserve_confirm_deliver_and_the_offer(db):
    _price(db)
    lot = _lot(db)
    offer = {(r["lot_id"], r["grade"]): r for r in spot.stock_offer(db, warehouse_id="WH-WUSHAN")}
    row = offer[(lot.lot_id, "L")]
    assert row["available_kg"] == 500 and row["price_fen_per_kg"] == 1000 and row["township_zh"]
    assert row["cold_chain_state"] == "unbroken" and row["harvested_on"] == date(2026, 7, 20)
    s = spot.reserve(db, buyer_id="yt-zone-1", actor="yt-zone-1", client_request_id="resv-0001",
                     lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": "120.5"}])
    assert s.status == "held" and s.total_fen == 120_500 and s.expires_at is not None
    again = spot.reserve(db, buyer_id="yt-zone-1", actor="yt-zone-1", client_request_id="resv-0001",
                         lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": "120.5"}])
    assert again.sale_id == s.sale_id                                  # a retry is not a second hold
    with pytest.raises(Conflict):
        spot.reserve(db, buyer_id="yt-zone-1", actor="yt-zone-1", client_request_id="resv-0001",
                     lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": "50"}])
    assert stock.available_kg(db, (lot.lot_id, "L")) == Decimal("379.5")
    with pytest.raises(Forbidden):
        spot.confirm(db, s.sale_id, buyer_id="bb-hall")
    with pytest.raises(Conflict):                                      # not confirmed yet
        spot.deliver(db, s.sale_id)
    c = spot.confirm(db, s.sale_id, buyer_id="yt-zone-1")
    assert c.status == "confirmed" and c.expires_at is None
    d = spot.deliver(db, s.sale_id)
    assert d.status == "delivered" and all(ln.trace_code for ln in d.lines)
    assert warehouse.get_lot(db, lot.lot_id).remaining_kg["L"] == Decimal("379.5")
    _assert_conserved(db)


def test_an_expired_hold_returns_its_kg(db):
    _price(db)
    lot = _lot(db, kg={"M": 100})
    t0 = datetime.now(UTC)
    s = spot.reserve(db, buyer_id="yt-zone-1", actor="yt-zone-1", client_request_id="resv-exp-1",
                     lines=[{"lot_id": lot.lot_id, "grade": "M", "kg": 100}], hold_minutes=5, now=t0)
    with pytest.raises(Conflict):
        spot.hall_sale(db, warehouse_id="WH-WUSHAN", actor="clerk", client_request_id="hall-exp-1",
                       lines=[{"lot_id": lot.lot_id, "grade": "M", "kg": 1}], payment_method="cash", now=t0)
    later = t0 + timedelta(minutes=6)
    h = spot.hall_sale(db, warehouse_id="WH-WUSHAN", actor="clerk", client_request_id="hall-exp-2",
                       lines=[{"lot_id": lot.lot_id, "grade": "M", "kg": 60}], payment_method="cash", now=later)
    assert h.status == "delivered" and h.walk_in_name == "散客" and h.total_fen == 42_000
    assert spot.get_sale(db, s.sale_id).status == "expired"
    with pytest.raises(Conflict):
        spot.confirm(db, s.sale_id, buyer_id="yt-zone-1", now=later)
    assert stock.available_kg(db, (lot.lot_id, "M")) == 40
    # the scheduler's sweep frees holds on lots nobody touched
    s2 = spot.reserve(db, buyer_id="yt-zone-1", actor="yt-zone-1", client_request_id="resv-exp-2",
                      lines=[{"lot_id": lot.lot_id, "grade": "M", "kg": 40}], hold_minutes=1, now=later)
    assert stock.available_kg(db, (lot.lot_id, "M")) == 0
    assert spot.expire_holds(db, now=later + timedelta(minutes=2)) == 1
    assert spot.get_sale(db, s2.sale_id).status == "expired" and stock.available_kg(db, (lot.lot_id, "M")) == 40
    _assert_conserved(db)


def test_hall_sale_rules(db):
    _price(db, "WH-QUCHI", L=900)
    lot = _lot(db, room="QUCHI-CR1", kg={"L": 50})
    with pytest.raises(Invalid):      # the lot is not stock of this hall's site
        spot.hall_sale(db, warehouse_id="WH-WUSHAN", actor="clerk", client_request_id="hall-wrong-site",
                       lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": 1}], payment_method="cash")
    with pytest.raises(Invalid):
        spot.hall_sale(db, warehouse_id="WH-QUCHI", actor="clerk", client_request_id="hall-bad-pay",
                       lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": 1}], payment_method="ious")
    with pytest.raises(Conflict):     # no XL list price at this site today
        spot.hall_sale(db, warehouse_id="WH-QUCHI", actor="clerk", client_request_id="hall-no-price",
                       lines=[{"lot_id": lot.lot_id, "grade": "XL", "kg": 1}], payment_method="cash")
    with pytest.raises(NotFound):
        spot.hall_sale(db, warehouse_id="WH-QUCHI", actor="clerk", client_request_id="hall-no-lot",
                       lines=[{"lot_id": "LOT-NOPE", "grade": "L", "kg": 1}], payment_method="cash")
    s = spot.hall_sale(db, warehouse_id="WH-QUCHI", actor="clerk", client_request_id="hall-ok-0001",
                       lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": "50"}], payment_method="transfer",
                       buyer_id="bb-hall")
    assert s.total_fen == 45_000 and s.buyer_id == "bb-hall"
    with pytest.raises(Conflict):     # sold out
        spot.hall_sale(db, warehouse_id="WH-QUCHI", actor="clerk", client_request_id="hall-ok-0002",
                       lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": "0.001"}], payment_method="cash")
    _assert_conserved(db)


def test_buyer_offer_accepted_or_declined_and_losses(db):
    _price(db)
    lot = _lot(db, kg={"XL": 200})
    o1 = spot.make_offer(db, buyer_id="yt-zone-1", client_request_id="offer-0001", lot_id=lot.lot_id, grade="XL",
                         kg=150, price_fen_per_kg=1300)
    assert spot.make_offer(db, buyer_id="yt-zone-1", client_request_id="offer-0001", lot_id=lot.lot_id,
                           grade="XL", kg=150, price_fen_per_kg=1300)["offer_id"] == o1["offer_id"]
    with pytest.raises(Conflict):
        spot.make_offer(db, buyer_id="yt-zone-1", client_request_id="offer-0002", lot_id=lot.lot_id, grade="XL",
                        kg=250, price_fen_per_kg=1300)
    o2 = spot.make_offer(db, buyer_id="bb-hall", client_request_id="offer-0003", lot_id=lot.lot_id,
                         grade="XL", kg=100, price_fen_per_kg=1100)
    acc = spot.decide_offer(db, o1["offer_id"], accept=True, actor="mgr")
    sale = spot.get_sale(db, acc["sale_id"])
    assert sale.status == "held" and sale.total_fen == 150 * 1300 and sale.offer_id == o1["offer_id"]
    with pytest.raises(Conflict):    # 100 kg no longer available after the accepted 150
        spot.decide_offer(db, o2["offer_id"], accept=True, actor="mgr")
    assert spot.decide_offer(db, o2["offer_id"], accept=False, actor="mgr")["status"] == "declined"
    with pytest.raises(Conflict):
        spot.decide_offer(db, o2["offer_id"], accept=True, actor="mgr")
    loss = spot.record_loss(db, lot_id=lot.lot_id, grade="XL", kg=20, reason="shrink", recorded_by="mgr")
    assert loss["kg"] == 20
    with pytest.raises(Conflict):    # 200 - 150 held - 20 lost = 30 available
        spot.record_loss(db, lot_id=lot.lot_id, grade="XL", kg=31, reason="decay", recorded_by="mgr")
    assert spot.cancel(db, sale.sale_id, buyer_id="yt-zone-1").status == "cancelled"
    assert stock.available_kg(db, (lot.lot_id, "XL")) == 180
    _assert_conserved(db)


def test_a_forward_shipment_cannot_take_held_kg(db):
    _price(db)
    lot = _lot(db, kg={"L": 100})
    spot.reserve(db, buyer_id="yt-zone-1", actor="yt-zone-1", client_request_id="resv-fwd-1",
                 lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": 70}])
    wk = date(2026, 7, 20)
    o = db.execute("INSERT INTO orders (order_id, buyer_id, idempotency_key, request_hash, season, grade, quantity_kg, "
                   "week_from, week_to, destination, price_fen_per_kg, status) VALUES ('ORD-SPOT-T1', 'yt-zone-1', "
                   "'k-spot-t1', 'h', 2026, 'L', 100, %s, %s, 'yantai', 900, 'allocated') RETURNING order_id",
                   (wk, wk)).fetchone()[0]
    with pytest.raises(Conflict):
        warehouse.fulfil(db, order_id=o, lot_id=lot.lot_id, grade="L", kg=31)
    sh = warehouse.fulfil(db, order_id=o, lot_id=lot.lot_id, grade="L", kg=30, client_request_id="ship-req-0001")
    assert sh.from_warehouse_id == "WH-WUSHAN"
    again = warehouse.fulfil(db, order_id=o, lot_id=lot.lot_id, grade="L", kg=30, client_request_id="ship-req-0001")
    assert again.shipment_id == sh.shipment_id
    assert db.execute("SELECT count(*) FROM shipments WHERE client_request_id = 'ship-req-0001'").fetchone()[0] == 1
    _assert_conserved(db)
