"""Trading through the web API (the web branch's routes around this package): a buyer places an order
(idempotent), sees it allocated, cannot cancel it then, reads the supply offer; a box's trace code
resolves publicly. Own database, so the shared web fixtures stay untouched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from test_trading_db import W0, make_forecast

from registry.seed import SeedParams, seed
from trading import allocation, buyers, warehouse
from yuncang.app import create_app
from yuncang.auth import create_user
from yuncang.db import make_pool
from yuncang.migrations import migrate
from yuncang.settings import Settings

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def api(make_database) -> Iterator[tuple[TestClient, str]]:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as c:
        seed(c, SeedParams())
        buyers.ensure_buyer(c, buyer_id="api-buyer", name="接口测试采购商", city_name="chongqing")
        warehouse.seed_warehouse(c)
        create_user(c, username="api-buyer-user", password=PASSWORD, role="buyer", buyer_id="api-buyer")
        c.commit()
        make_forecast(c, 2026)
    pool = make_pool(url, min_size=1, max_size=4, name="trading-api-tests")
    try:
        with TestClient(create_app(Settings(database_url=url), pool)) as client:
            yield client, url
    finally:
        pool.close()


def _auth(client: TestClient) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": "api-buyer-user", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_order_lifecycle_through_the_api(api: tuple[TestClient, str]) -> None:
    client, url = api
    h = _auth(client)
    wf = W0[2026] + timedelta(weeks=3)
    body: dict[str, Any] = {"grade": "L", "quantity_kg": "2500", "week_from": wf.isoformat(),
                            "week_to": wf.isoformat(), "destination": "重庆", "price_fen_per_kg": 880}
    r1 = client.post("/api/v1/orders", json=body, headers={**h, "Idempotency-Key": "api-key-0001"})
    assert r1.status_code == 201, r1.text
    r2 = client.post("/api/v1/orders", json=body, headers={**h, "Idempotency-Key": "api-key-0001"})
    assert r2.status_code == 201 and r2.json()["order_id"] == r1.json()["order_id"]
    r3 = client.post("/api/v1/orders", json={**body, "quantity_kg": "9000"},
                     headers={**h, "Idempotency-Key": "api-key-0001"})
    assert r3.status_code == 409 and r3.json()["detail"]["error"] == "conflict"
    tuesday = (wf + timedelta(days=1)).isoformat()
    r4 = client.post("/api/v1/orders", json={**body, "week_from": tuesday, "week_to": tuesday},
                     headers={**h, "Idempotency-Key": "api-key-0002"})
    assert r4.status_code == 422
    oid = r1.json()["order_id"]
    listed = client.get("/api/v1/orders", headers=h).json()
    assert oid in {o["order_id"] for o in listed["items"]} and listed["total"] >= 1

    with psycopg.connect(url, autocommit=True) as c:
        res = allocation.allocate(c, season=2026)
    assert res.committed_kg >= 2500
    mine = client.get(f"/api/v1/orders/{oid}", headers=h).json()
    assert mine["status"] == "allocated" and float(mine["committed_kg"]) == 2500
    rows = client.get("/api/v1/allocations", params={"order_id": oid}, headers=h).json()
    assert rows["total"] > 0 and sum(float(a["kg"]) for a in rows["items"]) == pytest.approx(2500)
    r5 = client.post(f"/api/v1/orders/{oid}/cancel", headers=h)
    assert r5.status_code == 409
    offer = client.get("/api/v1/supply/offer", params={"season": 2026}, headers=h).json()
    assert offer["total"] == 24 and {"p10_kg", "committed_kg", "offered_kg"} <= set(offer["items"][0])

    # a box of this order is traced by anyone
    with psycopg.connect(url, autocommit=True) as c:
        lot = warehouse.receive_lot(c, orchard_id=rows["items"][0]["orchard_id"], harvested_on=date(2026, 7, 28),
                                    kg_by_grade={"L": 500}, cold_room_id="CR-01")
        code = warehouse.fulfil(c, order_id=oid, lot_id=lot.lot_id, grade="L", kg=100).trace_code
    t = client.get(f"/api/v1/trace/{code}")
    assert t.status_code == 200 and t.json()["origin"]["orchard"].endswith(rows["items"][0]["orchard_id"])
    assert t.json()["product"]["grade"] == "L" and t.json()["product"]["harvested_on"] == "2026-07-28"
    for secret in (oid, lot.lot_id, "CR-01", "destination", "buyer", "kg", "grower"):  # no trade data, no people
        assert secret not in t.text, secret
    assert client.get("/api/v1/trace/WS26-0000-0000-0000").status_code == 404
