"""Trading against the real database: orders, allocation runs, notifications, blacklist, warehouse
(concurrency), trace codes, settlement and unsold-risk warnings."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import psycopg
import pytest

from ingest import rollups
from ingest.read import season_summary
from registry.seed import SeedParams, seed
from trading import allocation, buyers, orders, quality, settlement, trace, warehouse, warnings
from trading.errors import Conflict, Forbidden, Invalid, NotFound
from trading.matching import MatchParams
from yuncang.migrations import migrate

W0 = {2026: date(2026, 7, 6), 2027: date(2027, 7, 5), 2028: date(2028, 7, 3)}   # Mondays


def make_forecast(conn: psycopg.Connection, season: int, *, scale: float = 1.0, zero: tuple[str, ...] = (),
                  as_of: datetime | None = None) -> int:
    """A forecast run of the agreed shape: 8 weeks x 3 grades per orchard, P50 ~ 1,000 kg/mu."""
    rows = conn.execute("SELECT orchard_id, area_mu FROM orchards ORDER BY orchard_id").fetchall()
    rng = np.random.default_rng(season)
    run_id = conn.execute(
        "INSERT INTO forecast_runs (as_of, season, model_version, orchard_count) VALUES (%s, %s, 'test', %s) "
        "RETURNING run_id", (as_of or datetime.now(UTC), season, len(rows))).fetchone()[0]
    shape = np.array([0.03, 0.1, 0.2, 0.25, 0.2, 0.12, 0.07, 0.03])
    with conn.cursor().copy("COPY forecasts (run_id, orchard_id, week_start, grade, p10_kg, p50_kg, p90_kg) "
                            "FROM STDIN") as cp:
        for oid, area in rows:
            total = float(area) * 1000.0 * scale * (0 if oid in zero else 1)
            shift = int(rng.integers(-1, 2))
            for w in range(8):
                for g, share in (("XL", 0.25), ("L", 0.45), ("M", 0.30)):
                    p50 = round(total * shape[(w + shift) % 8] * share, 1)
                    cp.write_row((run_id, oid, W0[season] + timedelta(weeks=w), g, round(p50 * 0.75, 1), p50,
                                  round(p50 * 1.2, 1)))
    conn.commit()
    return int(run_id)


@pytest.fixture(scope="module")
def url(make_database) -> str:
    u = make_database()
    migrate(u)
    with psycopg.connect(u) as c:
        seed(c, SeedParams())
        buyers.seed_buyers(c)
        warehouse.seed_warehouse(c)
        for s in W0:
            make_forecast(c, s)
    return u


@pytest.fixture
def db(url):
    with psycopg.connect(url, autocommit=True) as c:
        yield c


def order(db, buyer="yt-zone-1", key=None, grade="L", kg=1000, season=2026, w=2, n=1, price=900, dest="yantai",
          floor=None):
    wf = W0[season] + timedelta(weeks=w)
    return orders.place_order(db, buyer_id=buyer, idempotency_key=key or f"k-{np.random.randint(1e12)}",
                              grade=grade, quantity_kg=kg, week_from=wf, week_to=wf + timedelta(weeks=n - 1),
                              destination=dest, price_fen_per_kg=price, floor_price_fen_per_kg=floor)


# --------------------------------------------------------------------------------- orders

def test_place_order_is_idempotent_and_conflicts_on_a_different_body(db):
    a = order(db, key="idem-1", kg=500)
    b = order(db, key="idem-1", kg=500)
    assert a.order_id == b.order_id
    assert db.execute("SELECT count(*) FROM orders WHERE idempotency_key = 'idem-1'").fetchone()[0] == 1
    with pytest.raises(Conflict) as ei:
        order(db, key="idem-1", kg=600)
    assert ei.value.http_status == 409 and ei.value.detail["order_id"] == a.order_id
    # another buyer may use the same key
    c = order(db, buyer="yt-zone-2", key="idem-1", kg=500)
    assert c.order_id != a.order_id


def test_concurrent_retries_create_one_order(url):
    ids, errors = [], []

    def place():
        try:
            with psycopg.connect(url, autocommit=True) as c:
                ids.append(order(c, buyer="ec-shop-2", key="retry-storm", kg=70, season=2028).order_id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=place) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(ids)) == 1 and len(ids) == 12


def test_ensure_buyer_is_idempotent(db):
    a = buyers.ensure_buyer(db, buyer_id="ensure-1", name="测试采购商")
    b = buyers.ensure_buyer(db, buyer_id="ensure-1", name="other name", kind="processor")
    assert a == b and b.kind == "supermarket" and b.name == "测试采购商"
    with pytest.raises(Invalid):
        buyers.ensure_buyer(db, buyer_id="x", name="bad id")
    page = buyers.list_buyers(db, kind="institutional")
    assert page.total == 2 and {x.buyer_id for x in page.items} == {"inst-cq-union", "inst-wuhan-units"}


def test_order_validation(db):
    with pytest.raises(NotFound):
        order(db, buyer="nobody")
    with pytest.raises(Invalid):
        orders.place_order(db, buyer_id="yt-zone-1", idempotency_key="v1", grade="L", quantity_kg=10,
                           week_from=date(2026, 7, 7), week_to=date(2026, 7, 14), destination="yantai",
                           price_fen_per_kg=900)      # Tuesday
    with pytest.raises(Invalid):
        order(db, grade="XXL")
    with pytest.raises(Invalid):
        order(db, kg=0)
    with pytest.raises(Invalid):
        order(db, dest="Atlantis")
    with pytest.raises(Invalid):
        order(db, price=500, floor=600)
    o = order(db, dest="烟台", kg="12.5", floor=800)
    assert o.destination == "yantai" and o.quantity_kg == Decimal("12.500") and o.floor_price_fen_per_kg == 800


def test_amend_cancel_and_list(db):
    o = order(db, buyer="ec-shop-3", season=2028, kg=200)
    with pytest.raises(Forbidden):
        orders.amend_order(db, o.order_id, "ec-shop-4", quantity_kg=300)
    with pytest.raises(Invalid):
        orders.amend_order(db, o.order_id, "ec-shop-3", status="fulfilled")
    a = orders.amend_order(db, o.order_id, "ec-shop-3", quantity_kg=300, destination="hangzhou")
    assert a.quantity_kg == 300 and a.version == 2
    c = orders.cancel_order(db, o.order_id, "ec-shop-3")
    assert c.status == "cancelled"
    with pytest.raises(Conflict):
        orders.cancel_order(db, o.order_id, "ec-shop-3")
    with pytest.raises(NotFound):
        orders.get_order(db, "ORD-none")
    for _ in range(3):
        order(db, buyer="ec-shop-4", season=2028, kg=100)
    items, total = orders.list_orders(db, buyer_id="ec-shop-4", limit=2)
    assert total >= 3 and len(items) == 2 and all(i.buyer_id == "ec-shop-4" for i in items)
    items2, _ = orders.list_orders(db, buyer_id="ec-shop-4", limit=2, offset=2)
    assert not {i.order_id for i in items} & {i.order_id for i in items2}


# ------------------------------------------------------------------------------ allocation

def test_allocation_end_to_end_with_reallocation_and_notifications(db):
    rng = np.random.default_rng(1)
    placed = []
    for i, b in enumerate([b[0] for b in buyers.SEED_BUYERS] * 6):
        placed.append(order(db, buyer=b, key=f"alloc-{i}", grade=["XL", "L", "M"][i % 3],
                            kg=int(rng.integers(1, 60)) * 1000, w=int(rng.integers(0, 7)), n=int(rng.integers(1, 3)),
                            price=int(rng.integers(500, 1300)), dest=["yantai", "chongqing", "wuhan"][i % 3]))
    black = placed and db.execute("SELECT grower_id FROM orchards WHERE orchard_id = 'WS-0007'").fetchone()[0]
    quality.blacklist_supplier(db, subject_kind="grower", subject_id=black, reason="pesticide residue test failed")
    res = allocation.allocate(db, season=2026, params=MatchParams(poverty_min_share=0.3))
    assert res.previous_run_id is None and res.committed_kg > 0
    assert res.poor_share >= 0.3 - 1e-6
    fills = {f.order_id: f for f in res.orders}
    assert set(fills) >= {o.order_id for o in placed}
    for f in res.orders:
        assert f.committed_kg + f.expected_kg + f.shortfall_kg == f.requested_kg
        if f.shortfall_kg > 0:
            assert f.reason
    rows = allocation.get_allocations(db, season=2026, limit=100_000)
    per = defaultdict(Decimal)
    for r in rows:
        per[r["order_id"]] += r["kg"]
        assert r["orchard_id"] != "WS-0007"
    for oid, f in fills.items():
        assert per[oid] == pytest.approx(f.committed_kg + f.expected_kg, abs=Decimal("0.01"))
    # allocated orders can no longer be cancelled; notifications went out to buyers and growers
    allocated = [o for o in placed if fills[o.order_id].committed_kg + fills[o.order_id].expected_kg > 0]
    assert allocated
    with pytest.raises(Conflict):
        orders.cancel_order(db, allocated[0].order_id, allocated[0].buyer_id)
    got = orders.get_order(db, allocated[0].order_id)
    assert got.status == "allocated" and got.committed_kg == fills[got.order_id].committed_kg
    n_buyer = db.execute("SELECT count(*) FROM trading_notifications WHERE alloc_run_id = %s AND "
                         "recipient_kind = 'buyer'", (res.alloc_run_id,)).fetchone()[0]
    n_grower = db.execute("SELECT count(*) FROM trading_notifications WHERE alloc_run_id = %s AND "
                          "recipient_kind = 'grower'", (res.alloc_run_id,)).fetchone()[0]
    assert n_buyer == len(res.orders) and n_grower > 0
    # supply offer agrees with the stored rows
    offer = allocation.supply_offer(db, 2026)
    assert len(offer) == 24
    assert sum(r["committed_kg"] for r in offer) == pytest.approx(res.committed_kg, abs=Decimal("0.1"))
    assert all(r["offered_kg"] >= 0 for r in offer)

    # a new forecast: the orchards supplying the first order lose everything; re-allocation moves little
    first = allocated[0]
    lost = sorted({r["orchard_id"] for r in rows if r["order_id"] == first.order_id})[:3]
    assert lost
    make_forecast(db, 2026, zero=tuple(lost))
    res2 = allocation.allocate(db, season=2026, params=MatchParams(poverty_min_share=0.3))
    assert res2.previous_run_id == res.alloc_run_id
    rows2 = allocation.get_allocations(db, season=2026, limit=100_000)
    assert not {r["orchard_id"] for r in rows2} & set(lost)
    told_growers = {c.orchard_id for c in res2.changes if c.recipient_kind == "grower"}
    assert set(lost) <= told_growers
    lost_grower = db.execute("SELECT grower_id FROM orchards WHERE orchard_id = %s", (lost[0],)).fetchone()[0]
    notes = allocation.list_notifications(db, recipient_kind="grower", recipient_id=lost_grower)
    assert notes[0]["kind"] == "allocation_changed" and "->0.0 kg" in notes[0]["message_en"]

    def key(r):
        return (r["order_id"], r["orchard_id"], r["harvest_week"], r["grade"], r["status"])
    before = {key(r): r["kg"] for r in rows}
    after = {key(r): r["kg"] for r in rows2}
    moved = sum(abs(before.get(k, 0) - after.get(k, 0)) for k in set(before) | set(after)) / 2
    lost_kg = sum(r["kg"] for r in rows if r["orchard_id"] in lost)
    assert moved <= 3 * lost_kg + 1000     # stability: roughly only the lost volume is re-sourced
    # orders whose totals did not change got no notification
    changed_orders = {c.order_id for c in res2.changes if c.recipient_kind == "buyer"}
    f2 = {f.order_id: f for f in res2.orders}
    for oid, f in fills.items():
        if oid not in changed_orders:
            assert abs(f2[oid].committed_kg - f.committed_kg) < 1


def test_allocate_errors(db):
    with pytest.raises(NotFound):
        allocation.allocate(db, season=1999)
    with pytest.raises(Invalid):
        allocation.allocate(db, season=2026, confidence="p42")
    with pytest.raises(NotFound):
        allocation.allocate(db, season=2026, run_id=987654)


# ------------------------------------------------------------------------ warehouse and trace

@pytest.fixture(scope="module")
def allocated_2027(url):
    with psycopg.connect(url, autocommit=True) as c:
        big = [order(c, buyer="sanxia-egou", key=f"w27-{i}", grade="L", kg=5000, season=2027, w=3,
                     price=880, floor=800) for i in range(25)]
        allocation.allocate(c, season=2027)
        return [orders.get_order(c, o.order_id) for o in big]


def test_receive_lot_enforces_capacity(db):
    warehouse.create_cold_room(db, cold_room_id="CR-SMALL", warehouse_id="WH-WUSHAN", name="小冷库",
                               capacity_kg=1000)
    lot = warehouse.receive_lot(db, orchard_id="WS-0100", harvested_on=date(2027, 7, 26),
                                kg_by_grade={"XL": 300, "L": "500.5"}, cold_room_id="CR-SMALL")
    assert lot.received_kg == {"L": Decimal("500.500"), "XL": Decimal("300.000")}
    with pytest.raises(Conflict):
        warehouse.receive_lot(db, orchard_id="WS-0100", harvested_on=date(2027, 7, 26),
                              kg_by_grade={"M": 200}, cold_room_id="CR-SMALL")
    with pytest.raises(Invalid):
        warehouse.receive_lot(db, orchard_id="WS-0100", harvested_on=date(2027, 7, 26),
                              kg_by_grade={"XXL": 1}, cold_room_id="CR-SMALL")
    with pytest.raises(NotFound):
        warehouse.receive_lot(db, orchard_id="WS-9999", harvested_on=date(2027, 7, 26),
                              kg_by_grade={"M": 1}, cold_room_id="CR-SMALL")
    s = [r for r in warehouse.stock(db, cold_room_id="CR-SMALL")]
    assert {r["grade"]: r["kg"] for r in s} == {"L": Decimal("500.500"), "XL": Decimal("300.000")}


def test_concurrent_fulfilment_never_oversells(url, allocated_2027):
    with psycopg.connect(url, autocommit=True) as c:
        lot = warehouse.receive_lot(c, orchard_id="WS-0200", harvested_on=date(2027, 7, 26),
                                    kg_by_grade={"L": 1000, "XL": 50}, cold_room_id="CR-01")
    targets = [o for o in allocated_2027 if o.status == "allocated"]
    assert len(targets) >= 20
    ok, conflicts, other = [], [], []
    barrier = threading.Barrier(20)

    def ship(o):
        with psycopg.connect(url, autocommit=True) as c:
            barrier.wait()
            try:
                ok.append(warehouse.fulfil(c, order_id=o.order_id, lot_id=lot.lot_id, grade="L", kg=75))
            except Conflict:
                conflicts.append(o.order_id)
            except Exception as exc:  # pragma: no cover
                other.append(exc)

    threads = [threading.Thread(target=ship, args=(o,)) for o in targets[:20]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other
    assert len(ok) == 13 and len(conflicts) == 7          # 13 x 75 = 975 <= 1000 < 14 x 75
    assert len({s.trace_code for s in ok}) == 13
    with psycopg.connect(url) as c:
        left = warehouse.get_lot(c, lot.lot_id).remaining_kg["L"]
        shipped = c.execute("SELECT sum(kg) FROM shipments WHERE lot_id = %s", (lot.lot_id,)).fetchone()[0]
    assert left == Decimal(25) and shipped == Decimal(975)
    assert all(s.price_fen_per_kg == 880 and s.amount_fen == 75 * 880 for s in ok)


def test_order_cannot_be_overshipped_concurrently(url, allocated_2027):
    o = allocated_2027[-1]
    with psycopg.connect(url, autocommit=True) as c:
        lot = warehouse.receive_lot(c, orchard_id="WS-0201", harvested_on=date(2027, 7, 27),
                                    kg_by_grade={"XL": 20000}, cold_room_id="CR-02")
    done, refused = [], []
    barrier = threading.Barrier(8)

    def ship():
        with psycopg.connect(url, autocommit=True) as c:
            barrier.wait()
            try:
                done.append(warehouse.fulfil(c, order_id=o.order_id, lot_id=lot.lot_id, grade="XL", kg=1000))
            except Conflict:
                refused.append(1)

    threads = [threading.Thread(target=ship) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 5 and len(refused) == 3            # order is 5,000 kg; XL fills an L order
    with psycopg.connect(url) as c:
        assert orders.get_order(c, o.order_id).status == "fulfilled"


def test_blacklisted_lot_cannot_ship_and_trace_resolves(db, allocated_2027):
    o = allocated_2027[0]
    lot = warehouse.receive_lot(db, orchard_id="WS-0300", harvested_on=date(2027, 7, 27),
                                kg_by_grade={"L": 400}, cold_room_id="CR-03")
    quality.add_certification(db, subject_kind="orchard", subject_id="WS-0300", scheme="county_quality",
                              certificate_no="WSCQ-2027-0300", issued_on=date(2027, 1, 1),
                              valid_until=date(2027, 12, 31))
    s = warehouse.fulfil(db, order_id=o.order_id, lot_id=lot.lot_id, grade="L", kg=100)
    with pytest.raises(Invalid):
        warehouse.fulfil(db, order_id=o.order_id, lot_id=lot.lot_id, grade="M", kg=1)
    # a sensor day in the rollup and a risk alert for the orchard
    dev = db.execute("SELECT device_id FROM devices WHERE orchard_id = 'WS-0300'").fetchone()[0]
    # raw samples (the rollup is a continuous aggregate on TimescaleDB: never written directly), then the
    # normal rollup refresh: a frosty local day (10 March) and a hot, wet one (10 June), 96 samples each
    raw = []
    for day, lo, hi, mid, rain in ((datetime(2027, 3, 9, 16, tzinfo=UTC), -1.5, 14.0, 6.0, None),
                                   (datetime(2027, 6, 9, 16, tzinfo=UTC), 20.0, 36.0, 28.0, 0.25)):
        for k in range(96):
            t = day + timedelta(minutes=15 * k)
            raw.append((dev, "air_temp_c", t, lo if k == 10 else hi if k == 50 else mid))
            if rain is not None:
                raw.append((dev, "rain_mm", t, rain))
    with db.cursor() as cur:
        cur.executemany("INSERT INTO readings (device_id, metric, time, value) VALUES (%s, %s, %s, %s)", raw)
    rollups.refresh(db)
    db.execute("INSERT INTO alerts (dedupe_key, kind, severity, orchard_id, title_zh, title_en, raised_at) "
               "VALUES ('frost:WS-0300:2027-03-10', 'frost', 'warning', 'WS-0300', '霜冻', 'Frost', "
               "'2027-03-10 02:00+00')")
    t = trace.resolve_trace(db, s.trace_code.lower(), sensor_summary=season_summary)
    assert t["orchard"]["orchard_id"] == "WS-0300" and t["lot"]["harvested_on"] == date(2027, 7, 27)
    name = db.execute("SELECT g.name FROM growers g JOIN orchards o USING (grower_id) WHERE orchard_id = 'WS-0300'"
                      ).fetchone()[0]
    assert t["grower"]["name"] == trace.mask_name(name) and "*" in t["grower"]["name"]
    assert t["certifications"][0]["certificate_no"] == "WSCQ-2027-0300"
    ss = t["sensor_summary"]
    assert ss["air_temp_min_c"] == -1.5 and ss["air_temp_max_c"] == 36.0 and ss["frost_days"] == 1
    assert ss["heat_days"] == 1 and ss["rain_total_mm"] == 24.0 and ss["days_with_data"] == 2
    assert [r["kind"] for r in t["risk_events"]] == ["frost"]
    with pytest.raises(NotFound):
        trace.resolve_trace(db, "WS27-NOPE-NOPE-NOPE")
    # without a sensor summary (trading alone) the rest still resolves
    t2 = trace.resolve_trace(db, s.trace_code)
    assert t2["sensor_summary"] is None and "unavailable" in t2["notes"][0]
    # blacklist the grower: shipping from the lot is refused
    gid = db.execute("SELECT grower_id FROM orchards WHERE orchard_id = 'WS-0300'").fetchone()[0]
    entry = quality.blacklist_supplier(db, subject_kind="grower", subject_id=gid, reason="fraud")
    with pytest.raises(Forbidden):
        warehouse.fulfil(db, order_id=o.order_id, lot_id=lot.lot_id, grade="L", kg=10)
    assert trace.resolve_trace(db, s.trace_code)["supplier_blacklisted"] is True
    quality.lift_blacklist(db, entry.entry_id)
    warehouse.fulfil(db, order_id=o.order_id, lot_id=lot.lot_id, grade="L", kg=10)


# ---------------------------------------------------------------------------------- settlement

def test_settlement_worked_example_by_hand(db, allocated_2027):
    """Grower of WS-0400 with 100 plants picks 600 kg (1,200 jin = 12 jin/plant -> 3 % tier); 500 kg of
    it is sold at 8.80 yuan/kg = 440,000 fen. By hand: management 100 x 450 = 45,000 fen; picking
    1,200 x 120 = 144,000 fen; dividend 3 % x 440,000 = 13,200 fen; total 202,200 fen (2,022.00 yuan)."""
    gid, hh = db.execute("SELECT g.grower_id, g.household_id FROM orchards o JOIN growers g USING (grower_id) "
                         "WHERE o.orchard_id = 'WS-0400'").fetchone()
    assert db.execute("SELECT count(*) FROM orchards WHERE grower_id = %s", (gid,)).fetchone()[0] == 1
    db.execute("UPDATE orchards SET tree_count = 100 WHERE orchard_id = 'WS-0400'")
    db.execute("UPDATE households SET poverty_alleviated = true WHERE household_id = %s", (hh,))
    lot = warehouse.receive_lot(db, orchard_id="WS-0400", harvested_on=date(2027, 7, 28),
                                kg_by_grade={"L": 600}, cold_room_id="CR-04")
    o = next(x for x in allocated_2027[1:10] if orders.get_order(db, x.order_id).status == "allocated")
    warehouse.fulfil(db, order_id=o.order_id, lot_id=lot.lot_id, grade="L", kg=500)
    rep = settlement.statements(db, season=2027, grower_id=gid)
    (st,) = rep.statements
    assert (st.plants, st.picked_kg, st.picked_jin, st.jin_per_plant) == (100, 600, 1200, 12)
    assert (st.revenue_fen, st.management_fee_fen, st.picking_fee_fen) == (440_000, 45_000, 144_000)
    assert (st.dividend_rate_bp, st.dividend_fen, st.total_fen) == (300, 13_200, 202_200)
    assert st.poverty_alleviated and rep.poverty_alleviated["total_fen"] == 202_200
    # under 10 jin/plant -> 2 %: the same sale with 1,000 plants (1.2 jin/plant)
    db.execute("UPDATE orchards SET tree_count = 1000 WHERE orchard_id = 'WS-0400'")
    st2 = settlement.statements(db, season=2027, grower_id=gid).statements[0]
    assert (st2.dividend_rate_bp, st2.dividend_fen, st2.management_fee_fen) == (200, 8_800, 450_000)
    # a cooperative's own rule set takes precedence from its season on
    coop = db.execute("SELECT cooperative_id FROM growers WHERE grower_id = %s", (gid,)).fetchone()[0]
    settlement.save_rule_set(db, rule_set_id=f"{coop}-2027", cooperative_id=coop, name="自定", valid_from_season=2027,
                             management_fee_fen_per_plant_year=500, picking_fee_fen_per_jin=100,
                             dividend_tiers=[{"min_jin_per_plant": 0, "rate_bp": 500}])
    st3 = settlement.statements(db, season=2027, grower_id=gid).statements[0]
    assert (st3.rule_set_id, st3.management_fee_fen, st3.picking_fee_fen, st3.dividend_fen) == \
        (f"{coop}-2027", 500_000, 120_000, 22_000)
    with pytest.raises(Conflict):
        settlement.save_rule_set(db, rule_set_id="dup", cooperative_id=coop, name="x", valid_from_season=2027,
                                 management_fee_fen_per_plant_year=1, picking_fee_fen_per_jin=1,
                                 dividend_tiers=[{"min_jin_per_plant": 0, "rate_bp": 1}])
    everyone = settlement.statements(db, season=2027)
    assert everyone.totals["growers"] == 1546
    assert everyone.totals["total_fen"] == sum(s.total_fen for s in everyone.statements)
    assert 0 < everyone.poverty_alleviated["total_fen"] < everyone.totals["total_fen"]


# ---------------------------------------------------------------------------------- warnings

def test_unsold_risk_warning_raised_with_actions_and_resolved(db):
    season = 2028
    wk = W0[season] + timedelta(weeks=3)
    # a big XL order in the week after wk that the forecast cannot cover (no cold storage in this plan)
    big = order(db, buyer="yt-zone-3", key="warn-big-xl", grade="XL", kg=9_999_000, season=season, w=4, price=1300)
    allocation.allocate(db, season=season, params=MatchParams(max_storage_weeks=0))
    assert orders.get_order(db, big.order_id).shortfall_kg > 0
    free = warnings._free_storage_kg(db)
    ws = warnings.evaluate_unsold_risk(db, season=season, as_of=wk - timedelta(days=10), horizon_weeks=2)
    assert ws, "a season with almost no orders must warn"
    # weeks outside the horizon are not evaluated
    assert all(wk - timedelta(days=16) <= w.week_start <= wk + timedelta(days=4) for w in ws)
    for w in ws:
        assert w.surplus_kg >= 20_000 and w.surplus_share >= 0.2
        assert sum(a["kg"] for a in w.actions) == pytest.approx(w.surplus_kg, abs=2)
    xl = next(w for w in ws if w.week_start == wk and w.grade == "XL")
    assert xl.actions[0]["action"] == "shift_harvest" and xl.actions[0]["to_week"] == wk + timedelta(weeks=1)
    stored = sum(a["kg"] for w in ws for a in w.actions if a["action"] == "cold_storage")
    assert 0 < stored <= free                       # the same free space is never offered twice
    inst = [w.actions[-1] for w in ws if w.actions[-1]["action"] == "open_to_institutional"]
    assert inst and "inst-cq-union" in inst[0]["buyers"]
    open_ = db.execute("SELECT count(*) FROM alerts WHERE kind = 'unsold_risk' AND resolved_at IS NULL "
                       "AND detail->>'season' = '2028'").fetchone()[0]
    assert open_ == len(ws)
    title = db.execute("SELECT title_zh, advice_en FROM alerts WHERE dedupe_key = %s", (xl.dedupe_key,)).fetchone()
    assert "滞销预警" in title[0] and "later" in title[1]
    # thresholds high enough: nothing to warn, the open alerts get resolved
    assert warnings.evaluate_unsold_risk(db, season=season, as_of=wk, threshold_share=1.01) == []
    assert db.execute("SELECT count(*) FROM alerts WHERE kind = 'unsold_risk' AND resolved_at IS NULL"
                      ).fetchone()[0] == 0


def test_concurrent_receipts_cannot_overfill_a_cold_room(url):
    with psycopg.connect(url, autocommit=True) as c:
        warehouse.create_cold_room(c, cold_room_id="CR-RACE", warehouse_id="WH-WUSHAN", name="竞争冷库",
                                   capacity_kg=1000)
    ok, full = [], []
    barrier = threading.Barrier(10)

    def receive(i):
        with psycopg.connect(url, autocommit=True) as c:
            barrier.wait()
            try:
                ok.append(warehouse.receive_lot(c, orchard_id=f"WS-{500 + i:04d}", harvested_on=date(2027, 7, 20),
                                                kg_by_grade={"M": 150}, cold_room_id="CR-RACE"))
            except Conflict:
                full.append(i)

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 6 and len(full) == 4               # 6 x 150 = 900 <= 1000 < 7 x 150
    with psycopg.connect(url) as c:
        assert sum(r["kg"] for r in warehouse.stock(c, cold_room_id="CR-RACE")) == 900


def test_cli_offer_and_statements(url):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "YUNCANG_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-m", "yuncang", "trading", "offer", "--season", "2026"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 24 and {"p10_kg", "committed_kg", "offered_kg"} <= set(rows[0])
    bad = subprocess.run([sys.executable, "-m", "yuncang", "trading", "allocate", "--season", "1990"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "not_found" in bad.stderr


def test_results_read_well_through_the_web_bridge(db):
    """The API and pages read trading results through yuncang.web.trade (plain dicts, rows)."""
    from yuncang.web import trade

    order(db, buyer="ec-shop-4", season=2028, kg=100)
    page = orders.list_orders(db, buyer_id="ec-shop-4")
    items, total = page
    assert total == len(items) >= 1
    rows = trade.plain(list(orders.list_orders(db, buyer_id="ec-shop-4").items))
    assert rows and all(r["buyer_id"] == "ec-shop-4" and "order_id" in r for r in rows)
    rep = settlement.statements(db, season=2027, cooperative_id="coop-shuanglong-1")
    assert [s.grower_id for s in rep] == [s.grower_id for s in rep.statements] and len(rep) > 0
    srows = trade.plain(list(rep))
    assert srows[0]["grower_id"] and isinstance(srows[0]["total_fen"], int)
    if allocation.latest_run_id(db, 2026) is None:
        order(db, buyer="yt-zone-1", key="bridge-1", kg=5000)
        allocation.allocate(db, season=2026)
    arows = allocation.get_allocations(db, season=2026, buyer_id="yt-zone-1", limit=50)
    assert arows and all(a["buyer_id"] == "yt-zone-1" and a["week_start"] == a["harvest_week"] for a in arows)
    coop = db.execute("SELECT cooperative_id FROM orchards WHERE orchard_id = %s", (arows[0]["orchard_id"],)
                      ).fetchone()[0]
    coop_rows = allocation.get_allocations(db, season=2026, cooperative_id=coop, limit=100_000)
    coop_orchards = {r[0] for r in db.execute("SELECT orchard_id FROM orchards WHERE cooperative_id = %s",
                                              (coop,)).fetchall()}
    assert coop_rows and {a["orchard_id"] for a in coop_rows} <= coop_orchards


def test_reallocation_runs_only_after_a_new_forecast(db):
    from datetime import UTC

    season = 2027
    last = allocation.latest_run_id(db, season)
    assert allocation.reallocate_if_new_forecast(db, season) is None or last is None
    assert allocation.reallocate_if_new_forecast(db, season) is None          # nothing new now
    make_forecast(db, season, scale=0.9)
    res = allocation.reallocate_if_new_forecast(db, season)
    assert res is not None and res.previous_run_id is not None
    assert allocation.scheduled_allocation(db, datetime(season, 7, 1, tzinfo=UTC))["allocated"] is False
    assert allocation.reallocate_if_new_forecast(db, 1990) is None
