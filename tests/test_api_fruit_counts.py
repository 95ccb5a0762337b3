# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Sample-tree fruit counts through the HTTP API: who may record them, validation, idempotency,
and that the next forecast run uses them."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from fastapi.testclient import TestClient
from test_web_fixtures import bearer, client, token_for, web_app, web_db  # noqa: F401

from orchard_models.fruit_counts import read_fruit_counts

GROWER = "G-00012"


def _orchards(web_db: str) -> tuple[str, str, str, str]:
    with psycopg.connect(web_db) as conn:
        own, coop = conn.execute(
            "SELECT orchard_id, cooperative_id FROM orchards WHERE grower_id = %s ORDER BY orchard_id LIMIT 1",
            (GROWER,)).fetchone()
        other = conn.execute("SELECT orchard_id FROM orchards WHERE grower_id <> %s AND cooperative_id <> %s "
                             "LIMIT 1", (GROWER, coop)).fetchone()[0]
        buyer = conn.execute("SELECT username FROM users WHERE role = 'buyer' LIMIT 1").fetchone()[0]
    return own, coop, other, buyer


def _body(client_id: str, fruit: list[float], **kw: object) -> dict:
    return {"client_id": client_id, "counted_on": (date.today() - timedelta(days=1)).isoformat(),
            "trees": [{"tree_id": f"T{i + 1}", "fruit": f} for i, f in enumerate(fruit)], **kw}


def test_grower_records_counts_once_per_client_id(client: TestClient, web_db: str) -> None:
    own, _coop, other, _buyer = _orchards(web_db)
    h = bearer(token_for(client, GROWER, role="grower"))
    url = f"/api/v1/orchards/{own}/fruit-counts"
    r = client.post(url, json=_body("phone-1-abc", [210, 180, 260], mean_fruit_g=38.5), headers=h)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["tree_ids"] == ["T1", "T2", "T3"] and got["fruit_per_tree"] == [210, 180, 260]
    assert got["recorded_by"] == GROWER and got["mean_fruit_g"] == 38.5
    # the phone retries after a lost answer: the same record, not a second one
    again = client.post(url, json=_body("phone-1-abc", [210, 180, 260], mean_fruit_g=38.5), headers=h)
    assert again.status_code == 200 and again.json()["count_id"] == got["count_id"]
    clash = client.post(url, json=_body("phone-1-abc", [1, 2, 3]), headers=h)
    assert clash.status_code == 409
    assert client.post(f"/api/v1/orchards/{other}/fruit-counts", json=_body("x-2", [5]), headers=h).status_code == 404  # another grower's orchard: not revealed (issue 14)
    assert client.post("/api/v1/orchards/NO-SUCH/fruit-counts", json=_body("x-3", [5]), headers=h).status_code == 404
    with psycopg.connect(web_db) as conn:
        assert conn.execute("SELECT count(*) FROM fruit_counts WHERE client_id = 'phone-1-abc'").fetchone()[0] == 1


def test_bad_numbers_are_4xx_with_a_reason(client: TestClient, web_db: str) -> None:
    own, _coop, _other, _buyer = _orchards(web_db)
    h = bearer(token_for(client, GROWER, role="grower"))
    url = f"/api/v1/orchards/{own}/fruit-counts"
    future = (date.today() + timedelta(days=3)).isoformat()
    bad = [
        _body("b1", [-3]), _body("b2", [1e9]), _body("b3", []), _body("b4", [10], mean_fruit_g=0),
        _body("b5", [10], mean_fruit_g=900), {**_body("b6", [10]), "counted_on": future},
        {**_body("b7", [10, 12]), "trees": [{"tree_id": "T1", "fruit": 10}, {"tree_id": "T1", "fruit": 12}]},
        {**_body("", [10])}, {**_body("b9", [10]), "trees": [{"tree_id": "T1", "fruit": "many"}]},
    ]
    for body in bad:
        r = client.post(url, json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"]
    with psycopg.connect(web_db) as conn:
        assert conn.execute("SELECT count(*) FROM fruit_counts WHERE client_id LIKE 'b_'").fetchone()[0] == 0


def test_manager_of_the_cooperative_may_record_a_buyer_may_not(client: TestClient, web_db: str) -> None:
    own, coop, _other, buyer = _orchards(web_db)
    url = f"/api/v1/orchards/{own}/fruit-counts"
    hm = bearer(token_for(client, coop, role="manager"))
    assert client.post(url, json=_body("tech-visit-7", [150, 160]), headers=hm).status_code == 201
    hb = bearer(token_for(client, buyer, role="buyer"))
    assert client.post(url, json=_body("buyer-try", [150]), headers=hb).status_code == 403
    with psycopg.connect(web_db) as conn:
        s0 = date.today() - timedelta(days=30)
        from datetime import UTC, datetime

        c = read_fruit_counts(conn, {own: 0}, s0, datetime.now(UTC))
    # the latest counting day pools its trees (the grower's 3 and the technician's 2 the same day)
    assert c.n_trees[0] == 5 and c.mean_per_tree[0] == (210 + 180 + 260 + 150 + 160) / 5
