"""Several origin warehouses against the real database: the allocation picks a site per orchard and week
within each site's weekly intake and storage, lots are received where the plan sends them, and forward
shipments and spot sales leave from the site that holds the lot."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest

from trading import allocation, sites, spot, warehouse
from trading.errors import Conflict


@pytest.fixture(scope="module")
def planned(spot_db: str, spot_forecast: date) -> dict:
    w0 = spot_forecast
    with psycopg.connect(spot_db, autocommit=True) as c:
        # the county centre takes at most 60 t a week: the others must take the rest
        sites.save_site(c, warehouse_id="WH-WUSHAN", name="巫山脆李产地云仓", lat=31.074, lon=109.878,
                        township="longxi", intake_kg_per_week=60_000)
        for i in range(12):
            wk = w0 + timedelta(weeks=2 + i % 3)
            c.execute("INSERT INTO orders (order_id, buyer_id, idempotency_key, request_hash, season, grade, "
                      "quantity_kg, week_from, week_to, destination, price_fen_per_kg, status) VALUES "
                      "(%s, %s, %s, 'h', 2026, %s, 40000, %s, %s, %s, 900, 'open')",
                      (f"ORD-SITE-{i:02d}", ["yt-zone-1", "cq-hall", "ec-shop-3"][i % 3], f"site-{i}",
                       ["L", "XL", "M"][i % 3], wk, wk, ["yantai", "chongqing", "hangzhou"][i % 3]))
        res = allocation.allocate(c, season=2026, notify=False)
        rows = allocation.get_allocations(c, alloc_run_id=res.alloc_run_id, status="committed")
    return {"w0": w0, "run": res, "rows": rows, "url": spot_db}


def test_allocation_picks_sites_within_their_weekly_intake(planned) -> None:
    rows = planned["rows"]
    assert planned["run"].committed_kg > 0
    per_site_week: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for r in rows:
        per_site_week[(r["warehouse_id"], r["harvest_week"])] += r["kg"]
    used_sites = {s for s, _ in per_site_week}
    assert len(used_sites) >= 2 and used_sites <= {s[0] for s in sites.DEMO_SITES}
    assert max(kg for (s, _), kg in per_site_week.items() if s == "WH-WUSHAN") <= 60_000 + Decimal("0.01")
    # an orchard in a township with its own site goes there unless that site is full
    with psycopg.connect(planned["url"]) as c:
        town = dict(c.execute("SELECT orchard_id, township_id FROM orchards").fetchall())
    by_town_site: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_town_site[town[r["orchard_id"]]].add(r["warehouse_id"])
    assert "WH-SHUANGLONG" in by_town_site.get("shuanglong", {"WH-SHUANGLONG"})


def test_lots_go_where_the_plan_sends_them_and_leave_from_there(planned) -> None:
    rows = planned["rows"]
    with psycopg.connect(planned["url"], autocommit=True) as c:
        picked: dict[str, dict] = {}
        for r in rows:
            site = sites.planned_site(c, r["orchard_id"], r["harvest_week"], 2026)
            if site and site not in picked and r["kg"] >= 50:
                picked[site] = r
            if len(picked) == 2:
                break
        assert len(picked) == 2
        shipped_from = set()
        for site, r in picked.items():
            room = sites.cold_room_for(c, site, 50)
            assert sites.site_of_cold_room(c, room) == site
            lot = warehouse.receive_lot(c, orchard_id=r["orchard_id"], harvested_on=r["harvest_week"],
                                        kg_by_grade={r["grade"]: 50}, cold_room_id=room)
            sh = warehouse.fulfil(c, order_id=r["order_id"], lot_id=lot.lot_id, grade=r["grade"], kg=20)
            shipped_from.add(sh.from_warehouse_id)
            spot.set_list_price(c, warehouse_id=site, grade=r["grade"], price_fen_per_kg=1000, set_by="m")
            sale = spot.hall_sale(c, warehouse_id=site, actor="clerk", client_request_id=f"site-sale-{site}",
                                  lines=[{"lot_id": lot.lot_id, "grade": r["grade"], "kg": 5}], payment_method="cash")
            assert sale.warehouse_id == site
        assert shipped_from == set(picked)                       # two shipments, two different sites
        with pytest.raises(Conflict):
            sites.cold_room_for(c, "WH-GUANYANG", 9_000_000)


def test_site_distances_use_the_stated_road_factor() -> None:
    import numpy as np

    from trading.geo import ROAD_FACTOR, haversine_km

    km = sites.road_km_matrix(np.array([31.074]), np.array([109.878]), np.array([31.2]), np.array([109.72]))
    assert km[0, 0] == pytest.approx(ROAD_FACTOR * haversine_km(31.074, 109.878, 31.2, 109.72))
    assert sites.road_km_matrix(np.array([31.0]), np.array([110.0]), np.array([31.0]), np.array([110.0]),
                                road_factor=2.0)[0, 0] == pytest.approx(0)
