# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Orders, allocations, statements, stock and trace through the API: idempotency and role boundaries."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from test_web_fixtures import (  # noqa: F401
    SAMPLE_GROWER,
    TEST_PASSWORD,
    bearer,
    client,
    sample,
    token_for,
    web_app,
    web_db,
)


def _weeks(web_db: str) -> list[str]:
    with psycopg.connect(web_db) as conn:
        return [str(r[0]) for r in conn.execute("SELECT DISTINCT week_start FROM latest_forecasts ORDER BY 1")]


def _order(client: TestClient, h: dict[str, str], key: str, weeks: list[str], kg: int = 1200) -> Any:
    body = {
        "grade": "L",
        "quantity_kg": kg,
        "week_from": weeks[0],
        "week_to": weeks[-1],
        "destination": "yantai",
        "price_fen_per_kg": 1250,
        "floor_price_fen_per_kg": 800,
    }
    return client.post("/api/v1/orders", json=body, headers={**h, "Idempotency-Key": key})


def test_orders_idempotent_and_private(client: TestClient, web_db: str, sample: dict[str, Any]) -> None:
    weeks = _weeks(web_db)
    ha = bearer(token_for(client, "buyer-test-a-user", TEST_PASSWORD))
    hb = bearer(token_for(client, "buyer-test-b-user", TEST_PASSWORD))
    key = secrets.token_hex(8)
    first = _order(client, ha, key, weeks)
    assert first.status_code == 201, first.text
    oid = first.json()["order_id"]
    again = _order(client, ha, key, weeks)
    assert again.status_code == 201 and again.json()["order_id"] == oid  # retry: same order
    assert _order(client, ha, key, weeks, kg=999).status_code == 409  # same key, other body
    assert client.post("/api/v1/orders", json={"grade": "L"}, headers=ha).status_code == 422  # no key
    assert client.get(f"/api/v1/orders/{oid}", headers=ha).json()["buyer_id"] == "buyer-test-a"
    assert client.get(f"/api/v1/orders/{oid}", headers=hb).status_code == 403
    assert oid not in {o["order_id"] for o in client.get("/api/v1/orders", headers=hb).json()["items"]}
    assert oid in {o["order_id"] for o in client.get("/api/v1/orders", headers=ha).json()["items"]}
    assert client.post(f"/api/v1/orders/{oid}/cancel", headers=hb).status_code == 403
    hg = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    assert _order(client, hg, secrets.token_hex(8), weeks).status_code == 403
    bad = _order(client, ha, secrets.token_hex(8), [weeks[0], str(sample["end"].date())])
    assert bad.status_code == 422 and bad.json()["detail"]["message_zh"]


def test_allocations_statements_stock_trace_scoped(client: TestClient, web_db: str, sample: dict[str, Any]) -> None:
    from trading.allocation import allocate

    weeks = _weeks(web_db)
    ha = bearer(token_for(client, "buyer-test-a-user", TEST_PASSWORD))
    hb = bearer(token_for(client, "buyer-test-b-user", TEST_PASSWORD))
    assert _order(client, ha, secrets.token_hex(8), weeks, kg=900).status_code == 201
    with psycopg.connect(web_db) as conn:
        allocate(conn, season=sample["end"].year)
        conn.commit()
    mine = client.get("/api/v1/allocations", headers=ha).json()
    assert mine["total"] > 0 and {a["buyer_id"] for a in mine["items"]} == {"buyer-test-a"}
    assert all(a["buyer_id"] != "buyer-test-a" for a in client.get("/api/v1/allocations", headers=hb).json()["items"])
    notes = client.get("/api/v1/notifications", headers=ha).json()
    assert notes["total"] >= 1 and {n["recipient_id"] for n in notes["items"]} == {"buyer-test-a"}
    nid = notes["items"][0]["notification_id"]
    assert client.post(f"/api/v1/notifications/{nid}/read", headers=hb).status_code == 403
    assert client.post(f"/api/v1/notifications/{nid}/read", headers=ha).status_code == 204
    assert nid not in {
        n["notification_id"] for n in client.get("/api/v1/notifications?unread_only=true", headers=ha).json()["items"]
    }
    offer = client.get("/api/v1/supply/offer", headers=hb).json()
    assert offer["total"] > 0 and any(r["committed_kg"] > 0 for r in offer["items"])

    hg = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    st = client.get("/api/v1/statements", headers=hg).json()
    assert [s["grower_id"] for s in st["items"]] == [SAMPLE_GROWER]
    assert client.get("/api/v1/statements?grower_id=G-00002", headers=hg).status_code == 403
    hm = bearer(token_for(client, sample["cooperative_id"], role="manager"))
    coop = client.get("/api/v1/statements?limit=500", headers=hm).json()
    assert coop["total"] >= 1 and {s["cooperative_id"] for s in coop["items"]} == {sample["cooperative_id"]}
    assert "total_fen" in coop["poverty_alleviated"]

    assert client.get("/api/v1/warehouse/stock", headers=hm).status_code == 200
    assert client.get("/api/v1/warehouse/stock", headers=hg).status_code == 403
    assert client.get("/api/v1/warehouse/stock", headers=ha).status_code == 403
    assert TestClient(client.app).get("/api/v1/trace/NOPE-1234").status_code == 404  # public, no sign-in


# named zz: runs after the allocation in the test above (pytest keeps file order)
def test_zz_grower_page_shows_contracts_and_expected_income(web_app: Any, web_db: str, sample: dict[str, Any]) -> None:
    import re

    c = TestClient(web_app)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)  # type: ignore[union-attr]
    c.post("/login", data={"username": SAMPLE_GROWER, "password": "plum-grower", "csrf_token": tok})
    with psycopg.connect(web_db) as conn:
        n = conn.execute(
            "SELECT count(*) FROM allocations a JOIN orchards o USING (orchard_id) WHERE o.grower_id = %s",
            (SAMPLE_GROWER,),
        ).fetchone()[0]
    assert n > 0  # the only forecast orchard is the sample grower's, so the allocation used it
    page = c.get("/grower").text
    assert 'id="contracts-table"' in page and 'id="expected-income"' in page
