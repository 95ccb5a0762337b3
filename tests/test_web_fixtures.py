"""Fixtures for the web tests (API, pages, browser): one migrated, seeded database with demo users.

Imported by the ``test_api_*``, ``test_web_*`` and ``test_browser_*`` modules; the database is made
once per test session and dropped at its end (``make_database``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from registry.seed import SeedParams, seed
from yuncang.app import create_app
from yuncang.auth import DEMO_PASSWORDS, create_user, seed_demo_users
from yuncang.db import make_pool
from yuncang.migrations import migrate
from yuncang.settings import Settings

#: Two test buyers with their own accounts (trading's buyers table, when present, gets rows too).
TEST_BUYERS = ("buyer-test-a", "buyer-test-b")
TEST_PASSWORD = "correct horse battery"


def _ensure_buyers(conn: psycopg.Connection) -> None:
    """Trading buyers for the two test accounts, through trading's own API when it is installed."""
    try:
        from trading import buyers as tb  # type: ignore[import-not-found]
    except ImportError:
        return
    if hasattr(tb, "ensure_buyer"):
        for b in TEST_BUYERS:
            tb.ensure_buyer(conn, buyer_id=b, name=b)
    elif hasattr(tb, "seed_buyers"):
        tb.seed_buyers(conn)


@pytest.fixture(scope="session")
def web_db(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams())
        _ensure_buyers(conn)
        seed_demo_users(conn, buyer_ids=list(TEST_BUYERS))
        for b in TEST_BUYERS:
            create_user(conn, username=f"{b}-user", password=TEST_PASSWORD, role="buyer", buyer_id=b)
        conn.commit()
    return url


@pytest.fixture(scope="session")
def web_app(web_db: str) -> Iterator[Any]:
    pool = make_pool(web_db, min_size=1, max_size=6, name="web-tests")
    app = create_app(Settings(database_url=web_db), pool)
    yield app
    pool.close()


@pytest.fixture(scope="session")
def client(web_app: Any) -> Iterator[TestClient]:
    with TestClient(web_app) as c:
        yield c


def token_for(client: TestClient, username: str, password: str | None = None, role: str | None = None) -> str:
    pw = password or DEMO_PASSWORDS[role or "grower"]
    r = client.post("/api/v1/auth/token", json={"username": username, "password": pw})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
