"""One stock, three channels, hundreds of concurrent HTTP requests: zero oversell, every kg accounted for.

A real uvicorn server on a free port and an asyncio client fire at once, on the same four lots:
online reservations (retried as a flaky phone does) and confirmations by six buyers, counter sales by
hall staff, and forward-order shipments by the warehouse — about 2.7 times more kg than the lots
hold. Afterwards: no lot row below zero, reserved kg equal to the open holds, received = remaining +
shipped + collected, and each client request id made at most one sale. Then the unconfirmed holds run
out and a second wave of counter sales takes exactly the kg they returned.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from datetime import date
from typing import Any

import httpx
import psycopg
import pytest

from trading import buyers, spot, stock, warehouse
from yuncang.auth import create_user

PW = "spot-concurrency-pw"
BUYERS = [f"spot-b{i}" for i in range(6)]
LOT_KG = 500


@pytest.fixture(scope="module")
def served(spot_db: str, serve_spot: str) -> tuple[str, str, list[str], list[str]]:
    url = spot_db
    with psycopg.connect(url) as c:
        for b in BUYERS:
            buyers.ensure_buyer(c, buyer_id=b, name=f"并发采购商{b}", kind="supermarket", city_name="chongqing")
            create_user(c, username=b, password=PW, role="buyer", buyer_id=b)
        grower = c.execute("SELECT grower_id FROM growers ORDER BY grower_id LIMIT 1").fetchone()[0]
        create_user(c, username="hall-clerk", password=PW, role="grower", grower_id=grower)
        create_user(c, username="spot-admin", password=PW, role="admin")
        c.commit()
        spot.grant_hall_staff(c, username="hall-clerk", warehouse_id="WH-WUSHAN", granted_by="spot-admin")
        spot.set_list_price(c, warehouse_id="WH-WUSHAN", grade="L", price_fen_per_kg=1000, set_by="spot-admin")
        orchard = c.execute("SELECT orchard_id FROM orchards ORDER BY orchard_id LIMIT 1").fetchone()[0]
        lots = [warehouse.receive_lot(c, orchard_id=orchard, harvested_on=date(2026, 7, 21),
                                      kg_by_grade={"L": LOT_KG}, cold_room_id="CR-01").lot_id for _ in range(4)]
        orders = []
        for i in range(3):
            orders.append(c.execute(
                "INSERT INTO orders (order_id, buyer_id, idempotency_key, request_hash, season, grade, quantity_kg, "
                "week_from, week_to, destination, price_fen_per_kg, status) VALUES (%s, %s, %s, 'h', 2026, 'L', 400, "
                "'2026-07-20', '2026-07-20', 'chongqing', 900, 'allocated') RETURNING order_id",
                (f"ORD-SPOTC-{i}", BUYERS[i], f"spotc-{i}")).fetchone()[0])
        c.commit()
    return serve_spot, url, lots, orders


async def _tokens(client: httpx.AsyncClient, users: list[str]) -> dict[str, dict[str, str]]:
    out = {}
    for u in users:
        r = await client.post("/api/v1/auth/token", json={"username": u, "password": PW})
        assert r.status_code == 200, r.text
        out[u] = {"Authorization": f"Bearer {r.json()['token']}"}
    return out


Result = tuple[str, str, int, dict[str, Any]]   # (channel, request id, status, body)


def _wave_one(lots: list[str], orders: list[str]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(channel, user, path, request id, body) for every request of the mixed wave, retries included."""
    rnd = random.Random(17)
    reqs: list[tuple[str, str, str, str, dict[str, Any]]] = []
    for i in range(150):
        b = BUYERS[i % len(BUYERS)]
        rid = f"resv-{i:04d}-{b}"
        line = {"lot_id": rnd.choice(lots), "grade": "L", "kg": rnd.randint(10, 30)}
        body = {"client_request_id": rid, "lines": [line], "hold_minutes": 30}
        for _ in range(2 if i % 3 == 0 else 1):
            reqs.append(("online", b, "/api/v1/spot/reservations", rid, body))
    for i in range(100):
        rid = f"hall-{i:04d}"
        body = {"warehouse_id": "WH-WUSHAN", "client_request_id": rid, "payment_method": ["cash", "transfer"][i % 2],
                "lines": [{"lot_id": rnd.choice(lots), "grade": "L", "kg": rnd.randint(5, 25)}]}
        for _ in range(2 if i % 4 == 0 else 1):
            reqs.append(("hall", "hall-clerk", "/api/v1/spot/hall-sales", rid, body))
    for i in range(60):
        rid = f"ship-{i:04d}"
        body = {"order_id": orders[i % len(orders)], "lot_id": rnd.choice(lots), "grade": "L",
                "kg": rnd.randint(10, 20), "client_request_id": rid}
        for _ in range(2 if i % 5 == 0 else 1):
            reqs.append(("forward", "spot-admin", "/api/v1/warehouse/shipments", rid, body))
    rnd.shuffle(reqs)
    return reqs


async def _fire(base: str, reqs: list[tuple[str, str, str, str, dict[str, Any]]]) -> list[Result]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=base, timeout=180, limits=limits) as client:
        toks = await _tokens(client, sorted({u for _, u, _, _, _ in reqs}))

        async def one(ch: str, user: str, path: str, rid: str, body: dict[str, Any]) -> Result:
            r = await client.post(path, json=body, headers=toks[user])
            return ch, rid, r.status_code, r.json()

        return list(await asyncio.gather(*(one(*q) for q in reqs)))


