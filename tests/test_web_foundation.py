"""App factory: health reports storage path, orchards API paginates, bad input is 4xx, metrics exposed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from yuncang.app import create_app
from yuncang.db import make_pool
from yuncang.settings import Settings


@pytest.fixture(scope="module")
def client(db_url: str, mqtt_url: str) -> Iterator[TestClient]:
    pool = make_pool(db_url, max_size=4)
    app = create_app(Settings(database_url=db_url, mqtt_url=mqtt_url), pool, mqtt_url=mqtt_url)
    with pool.connection() as conn:
        from yuncang.auth import create_user

        create_user(conn, username="foundation-admin", password="foundation-lantern-58", role="admin")
    with TestClient(app) as c:
        tok = c.post("/api/v1/auth/token", json={"username": "foundation-admin", "password": "foundation-lantern-58"})
        c.headers["Authorization"] = f"Bearer {tok.json()['token']}"
        yield c
    pool.close()


def test_health_reports_database_broker_and_storage_path(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["database"]["ok"] and body["database"]["orchards"] == 1546
    assert body["database"]["storage_path"] in ("timescaledb", "postgresql")
    assert body["broker"]["ok"]


def test_orchards_paginate_and_reject_bad_paging(client: TestClient) -> None:
    page = client.get("/api/v1/orchards", params={"limit": 10, "offset": 1540}).json()
    assert page["total"] == 1546 and len(page["items"]) == 6 and page["items"][0]["orchard_id"] == "WS-1541"
    r = client.get("/api/v1/orchards", params={"limit": 0})
    assert r.status_code == 422 and r.json()["message"]
    assert client.get("/api/v1/orchards/NOPE").status_code == 404
    anonymous = client.get("/api/v1/orchards", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_metrics_count_requests(client: TestClient) -> None:
    client.get("/api/v1/orchards")
    text = client.get("/metrics").text
    assert 'yuncang_http_request_seconds_count{method="GET",route="/api/v1/orchards",status="200"}' in text
