"""Who sees which forecast supply, per role (issue 14; the rule is written in docs/users.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from yuncang.app import create_app
from yuncang.auth import DEMO_PASSWORDS, Principal, seed_demo_users
from yuncang.db import make_pool
from yuncang.settings import Settings
from yuncang.web.access import supply_scope


def _p(role: str, coop: str | None = None, buyer: str | None = None, grower: str | None = None) -> Principal:
    return Principal(1, "u", "", role, grower, buyer, coop, "csrf", "bearer")


def test_supply_scope_rule() -> None:
    assert supply_scope(_p("admin"), None) == (True, None) and supply_scope(_p("admin"), "c2") == (True, "c2")
    m = _p("manager", coop="c1")
    assert supply_scope(m, None) == (True, "c1")  # omitting the parameter is not the county total
    assert supply_scope(m, "c1") == (True, "c1") and supply_scope(m, "c2")[0] is False
    g = _p("grower", grower="G-1")
    assert supply_scope(g, None, "c1") == (True, "c1") and supply_scope(g, "c2", "c1")[0] is False
    assert supply_scope(g, None, None) == (True, None)  # a grower in no cooperative: the county total
    b = _p("buyer", buyer="b1")
    assert supply_scope(b, None) == (True, None) and supply_scope(b, "c1")[0] is False


@pytest.fixture(scope="module")
def client(make_registry_db: Callable[..., str]) -> Iterator[tuple[TestClient, str]]:
    from trading.buyers import seed_buyers

    url = make_registry_db(seed_no=23, orchards=8, area_mu=800.0)
    with psycopg.connect(url) as c:
        seed_buyers(c)
        seed_demo_users(c)
        c.commit()
    pool = make_pool(url, min_size=1, max_size=3, name="scope-tests")
    with TestClient(create_app(Settings(database_url=url), pool)) as tc:
        yield tc, url
    pool.close()


def _h(tc: TestClient, user: str, role: str) -> dict[str, str]:
    r = tc.post("/api/v1/auth/token", json={"username": user, "password": DEMO_PASSWORDS[role]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_supply_per_role_over_http(client: tuple[TestClient, str]) -> None:
    tc, url = client
    with psycopg.connect(url) as c:
        coops = [r[0] for r in c.execute("SELECT cooperative_id FROM cooperatives ORDER BY 1").fetchall()]
        grower, gcoop = c.execute("SELECT grower_id, cooperative_id FROM growers WHERE cooperative_id IS NOT NULL "
                                  "ORDER BY 1 LIMIT 1").fetchone()  # type: ignore[misc]
        buyer = c.execute("SELECT buyer_id FROM buyers ORDER BY 1 LIMIT 1").fetchone()[0]  # type: ignore[index]
    other = next(x for x in coops if x != gcoop)
    url_for = "/api/v1/forecasts/supply"
    hb, hg = _h(tc, buyer, "buyer"), _h(tc, grower, "grower")
    hm, ha = _h(tc, gcoop, "manager"), _h(tc, "admin", "admin")
    assert tc.get(url_for, headers=hb).status_code == 200
    assert tc.get(url_for, params={"cooperative_id": gcoop}, headers=hb).status_code == 403
    assert tc.get(url_for, params={"cooperative_id": gcoop}, headers=hg).status_code == 200
    assert tc.get(url_for, params={"cooperative_id": other}, headers=hg).status_code == 403
    assert tc.get(url_for, headers=hm).status_code == 200
    assert tc.get(url_for, params={"cooperative_id": other}, headers=hm).status_code == 403
    assert tc.get(url_for, params={"cooperative_id": other}, headers=ha).status_code == 200