def _check_stock(url: str, lots: list[str]) -> dict[str, Any]:
    with psycopg.connect(url) as c:
        rows = [r for r in stock.balance(c) if r["lot_id"] in lots]
    for r in rows:
        assert r["remaining_kg"] >= r["reserved_kg"] >= 0, r
        assert r["unexplained_kg"] == 0, r            # received = remaining + shipped + collected (+ lost)
        assert r["reserved_mismatch_kg"] == 0, r      # reserved = kg of open holds and confirmed sales
    return {"rows": rows}


def test_mixed_channels_never_oversell_the_same_lots(served) -> None:
    base, url, lots, orders = served
    reqs = _wave_one(lots, orders)
    assert len(reqs) >= 350
    results = asyncio.run(_fire(base, reqs))
    statuses = Counter((ch, s) for ch, _, s, _ in results)
    assert {s for _, s in statuses} <= {200, 201, 409}, statuses       # no 500s, nothing lost
    by_rid: dict[str, set[str]] = defaultdict(set)
    for _ch, rid, s, body in results:
        if s < 300:
            by_rid[rid].add(str(body.get("sale_id") or body.get("shipment_id")))
    assert all(len(v) == 1 for v in by_rid.values()), "a retried request made two sales"
    for ch in ("online", "hall", "forward"):
        assert statuses[(ch, 201)] > 0 and statuses[(ch, 409)] > 0, statuses   # every channel won and lost races

    _check_stock(url, lots)
    with psycopg.connect(url) as c:
        sold = c.execute("SELECT coalesce(sum(l.kg), 0) FROM spot_sale_lines l JOIN spot_sales s USING (sale_id) "
                         "WHERE s.status IN ('held', 'confirmed', 'delivered')").fetchone()[0]
        shipped = c.execute("SELECT coalesce(sum(kg), 0) FROM shipments").fetchone()[0]
        remaining = c.execute("SELECT sum(remaining_kg - reserved_kg) FROM lot_grades WHERE lot_id = ANY(%s)",
                              (lots,)).fetchone()[0]
        n_sales = c.execute("SELECT count(*) FROM spot_sales").fetchone()[0]
        n_ship = c.execute("SELECT count(*) FROM shipments").fetchone()[0]
    assert sold + shipped + remaining == 4 * LOT_KG                     # kg conserved
    assert n_sales + n_ship == len(by_rid)                              # one row per successful request id
    assert remaining < 4 * 30                                           # the stock was fought over to the end

    # confirm half of the holds; the rest run out and give their kg back
    held = [(rid, b["sale_id"]) for ch, rid, s, b in results if ch == "online" and s == 201]
    held = sorted(dict(held).items())
    confirm = held[::2]

    async def confirm_all() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            toks = await _tokens(client, BUYERS)
            rs = await asyncio.gather(*(client.post(f"/api/v1/spot/sales/{sid}/confirm",
                                                    headers=toks[rid.split("-", 2)[2]])
                                        for rid, sid in confirm))
            return [r.status_code for r in rs]

    assert set(asyncio.run(confirm_all())) == {200}
    with psycopg.connect(url) as c:
        freed = dict(c.execute(
            "SELECT l.lot_id, sum(l.kg) FROM spot_sale_lines l JOIN spot_sales s USING (sale_id) "
            "WHERE s.status = 'held' GROUP BY 1").fetchall())
        c.execute("UPDATE spot_sales SET expires_at = now() - interval '1 minute' WHERE status = 'held'")
        c.commit()
        before = dict(c.execute("SELECT lot_id, remaining_kg - reserved_kg FROM lot_grades WHERE lot_id = ANY(%s)",
                                (lots,)).fetchall())
    assert sum(freed.values()) > 0
    expect = {lot: int(before[lot] + freed.get(lot, 0)) for lot in lots}

    # wave two: counter sales of 1 kg each, 10 more per lot than the kg it has once the holds expire
    wave2 = [("hall", "hall-clerk", "/api/v1/spot/hall-sales", f"hall2-{lot}-{i:04d}",
              {"warehouse_id": "WH-WUSHAN", "client_request_id": f"hall2-{lot}-{i:04d}", "payment_method": "cash",
               "lines": [{"lot_id": lot, "grade": "L", "kg": 1}]}) for lot in lots for i in range(expect[lot] + 10)]
    random.Random(3).shuffle(wave2)
    res2 = asyncio.run(_fire(base, wave2))
    ok2 = sum(1 for _, _, s, _ in res2 if s == 201)
    assert {s for _, _, s, _ in res2} <= {201, 409}
    assert ok2 == sum(expect.values())            # every returned kg sold again, not one more
    _check_stock(url, lots)
    with psycopg.connect(url) as c:
        assert c.execute("SELECT count(*) FROM spot_sales WHERE status = 'held'").fetchone()[0] == 0
        assert c.execute("SELECT sum(remaining_kg - reserved_kg) FROM lot_grades WHERE lot_id = ANY(%s)",
                         (lots,)).fetchone()[0] == 0
