"""Dates and numbers are checked in the domain, so the forms and the API answer 4xx with a message, never
5xx (issue 14, low findings): a lot dated 9999-12-31, a price of Infinity or 1e999999 yuan, order weeks in
year 1, 1900 or 9999, a NaN/Infinity fruit set."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from datetime import date

import psycopg
import pytest
from fastapi.testclient import TestClient

from orchard_models.observation_rules import InvalidRecord, check_farm_record
from trading.errors import Invalid
from trading.limits import check_trade_date, yuan_to_fen
from yuncang.app import create_app
from yuncang.auth import DEMO_PASSWORDS, create_user, seed_demo_users
from yuncang.db import make_pool
from yuncang.settings import Settings

BUYER_PW = "lantern-quince-orchard-77"


@pytest.fixture(scope="module")
def limits_db(make_registry_db: Callable[..., str]) -> str:
    from trading.buyers import seed_buyers
    from trading.warehouse import seed_warehouse

    url = make_registry_db(seed_no=11, orchards=12, area_mu=1200.0)
    with psycopg.connect(url) as c:
        seed_buyers(c)
        seed_warehouse(c)
        seed_demo_users(c)
        buyer = c.execute("SELECT buyer_id FROM buyers ORDER BY buyer_id LIMIT 1").fetchone()[0]  # type: ignore[index]
        create_user(c, username="limits-buyer", password=BUYER_PW, role="buyer", buyer_id=buyer)
        c.commit()
    return url


@pytest.fixture(scope="module")
def client(limits_db: str) -> Iterator[TestClient]:
    pool = make_pool(limits_db, min_size=1, max_size=3, name="limits-tests")
    with TestClient(create_app(Settings(database_url=limits_db), pool), follow_redirects=False) as c:
        yield c
    pool.close()


def _bearer(client: TestClient, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _form_session(client: TestClient, url: str, username: str, password: str) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    client.cookies.clear()
    client.get("/login")
    csrf = client.cookies.get("yc_login_csrf")
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})
    assert r.status_code == 303, r.text
    sha = hashlib.sha256(client.cookies.get("yc_session", "").encode()).digest()
    with psycopg.connect(url) as c:
        return str(c.execute("SELECT csrf_token FROM auth_tokens WHERE token_sha256 = %s", (sha,)).fetchone()[0])  # type: ignore[index]


def test_a_lot_dated_9999_is_refused(client: TestClient, limits_db: str) -> None:
    with psycopg.connect(limits_db) as c:
        room = c.execute("SELECT cold_room_id FROM cold_rooms ORDER BY 1 LIMIT 1").fetchone()[0]  # type: ignore[index]
        orchard = c.execute("SELECT orchard_id FROM orchards ORDER BY 1 LIMIT 1").fetchone()[0]  # type: ignore[index]
    admin = _bearer(client, "admin", DEMO_PASSWORDS["admin"])
    for day in ("9999-12-31", "0001-01-01", "1900-07-20"):
        r = client.post("/api/v1/warehouse/lots", headers=admin,
                        json={"orchard_id": orchard, "harvested_on": day, "cold_room_id": room,
                              "kg_by_grade": {"L": "100"}})
        assert r.status_code == 422, (day, r.status_code, r.text)
        assert "harvested_on" in r.text
    ok = client.post("/api/v1/warehouse/lots", headers=admin, json={"orchard_id": orchard, "harvested_on": "2026-07-28",
                                                          "cold_room_id": room, "kg_by_grade": {"L": "100"}})
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize("week_from", ["0001-01-01", "1900-01-01", "9999-12-27"])
def test_order_weeks_outside_the_seasons_are_refused(client: TestClient, week_from: str) -> None:
    assert date.fromisoformat(week_from).isoweekday() == 1
    r = client.post("/api/v1/orders", headers={**_bearer(client, "limits-buyer", BUYER_PW),
                                                "Idempotency-Key": f"limits-{week_from}"},
                    json={"grade": "L", "quantity_kg": "500", "week_from": week_from, "week_to": week_from,
                          "destination": "yantai", "price_fen_per_kg": 1200})
    assert r.status_code == 422, r.text
    assert "week_from" in r.text and "season" in r.text


@pytest.mark.parametrize("price", ["Infinity", "1e999999", "NaN", "-1", "12.345", "1e5"])
def test_the_buyer_form_refuses_impossible_prices(client: TestClient, limits_db: str, price: str) -> None:
    csrf = _form_session(client, limits_db, "limits-buyer", BUYER_PW)
    r = client.post("/buyer/orders", data={"grade": "L", "quantity_kg": "500", "week_from": "2027-07-19",
                                           "week_to": "2027-07-26", "destination": "yantai", "price_yuan": price,
                                           "idempotency_key": f"form-{price}", "csrf_token": csrf})
    assert r.status_code == 303 and "error=" in r.headers["location"], (r.status_code, r.headers)
    assert "price_yuan" in r.headers["location"]
    client.cookies.clear()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_the_grower_form_refuses_non_finite_fruit_set(client: TestClient, limits_db: str, value: str) -> None:
    with psycopg.connect(limits_db) as c:
        orchard = c.execute("SELECT orchard_id FROM orchards WHERE grower_id = 'G-00001'").fetchone()[0]  # type: ignore[index]
    csrf = _form_session(client, limits_db, "G-00001", DEMO_PASSWORDS["grower"])
    r = client.post("/grower/records", data={"orchard_id": orchard, "observed_on": date.today().isoformat(),
                                             "kind": "fruit_set", "value": value, "csrf_token": csrf})
    assert r.status_code == 303 and "error=" in r.headers["location"], r.headers
    with psycopg.connect(limits_db) as c:
        assert c.execute("SELECT count(*) FROM farm_records WHERE value = 'NaN'::float8 "
                         "OR value IN ('Infinity'::float8, '-Infinity'::float8)").fetchone() == (0,)
    client.cookies.clear()


def test_domain_rules_directly() -> None:
    today = date(2026, 12, 2)
    assert check_trade_date(date(2031, 7, 1), "d", today) == date(2031, 7, 1)
    with pytest.raises(Invalid):
        check_trade_date(date(2032, 7, 1), "d", today)
    assert yuan_to_fen("12.5", "p") == 1250 and yuan_to_fen(" 0 ", "p") == 0
    for bad in ("Infinity", "-Infinity", "NaN", "sNaN", "1e999999", "", "abc", "1" * 30):
        with pytest.raises(Invalid):
            yuan_to_fen(bad, "p")
    for v in (math.nan, math.inf, -1.0, 1.5):
        with pytest.raises(InvalidRecord):
            check_farm_record("flower_density", v, today, today)
    check_farm_record("fruit_set", 12.0, today, today)
    with pytest.raises(InvalidRecord):
        check_farm_record("fruit_set", None, today, today)


def test_the_fruit_count_form_without_script(client: TestClient, limits_db: str) -> None:
    """Issue 16: the grower page's sample-tree count form posted without script (the page's script sends the
    same body to the API through its outbox): empty rows skipped, the page's client id makes a re-sent form
    one count, a re-sent form with other numbers and bad numbers get a message on the page, never a 5xx."""
    with psycopg.connect(limits_db) as c:
        orchard = c.execute("SELECT orchard_id FROM orchards WHERE grower_id = 'G-00001'").fetchone()[0]  # type: ignore[index]
    csrf = _form_session(client, limits_db, "G-00001", DEMO_PASSWORDS["grower"])
    form = {"orchard_id": orchard, "client_id": "page-form-1", "counted_on": date.today().isoformat(),
            "tree_id": ["A1", "A2", "A3"], "fruit": ["150", "", "170"], "mean_fruit_g": "", "csrf_token": csrf}
    for _ in range(2):   # sent twice (a double tap, a reload that re-posts): one count
        r = client.post("/grower/fruit-counts", data=form)
        assert r.status_code == 303 and r.headers["location"].endswith("&counted=1#fruit-counts"), r.headers
    with psycopg.connect(limits_db) as c:
        assert c.execute("SELECT tree_ids, fruit_per_tree, mean_fruit_g FROM fruit_counts WHERE client_id = %s",
                         ("page-form-1",)).fetchall() == [(["A1", "A3"], [150.0, 170.0], None)]
    page = client.get(f"/grower?orchard={orchard}&counted=1")
    assert "2 棵树,平均每棵 160 个果" in page.text
    for bad, why in ((dict(form, fruit=["150", "", "171"]), "count_error="),     # same id, other numbers
                     (dict(form, client_id="page-form-2", fruit=["", "", ""]), "count_error="),  # no count
                     (dict(form, client_id="page-form-3", fruit=["-5", "", "1"]), "count_error="),
                     (dict(form, client_id="page-form-4", fruit=["nan", "", "1"]), "count_error="),
                     (dict(form, client_id="page-form-5", mean_fruit_g="900"), "count_error=")):
        r = client.post("/grower/fruit-counts", data=bad)
        assert r.status_code == 303 and why in r.headers["location"], (bad, r.status_code, r.headers)
    with psycopg.connect(limits_db) as c:
        assert c.execute("SELECT count(*) FROM fruit_counts WHERE orchard_id = %s", (orchard,)).fetchone() == (1,)
    client.cookies.clear()
