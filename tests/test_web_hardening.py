"""The web side against hostile clients (issue 14): bounded request bodies, safe embedded JSON, security
headers, what /metrics and /health show."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from yuncang.app import create_app
from yuncang.auth import DEMO_PASSWORDS, seed_demo_users
from yuncang.db import make_pool
from yuncang.settings import Settings


@pytest.fixture(scope="module")
def hard_db(make_registry_db: Callable[..., str]) -> str:
    url = make_registry_db(seed_no=13, orchards=6, area_mu=600.0)
    with psycopg.connect(url) as c:
        seed_demo_users(c)
        c.commit()
    return url


@pytest.fixture(scope="module")
def client(hard_db: str) -> Iterator[TestClient]:
    pool = make_pool(hard_db, min_size=1, max_size=3, name="hardening-tests")
    with TestClient(create_app(Settings(database_url=hard_db), pool), follow_redirects=False) as c:
        yield c
    pool.close()


def test_a_huge_sign_in_body_is_refused_before_it_is_read(client: TestClient) -> None:
    big = b'{"username": "admin", "password": "' + b"x" * (5 << 20) + b'"}'
    t0 = time.perf_counter()
    r = client.post("/api/v1/auth/token", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "at most 4096 bytes" in r.text
    assert time.perf_counter() - t0 < 2.0

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"username": "admin", "password": "'
        for _ in range(64):
            yield b"y" * 65536
        yield b'"}'

    r = client.post("/api/v1/auth/token", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/login", content=b"username=admin&password=" + b"z" * 10000,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    # other routes get the general limit (1 MiB): a 2 MiB order body is refused too, before authentication
    r = client.post("/api/v1/orders", content=b"[" + b"1," * (1 << 20) + b"1]",
                    headers={"Content-Type": "application/json", "Idempotency-Key": "big-body-1"})
    assert r.status_code == 413
    ok = client.post("/api/v1/auth/token", json={"username": "admin", "password": DEMO_PASSWORDS["admin"]})
    assert ok.status_code == 200


HOSTILE = "冉家果园<!--<script>&</script>\u2028x"


def test_embedded_json_survives_a_hostile_orchard_name(client: TestClient, hard_db: str) -> None:
    import json
    import re

    from yuncang.web.json_embed import json_for_html

    text = json_for_html({"name": HOSTILE})
    assert not set("<>&\u2028\u2029") & set(text) and json.loads(text) == {"name": HOSTILE}
    with psycopg.connect(hard_db) as c:
        oid = c.execute("SELECT orchard_id FROM orchards ORDER BY 1 LIMIT 1").fetchone()[0]  # type: ignore[index]
        c.execute("UPDATE orchards SET name = %s WHERE orchard_id = %s", (HOSTILE, oid))
        c.commit()
    tok = client.post("/api/v1/auth/token", json={"username": "admin", "password": DEMO_PASSWORDS["admin"]})
    page = client.get("/manager", headers={"Authorization": f"Bearer {tok.json()['token']}"})
    assert page.status_code == 200
    blocks = re.findall(r'<script type="application/json" id="([^"]+)-data">(.*?)</script>', page.text, re.S)
    assert blocks, "the manager page embeds its charts"
    for _, body in blocks:
        assert "<" not in body and ">" not in body
        json.loads(body)  # still JSON
    assert any(HOSTILE in json.dumps(json.loads(b), ensure_ascii=False) for _, b in blocks)
    assert page.text.rstrip().endswith("</html>")  # the rest of the page is still there


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/login", "/api/v1/health", "/trace", "/static/plots.js"):
        r = client.get(path)
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert "script-src 'self';" in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in h  # plain HTTP configured: no HSTS, no Secure cookies
    assert "Secure" not in client.get("/login").headers["set-cookie"]
    # not guessed from a header anyone can send
    r = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in r.headers["set-cookie"] and "strict-transport-security" not in r.headers
    assert "<script>" not in client.get("/login").text  # no inline scripts for the CSP to forbid


def test_https_from_configuration_gives_hsts_and_secure_cookies(hard_db: str) -> None:
    pool = make_pool(hard_db, min_size=1, max_size=2, name="hardening-https")
    app = create_app(Settings(database_url=hard_db, public_url="https://yuncang.example.cn"), pool)
    try:  # (the client speaks https only so that it sends the Secure cookie back)
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
            r = c.get("/login")
            assert r.headers["strict-transport-security"].startswith("max-age=31536000")
            assert "Secure" in r.headers["set-cookie"]
            csrf = c.cookies.get("yc_login_csrf")
            r = c.post("/login", data={"username": "admin", "password": DEMO_PASSWORDS["admin"], "csrf_token": csrf})
            assert r.status_code == 303 and "yc_session=" in r.headers["set-cookie"]
            assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    finally:
        pool.close()


def test_metrics_are_not_public_and_health_hides_the_broker(client: TestClient, hard_db: str) -> None:
    assert client.get("/metrics").status_code == 404  # the test client is not a configured scraper address
    grower = client.post("/api/v1/auth/token", json={"username": "G-00001", "password": DEMO_PASSWORDS["grower"]})
    assert client.get("/metrics", headers={"Authorization": f"Bearer {grower.json()['token']}"}).status_code == 404
    admin = client.post("/api/v1/auth/token", json={"username": "admin", "password": DEMO_PASSWORDS["admin"]})
    r = client.get("/metrics", headers={"Authorization": f"Bearer {admin.json()['token']}"})
    assert r.status_code == 200 and "yuncang_http_request_seconds" in r.text
    pool = make_pool(hard_db, min_size=1, max_size=2, name="hardening-health")
    app = create_app(Settings(database_url=hard_db, mqtt_url="mqtt://u:secret@127.0.0.1:1"), pool,
                     mqtt_url="mqtt://u:secret@127.0.0.1:1")
    try:
        with TestClient(app) as c:
            body = c.get("/api/v1/health").text
        assert "1883" not in body and '"port"' not in body and "127.0.0.1" not in body and "secret" not in body
    finally:
        pool.close()


def test_other_peoples_orchards_look_like_missing_ones(client: TestClient, hard_db: str) -> None:
    with psycopg.connect(hard_db) as c:
        other = c.execute("SELECT orchard_id FROM orchards WHERE grower_id <> 'G-00001' LIMIT 1").fetchone()[0]  # type: ignore[index]
    tok = client.post("/api/v1/auth/token", json={"username": "G-00001", "password": DEMO_PASSWORDS["grower"]})
    h = {"Authorization": f"Bearer {tok.json()['token']}"}
    for suffix in ("", "/conditions", "/series", "/records"):
        mine_not = client.get(f"/api/v1/orchards/{other}{suffix}", headers=h)
        missing = client.get(f"/api/v1/orchards/WS-9999{suffix}", headers=h)
        assert mine_not.status_code == missing.status_code == 404, suffix
        assert mine_not.json()["detail"].replace(other, "X") == missing.json()["detail"].replace("WS-9999", "X")


def test_compose_serves_https_through_a_tls_proxy_only() -> None:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    web, proxy = services["web"], services["proxy"]
    assert "ports" not in web  # plain HTTP only on the internal network
    assert "443:443" in proxy["ports"] and proxy["image"].startswith("caddy:")
    assert web["environment"]["YUNCANG_PUBLIC_URL"].startswith("https://")  # Secure cookies + HSTS
    assert web["environment"]["YUNCANG_TRUSTED_PROXIES"] == proxy["networks"]["default"]["ipv4_address"]
    caddy = (root / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddy and "respond @metrics 404" in caddy
    assert Settings(trusted_proxies=web["environment"]["YUNCANG_TRUSTED_PROXIES"],
                    metrics_allow=web["environment"]["YUNCANG_METRICS_ALLOW"])  # both parse
    assert "COPY dashboard" not in (root / "deploy" / "Dockerfile").read_text()  # the package is gone
