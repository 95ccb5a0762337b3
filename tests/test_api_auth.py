# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Sign-in, tokens, throttling and role boundaries through the HTTP API."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient
from test_web_fixtures import TEST_PASSWORD, bearer, client, token_for, web_app, web_db  # noqa: F401


def test_token_me_and_logout(client: TestClient) -> None:
    tok = token_for(client, "G-00001", role="grower")
    me = client.get("/api/v1/me", headers=bearer(tok)).json()
    assert me["role"] == "grower" and me["grower_id"] == "G-00001" and me["home"] == "/grower"
    assert client.post("/api/v1/auth/logout", headers=bearer(tok)).status_code == 204
    from yuncang import auth as access

    access._CACHE.clear()
    assert client.get("/api/v1/me", headers=bearer(tok)).status_code == 401


def test_wrong_password_is_401_and_not_stored_in_clear(client: TestClient, web_db: str) -> None:
    r = client.post("/api/v1/auth/token", json={"username": "G-00002", "password": "nope-nope"})
    assert r.status_code == 401
    with psycopg.connect(web_db) as conn:
        h = conn.execute("SELECT password_hash FROM users WHERE username = 'G-00002'").fetchone()[0]
        assert h.startswith("$argon2id$")
        assert conn.execute("SELECT count(*) FROM auth_tokens WHERE token_sha256 IS NULL").fetchone()[0] == 0


def test_login_rate_limit_per_account(client: TestClient) -> None:
    for _ in range(5):
        assert (
            client.post("/api/v1/auth/token", json={"username": "G-00003", "password": "bad-guess"}).status_code == 401
        )
    r = client.post("/api/v1/auth/token", json={"username": "G-00003", "password": "plum-grower"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # another account from the same address is still allowed (per-IP limit is higher)
    assert client.post("/api/v1/auth/token", json={"username": "G-00004", "password": "plum-grower"}).status_code == 200


def test_unauthenticated_is_401(client: TestClient) -> None:
    for path in ("/api/v1/orchards", "/api/v1/alerts", "/api/v1/orchards/WS-0001/conditions", "/api/v1/me"):
        assert client.get(path).status_code == 401, path


def test_grower_sees_only_own_orchard(client: TestClient, web_db: str) -> None:
    with psycopg.connect(web_db) as conn:
        own = conn.execute("SELECT orchard_id FROM orchards WHERE grower_id = 'G-00010'").fetchone()[0]
        other = conn.execute("SELECT orchard_id FROM orchards WHERE grower_id <> 'G-00010' LIMIT 1").fetchone()[0]
    h = bearer(token_for(client, "G-00010", role="grower"))
    page = client.get("/api/v1/orchards", headers=h).json()
    assert page["total"] >= 1 and {o["grower_id"] for o in page["items"]} == {"G-00010"}
    assert client.get(f"/api/v1/orchards/{own}", headers=h).status_code == 200
    assert client.get(f"/api/v1/orchards/{own}/conditions", headers=h).status_code == 200
    for path in (
        f"/api/v1/orchards/{other}",
        f"/api/v1/orchards/{other}/conditions",
        f"/api/v1/orchards/{other}/series",
        f"/api/v1/orchards/{other}/records",
        f"/api/v1/alerts?orchard_id={other}",
    ):
        assert client.get(path, headers=h).status_code == 403, path
    r = client.post(
        f"/api/v1/orchards/{other}/records",
        headers=h,
        json={"observed_on": "2026-01-02", "kind": "note", "note": "not mine"},
    )
    assert r.status_code in (403, 422), r.text
    assert client.get("/api/v1/orchards/WS-9999", headers=h).status_code == 404


def test_manager_sees_own_cooperative_only(client: TestClient, web_db: str) -> None:
    with psycopg.connect(web_db) as conn:
        coop, n = conn.execute(
            "SELECT cooperative_id, count(*) FROM orchards GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        other = conn.execute("SELECT orchard_id FROM orchards WHERE cooperative_id <> %s LIMIT 1", (coop,)).fetchone()[
            0
        ]
    h = bearer(token_for(client, coop, role="manager"))
    page = client.get("/api/v1/orchards?limit=500", headers=h).json()
    assert page["total"] == n and {o["cooperative_id"] for o in page["items"]} == {coop}
    assert client.get(f"/api/v1/orchards/{other}", headers=h).status_code == 403


def test_admin_sees_all_and_buyer_sees_no_orchards(client: TestClient) -> None:
    h = bearer(token_for(client, "admin", role="admin"))
    assert client.get("/api/v1/orchards?limit=1", headers=h).json()["total"] == 1546
    hb = bearer(token_for(client, "buyer-test-a-user", TEST_PASSWORD))
    assert client.get("/api/v1/orchards", headers=hb).status_code == 403
    assert client.get("/api/v1/orchards/WS-0001/conditions", headers=hb).status_code == 403


def test_bad_input_is_4xx_with_message(client: TestClient) -> None:
    h = bearer(token_for(client, "admin", role="admin"))
    for path in (
        "/api/v1/orchards?limit=0",
        "/api/v1/orchards?limit=abc",
        "/api/v1/orchards/WS-0001/series?metric=nope",
        "/api/v1/orchards/WS-0001/series?start=yesterday",
        "/api/v1/orchards/WS-0001/series?days=-1",
    ):
        r = client.get(path, headers=h)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert "detail" in r.json()
