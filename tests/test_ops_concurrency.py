"""Hundreds of concurrent HTTP requests on loopback: orders are never duplicated, lots never oversold.

A real uvicorn server on a free port, a real database, and an asyncio client firing every request at
once. Each idempotency key is retried many times in parallel (as a flaky mobile network does); a key
re-used with another body must be refused. Shipments from one lot race each other over HTTP too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import httpx
import psycopg
import pytest
import uvicorn

from registry.seed import SeedParams, seed
from trading.buyers import ensure_buyer
from yuncang.app import create_app
from yuncang.auth import create_user
from yuncang.db import make_pool
from yuncang.embedded import free_port
from yuncang.migrations import migrate
from yuncang.settings import Settings

KEYS = 40          # distinct orders
RETRIES = 8        # concurrent copies of each request
CONFLICTS = 40     # same key, different body


@pytest.fixture
def live(make_database: Callable[[], str]) -> Iterator[tuple[str, str]]:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as c:
        seed(c, SeedParams(seed=8, orchard_count=20, total_area_mu=2000.0))
        ensure_buyer(c, buyer_id="conc-buyer", name="并发测试采购商", kind="supermarket", city_name="chongqing")
        create_user(c, username="conc-buyer", password="conc-lantern-58", role="buyer", buyer_id="conc-buyer")
        c.commit()
    pool = make_pool(url, max_size=10)
    port = free_port()
    app = create_app(Settings(database_url=url), pool)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", url
    server.should_exit = True
    t.join(10)
    pool.close()


def test_hundreds_of_concurrent_order_requests_create_each_order_once(live: tuple[str, str]) -> None:
    base, db = live
    week = date.today() + timedelta(days=(7 - date.today().weekday()) % 7 + 7 * 30)

    def body(i: int, kg: int) -> dict[str, object]:
        return {"grade": ["XL", "L", "M"][i % 3], "quantity_kg": kg, "week_from": week.isoformat(),
                "week_to": (week + timedelta(days=7)).isoformat(), "destination": "chongqing",
                "price_fen_per_kg": 1000 + i}

    async def fire() -> list[tuple[str, int, str | None, float]]:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
            tok = (await client.post("/api/v1/auth/token",
                                     json={"username": "conc-buyer", "password": "conc-lantern-58"})).json()["token"]
            auth = {"Authorization": f"Bearer {tok}"}

            async def one(key: str, payload: dict[str, object]) -> tuple[str, int, str | None, float]:
                r = await client.post("/api/v1/orders", json=payload,
                                      headers={**auth, "Idempotency-Key": key})
                oid = r.json().get("order_id") if r.status_code < 300 else None
                return key, r.status_code, oid, float(payload["quantity_kg"])  # type: ignore[arg-type]

            jobs = [one(f"conc-key-{i:04d}", body(i, 1000 + 10 * i)) for i in range(KEYS) for _ in range(RETRIES)]
            jobs += [one(f"conc-key-{i % KEYS:04d}", body(i % KEYS, 999_999)) for i in range(CONFLICTS)]
            return await asyncio.gather(*jobs)

    results = asyncio.run(fire())
    assert len(results) == KEYS * RETRIES + CONFLICTS
    statuses = Counter(s for _, s, _, _ in results)
    assert set(statuses) <= {200, 201, 409}, statuses          # never a 500, never a lost request
    ids: dict[str, set[str]] = {}
    won: dict[str, set[float]] = {}
    for key, _status, oid, kg in results:
        if oid:
            ids.setdefault(key, set()).add(oid)
            won.setdefault(key, set()).add(kg)
    assert len(ids) == KEYS and all(len(v) == 1 for v in ids.values()), "each key maps to exactly one order"
    assert all(len(v) == 1 for v in won.values()), "only one body per key is ever accepted"
    for key, status, _, kg in results:  # every request with the other body was refused with 409
        assert (status in (200, 201)) == (kg in won[key]), (key, status, kg)
    with psycopg.connect(db) as c:
        n, distinct_keys = c.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM orders WHERE buyer_id = 'conc-buyer'").fetchone()
        kgs = {k: float(q) for k, q in c.execute(
            "SELECT idempotency_key, quantity_kg FROM orders WHERE buyer_id = 'conc-buyer'").fetchall()}
    assert n == KEYS and distinct_keys == KEYS
    assert all(kgs[k] in won[k] for k in kgs), "the stored order is the accepted body"


def test_hundreds_of_concurrent_shipments_never_oversell_a_lot(live: tuple[str, str]) -> None:
    """200 shipment requests of 50 kg race for a 1,000 kg lot: exactly 20 ship, the rest get 409, stock ends at 0."""
    from datetime import UTC, datetime

    from orchard_models.run import forecast_all
    from trading.allocation import allocate
    from trading.warehouse import seed_warehouse

    base, db = live
    with psycopg.connect(db) as c:
        create_user(c, username="conc-admin", password="conc-lantern-59", role="admin")
        seed_warehouse(c)
        run_id = forecast_all(c, datetime.now(UTC))
        week, grade, season = c.execute(
            "SELECT f.week_start, f.grade, r.season FROM forecasts f JOIN forecast_runs r USING (run_id) "
            "WHERE run_id = %s ORDER BY f.p10_kg DESC LIMIT 1", (run_id,)).fetchone()
        room = c.execute("SELECT cold_room_id FROM cold_rooms ORDER BY cold_room_id LIMIT 1").fetchone()[0]
        c.commit()

    async def fire() -> tuple[list[int], dict[str, object]]:
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
            async def bearer(u: str, pw: str) -> dict[str, str]:
                r = await client.post("/api/v1/auth/token", json={"username": u, "password": pw})
                return {"Authorization": f"Bearer {r.json()['token']}"}

            buyer, admin = await bearer("conc-buyer", "conc-lantern-58"), await bearer("conc-admin", "conc-lantern-59")
            r = await client.post("/api/v1/orders", headers={**buyer, "Idempotency-Key": "conc-ship-order"},
                                  json={"grade": grade, "quantity_kg": 2000, "week_from": week.isoformat(),
                                        "week_to": week.isoformat(), "destination": "chongqing",
                                        "price_fen_per_kg": 1500})
            assert r.status_code == 201, r.text
            order_id = r.json()["order_id"]
            with psycopg.connect(db) as c:
                allocate(c, season=season)
                c.commit()
                assert c.execute("SELECT status FROM orders WHERE order_id = %s", (order_id,)).fetchone()[0] \
                    == "allocated"
            r = await client.post("/api/v1/warehouse/lots", headers=admin,
                                  json={"orchard_id": "WS-0001", "harvested_on": week.isoformat(),
                                        "cold_room_id": room, "kg_by_grade": {grade: 1000}})
            assert r.status_code == 201, r.text
            lot = r.json()

            async def ship() -> int:
                resp = await client.post("/api/v1/warehouse/shipments", headers=admin,
                                         json={"order_id": order_id, "lot_id": lot["lot_id"], "grade": grade,
                                               "kg": 50})
                return resp.status_code

            return list(await asyncio.gather(*[ship() for _ in range(200)])), lot

    statuses, lot = asyncio.run(fire())
    counts = Counter(statuses)
    assert counts == {201: 20, 409: 180}, counts
    with psycopg.connect(db) as c:
        remaining = c.execute("SELECT remaining_kg FROM lot_grades WHERE lot_id = %s", (lot["lot_id"],)).fetchone()[0]
        shipped, codes = c.execute("SELECT sum(kg), count(DISTINCT trace_code) FROM shipments WHERE lot_id = %s",
                                   (lot["lot_id"],)).fetchone()
    assert float(remaining) == 0.0 and float(shipped) == 1000.0 and codes == 20
