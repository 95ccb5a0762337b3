"""The emergency channel for a glut: a warning fires, a manager opens its gap to institutional buyers,
each takes part with one action, the orders are allocated and the warning shrinks; partners' season
purchases are tracked against their pledges."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient

from trading import glut
from trading import warnings as unsold
from trading.errors import Conflict, Forbidden
from yuncang.auth import create_user

PW = "glut-test-password"
W0 = date(2026, 7, 6)           # first harvest week of the spot_forecast fixture (Monday)
WEEK = W0 + timedelta(weeks=3)


@pytest.fixture(scope="module")
def api(spot_db: str, spot_api: TestClient, spot_forecast: date) -> tuple[TestClient, str]:
    with psycopg.connect(spot_db, autocommit=True) as c:
        coop = c.execute("SELECT cooperative_id FROM cooperatives ORDER BY 1 LIMIT 1").fetchone()[0]
        create_user(c, username="glut-mgr", password=PW, role="manager", cooperative_id=coop)
        for b in ("inst-cq-union", "sanxia-egou", "yt-zone-1"):
            create_user(c, username=b, password=PW, role="buyer", buyer_id=b)
    return spot_api, spot_db


def _h(client: TestClient, user: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": user, "password": PW})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _surplus(conn: psycopg.Connection) -> dict[tuple[date, str], Decimal]:
    return {(w.week_start, w.grade): w.surplus_kg
            for w in unsold.evaluate_unsold_risk(conn, season=2026, as_of=W0, horizon_weeks=8, raise_alert=False)}


def test_a_glut_offer_is_taken_allocated_and_the_warning_shrinks(api) -> None:
    client, url = api
    mgr, union, egou, zone = (_h(client, u) for u in ("glut-mgr", "inst-cq-union", "sanxia-egou", "yt-zone-1"))
    with psycopg.connect(url) as c:
        before = _surplus(c)
    assert before[(WEEK, "L")] > 60_000                     # a glut: the week's L fruit has no orders

    quiet = W0 - timedelta(weeks=10)
    r = client.post("/api/v1/glut/offers", headers=mgr, json={"season": 2026, "week_start": quiet.isoformat(),
                                                              "grade": "L", "floor_price_fen_per_kg": 600})
    assert r.status_code == 409                              # no warning there, nothing to open
    assert client.post("/api/v1/glut/offers", headers=zone, json={
        "season": 2026, "week_start": WEEK.isoformat(), "grade": "L", "floor_price_fen_per_kg": 600}).status_code == 403
    r = client.post("/api/v1/glut/offers", headers=mgr, json={"season": 2026, "week_start": WEEK.isoformat(),
                                                              "grade": "L", "floor_price_fen_per_kg": 600,
                                                              "kg": "50000"})
    assert r.status_code == 201, r.text
    off = r.json()
    assert off["offered_kg"] == 50000 and off["remaining_kg"] == 50000 and off["warning_key"].endswith(":L")
    oid = off["glut_offer_id"]
    assert client.post("/api/v1/glut/offers", headers=mgr, json={
        "season": 2026, "week_start": WEEK.isoformat(), "grade": "L", "floor_price_fen_per_kg": 600}).status_code == 409

    # a supermarket is not in the emergency channel
    assert client.post(f"/api/v1/glut/offers/{oid}/accept", headers=zone, json={"kg": 100}).status_code == 403
    a1 = client.post(f"/api/v1/glut/offers/{oid}/accept", headers=union, json={"kg": "20000"})
    assert a1.status_code == 201, a1.text
    body = a1.json()
    order = body["acceptance"]["order"]
    assert order["grade"] == "L" and order["price_fen_per_kg"] == 600 and order["week_from"] == WEEK.isoformat()
    assert body["plan"]["orders"][0]["committed_kg"] == 20000               # allocated at once
    again = client.post(f"/api/v1/glut/offers/{oid}/accept", headers=union, json={"kg": "20000"})
    assert again.status_code == 201 and again.json()["acceptance"]["order_id"] == order["order_id"]
    assert client.post(f"/api/v1/glut/offers/{oid}/accept", headers=union, json={"kg": "5"}).status_code == 409
    assert client.post(f"/api/v1/glut/offers/{oid}/accept", headers=egou, json={"kg": "40000"}).status_code == 409
    a2 = client.post(f"/api/v1/glut/offers/{oid}/accept", headers=egou, json={"kg": "30000"})
    assert a2.status_code == 201, a2.text
    after_plan = a2.json()["plan"]
    assert sorted(o["committed_kg"] for o in after_plan["orders"]) == [20000, 30000]
    listed = client.get("/api/v1/glut/offers", params={"status": "closed"}, headers=union).json()
    assert [o["remaining_kg"] for o in listed["items"]] == [0]              # fully taken: closed

    with psycopg.connect(url) as c:
        after = _surplus(c)
        alert = c.execute("SELECT detail FROM alerts WHERE kind = 'unsold_risk' AND dedupe_key = %s "
                          "AND resolved_at IS NULL", (off["warning_key"],)).fetchone()
    total_before = sum(before.values())
    total_after = sum(after.get(k, Decimal(0)) for k in before)
    assert total_before - total_after == pytest.approx(50_000, abs=1)        # the matched kg left the glut
    assert after[(WEEK, "L")] < before[(WEEK, "L")]
    assert alert is not None and alert[0]["surplus_kg"] == pytest.approx(float(after[(WEEK, "L")]), abs=1)
    assert after_plan["warning"]["surplus_kg"] == pytest.approx(float(after[(WEEK, "L")]), abs=1)

    # pledges and the season's purchases per partner
    assert client.put("/api/v1/glut/pledges", headers=mgr, json={"buyer_id": "inst-cq-union", "season": 2026,
                                                                 "pledged_fen": 20_000_000}).status_code == 200
    rows = {r["buyer_id"]: r for r in client.get("/api/v1/glut/partners", params={"season": 2026},
                                                 headers=mgr).json()["items"]}
    u = rows["inst-cq-union"]
    assert u["glut_kg"] == 20000 and u["glut_fen"] == 12_000_000 and u["purchased_fen"] == 12_000_000
    assert u["pledge_share"] == pytest.approx(0.6)
    assert rows["sanxia-egou"]["glut_kg"] == 30000 and rows["sanxia-egou"]["pledge_share"] is None
    assert "yt-zone-1" not in rows
    mine = client.get("/api/v1/glut/partners", params={"season": 2026}, headers=union).json()["items"]
    assert [r["buyer_id"] for r in mine] == ["inst-cq-union"]


def test_acceptance_rules_in_the_domain(api) -> None:
    _, url = api
    with psycopg.connect(url, autocommit=True) as c:
        wk = WEEK + timedelta(weeks=1)
        off = glut.open_offer(c, season=2026, week_start=wk, grade="M", floor_price_fen_per_kg=400, opened_by="m",
                              as_of=wk)
        assert off.offered_kg <= off.surplus_kg and off.remaining_kg == off.offered_kg
        with pytest.raises(Forbidden):
            glut.accept_offer(c, off.glut_offer_id, buyer_id="proc-wushan", kg=10, actor="x")
        glut.close_offer(c, off.glut_offer_id)
        with pytest.raises(Conflict):
            glut.accept_offer(c, off.glut_offer_id, buyer_id="inst-wuhan-units", kg=10, actor="x")
