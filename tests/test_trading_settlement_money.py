"""Settlement that follows the money: grower statements from actual sales (forward, online, hall), grade
prices, shrink deducted, and the cooperative's patronage refund by transaction volume — a worked
example by hand, in integer fen."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from trading import settlement, spot, warehouse
from trading.errors import Invalid


def test_share_by_volume_adds_up_exactly() -> None:
    assert settlement.share_by_volume(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert settlement.share_by_volume(7, {"a": 0, "b": 0}) == {"a": 0, "b": 0}
    got = settlement.share_by_volume(1_000_003, {"x": 333, "y": 667, "z": 0})
    assert sum(got.values()) == 1_000_003 and got["z"] == 0


def test_patronage_share_below_the_law_is_refused(spot_db: str) -> None:
    with psycopg.connect(spot_db, autocommit=True) as c, pytest.raises(Invalid):
        settlement.save_rule_set(c, rule_set_id="too-little", cooperative_id=None, name="x", valid_from_season=2030,
                                 management_fee_fen_per_plant_year=0, picking_fee_fen_per_jin=0,
                                 dividend_tiers=[{"min_jin_per_plant": 0, "rate_bp": 0}], patronage_share_bp=5000)


def test_worked_example_with_grade_prices_shrink_and_patronage(spot_db: str) -> None:
    """Cooperative rule: 4.5 yuan/plant, 0.2 yuan/jin picking, dividend 2 %/3 % at 10 jin/plant, fruit
    bought at L 3.00 / XL 5.00 yuan/kg, shrink borne by the grower, handling 0.50 yuan/kg sold, 60 % of
    the distributable surplus returned by transaction volume.

    Grower A (100 plants) delivers L 600 + XL 200 kg; 20 kg of L shrink. Sold: 300 kg L on a forward order
    at 9.00, 150 kg XL at the hall at 14.00, 200 kg L online at 10.00 -> revenue 680,000 fen.
    1,600 jin / 100 plants = 16 jin -> 3 %: management 45,000; picking 1,600 x 20 = 32,000; dividend
    20,400; fruit 600 x 300 + 200 x 500 = 280,000; shrink 20 x 300 = 6,000 -> 371,400 before patronage.
    Grower B (50 plants) delivers L 300 kg, sells 250 kg at the hall at 10.00 -> 250,000; 600 jin / 50 =
    12 jin -> 3 %: 22,500 + 12,000 + 7,500 + 90,000 = 132,000.
    Cooperative: revenue 930,000 - paid 503,400 - handling 900 kg x 50 = 45,000 -> surplus 381,600;
    pool 60 % = 228,960, shared 680:250 -> A 167,412, B 61,548 (sum exact). Totals A 538,812, B 193,548.
    """
    with psycopg.connect(spot_db, autocommit=True) as c:
        coop, a, b = c.execute(
            """SELECT cooperative_id, min(grower_id), max(grower_id) FROM growers GROUP BY cooperative_id
               HAVING count(*) >= 2 ORDER BY cooperative_id LIMIT 1""").fetchone()
        c.execute("UPDATE orchards SET tree_count = 0 WHERE grower_id IN (SELECT grower_id FROM growers "
                  "WHERE cooperative_id = %s)", (coop,))
        oa = c.execute("SELECT min(orchard_id) FROM orchards WHERE grower_id = %s", (a,)).fetchone()[0]
        ob = c.execute("SELECT min(orchard_id) FROM orchards WHERE grower_id = %s", (b,)).fetchone()[0]
        c.execute("UPDATE orchards SET tree_count = 100 WHERE orchard_id = %s", (oa,))
        c.execute("UPDATE orchards SET tree_count = 50 WHERE orchard_id = %s", (ob,))
        settlement.save_rule_set(c, rule_set_id=f"{coop}-money", cooperative_id=coop, name="按交易量返还",
                                 valid_from_season=2026, management_fee_fen_per_plant_year=450,
                                 picking_fee_fen_per_jin=20,
                                 dividend_tiers=[{"min_jin_per_plant": 0, "rate_bp": 200},
                                                 {"min_jin_per_plant": 10, "rate_bp": 300}],
                                 grade_prices={"XL": 500, "L": 300}, losses_borne_by_grower=True,
                                 handling_fen_per_kg=50, patronage_share_bp=6000)
        la = warehouse.receive_lot(c, orchard_id=oa, harvested_on=date(2026, 7, 20), kg_by_grade={"L": 600, "XL": 200},
                                   cold_room_id="CR-05")
        lb = warehouse.receive_lot(c, orchard_id=ob, harvested_on=date(2026, 7, 21), kg_by_grade={"L": 300},
                                   cold_room_id="CR-05")
        spot.record_loss(c, lot_id=la.lot_id, grade="L", kg=20, reason="shrink", recorded_by="mgr")
        c.execute("INSERT INTO orders (order_id, buyer_id, idempotency_key, request_hash, season, grade, quantity_kg, "
                  "week_from, week_to, destination, price_fen_per_kg, status) VALUES ('ORD-MONEY-1', 'yt-zone-2', "
                  "'money-1', 'h', 2026, 'L', 300, '2026-07-20', '2026-07-20', 'yantai', 900, 'allocated')")
        warehouse.fulfil(c, order_id="ORD-MONEY-1", lot_id=la.lot_id, grade="L", kg=300)
        for g, p in (("XL", 1400), ("L", 1000)):
            spot.set_list_price(c, warehouse_id="WH-WUSHAN", grade=g, price_fen_per_kg=p, set_by="mgr")
        spot.hall_sale(c, warehouse_id="WH-WUSHAN", actor="clerk", client_request_id="money-hall-a",
                       lines=[{"lot_id": la.lot_id, "grade": "XL", "kg": 150}], payment_method="cash")
        s = spot.reserve(c, buyer_id="ec-shop-2", actor="ec-shop-2", client_request_id="money-online-a",
                         lines=[{"lot_id": la.lot_id, "grade": "L", "kg": 200}])
        spot.confirm(c, s.sale_id, buyer_id="ec-shop-2")
        spot.deliver(c, s.sale_id)
        spot.hall_sale(c, warehouse_id="WH-WUSHAN", actor="clerk", client_request_id="money-hall-b",
                       lines=[{"lot_id": lb.lot_id, "grade": "L", "kg": 250}], payment_method="transfer")
        # a hold that was never collected is not a sale
        spot.reserve(c, buyer_id="ec-shop-2", actor="ec-shop-2", client_request_id="money-online-held",
                     lines=[{"lot_id": lb.lot_id, "grade": "L", "kg": 10}])

        rep = settlement.statements(c, season=2026, cooperative_id=coop)
        one = settlement.statements(c, season=2026, grower_id=a)
    st = {x.grower_id: x for x in rep.statements}
    sa, sb = st[a], st[b]
    assert (sa.revenue_fen, sa.management_fee_fen, sa.picking_fee_fen, sa.dividend_rate_bp, sa.dividend_fen) == \
        (680_000, 45_000, 32_000, 300, 20_400)
    assert (sa.fruit_payment_fen, sa.loss_deduction_fen, sa.lost_kg, sa.sold_kg) == (280_000, 6_000, 20, 650)
    assert {(x["channel"], x["grade"], x["price_fen_per_kg"], x["kg"], x["amount_fen"]) for x in sa.sales} == {
        ("forward", "L", 900, 300, 270_000), ("hall", "XL", 1400, 150, 210_000), ("online", "L", 1000, 200, 200_000)}
    assert (sb.revenue_fen, sb.dividend_fen, sb.fruit_payment_fen, sb.total_fen - sb.patronage_fen) == \
        (250_000, 7_500, 90_000, 132_000)
    assert rep.cooperatives[coop] == {"revenue_fen": 930_000, "paid_to_members_fen": 503_400, "handling_fen": 45_000,
                                      "surplus_fen": 381_600, "distributable_fen": 381_600,
                                      "patronage_pool_fen": 228_960, "patronage_share_bp": 6000}
    assert (sa.patronage_fen, sb.patronage_fen) == (167_412, 61_548)
    assert (sa.total_fen, sb.total_fen) == (538_812, 193_548)
    others = [x for x in rep.statements if x.grower_id not in (a, b)]
    assert all(x.total_fen == 0 for x in others)
    assert rep.totals["total_fen"] == 538_812 + 193_548
    # one grower's statement carries the same refund: the surplus is the whole cooperative's
    assert one.statements[0].total_fen == 538_812 and one.cooperatives[coop]["patronage_pool_fen"] == 228_960
