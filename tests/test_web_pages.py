# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Pages through the HTTP stack: sign-in form with CSRF, role pages, record form, language switch."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from test_web_fixtures import (  # noqa: F401
    SAMPLE_GROWER,
    TEST_PASSWORD,
    client,
    sample,
    web_app,
    web_db,
)


def _login(app: Any, username: str, password: str) -> TestClient:
    c = TestClient(app)
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def test_login_form_needs_csrf(web_app: Any) -> None:
    c = TestClient(web_app)
    r = c.post(
        "/login", data={"username": "admin", "password": "plum-admin", "csrf_token": "forged"}, follow_redirects=False
    )
    assert r.status_code == 403 and "yc_session" not in r.cookies


def test_pages_redirect_to_login(web_app: Any) -> None:
    c = TestClient(web_app)
    for path in ("/", "/grower", "/buyer", "/manager"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


def test_grower_page_shows_conditions_alert_forecast(web_app: Any, sample: dict[str, Any]) -> None:
    c = _login(web_app, SAMPLE_GROWER, "plum-grower")
    r = c.get("/")
    assert r.status_code == 200 and "我的果园" in r.text
    assert sample["orchard_id"] in r.text
    assert 'data-metric="air_temp_c"' in r.text and "霜冻风险" in r.text and "熏烟" in r.text
    assert 'id="week-chart"' in r.text and 'id="season-chart"' in r.text and 'id="forecast-chart"' in r.text
    assert 'id="harvest-window"' in r.text
    en = c.get("/grower?lang=en")
    assert "My orchard" in en.text and "Frost risk" in en.text
    assert "My orchard" in c.get("/grower").text  # the choice sticks (cookie)


def test_grower_records_observation_and_cannot_post_to_others(
    web_app: Any, web_db: str, sample: dict[str, Any]
) -> None:
    c = _login(web_app, SAMPLE_GROWER, "plum-grower")
    page = c.get("/grower").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = c.post(
        "/grower/records",
        data={
            "orchard_id": sample["orchard_id"],
            "observed_on": "2026-03-20",
            "kind": "flower_density",
            "value": "0.8",
            "note": "盛花",
            "csrf_token": csrf,
        },
    )
    assert r.status_code == 200 and 'id="record-saved"' in r.text and "盛花" in r.text
    with psycopg.connect(web_db) as conn:
        got = conn.execute(
            "SELECT kind, value, recorded_by FROM farm_records WHERE orchard_id = %s AND note = '盛花'",
            (sample["orchard_id"],),
        ).fetchone()
        other = conn.execute(
            "SELECT orchard_id FROM orchards WHERE grower_id <> %s LIMIT 1", (SAMPLE_GROWER,)
        ).fetchone()[0]
    assert got == ("flower_density", 0.8, SAMPLE_GROWER)
    bad = c.post(
        "/grower/records",
        data={
            "orchard_id": sample["orchard_id"],
            "observed_on": "2026-03-20",
            "kind": "flower_density",
            "value": "0.8",
            "csrf_token": "wrong",
        },
    )
    assert bad.status_code == 403
    theirs = c.post(
        "/grower/records",
        data={"orchard_id": other, "observed_on": "2026-03-20", "kind": "note", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert theirs.status_code == 404  # another grower's orchard: as if it did not exist


def test_manager_page_admin_sees_all_orchards(web_app: Any, sample: dict[str, Any]) -> None:
    c = _login(web_app, "admin", "plum-admin")
    r = c.get("/manager")
    assert r.status_code == 200 and "(1546 " in r.text and 'id="overview-chart"' in r.text
    assert 'id="online-rate"' in r.text and 'id="sd-chart"' in r.text
    assert len(r.content) < 1_500_000  # no year of raw readings shipped
    for colour in ("risk", "alerts", "elevation"):
        assert c.get(f"/manager?colour={colour}").status_code == 200


def test_manager_page_cooperative_scope(web_app: Any, web_db: str, sample: dict[str, Any]) -> None:
    with psycopg.connect(web_db) as conn:
        n = conn.execute(
            "SELECT count(*) FROM orchards WHERE cooperative_id = %s", (sample["cooperative_id"],)
        ).fetchone()[0]
    c = _login(web_app, sample["cooperative_id"], "plum-manager")
    r = c.get("/manager")
    assert f"({n} " in r.text and "霜冻风险" in r.text
    assert c.get("/grower", follow_redirects=False).status_code == 200  # their growers' orchards
    assert c.get("/buyer", follow_redirects=False).status_code == 200


def test_buyer_page_and_trace_page(web_app: Any, sample: dict[str, Any]) -> None:
    c = _login(web_app, "buyer-test-a-user", TEST_PASSWORD)
    r = c.get("/")
    assert r.status_code == 200 and 'id="supply-chart"' in r.text
    assert c.get("/manager", follow_redirects=False).status_code == 303
    assert TestClient(web_app).get("/trace?code=NOPE-0000").status_code in (200, 404)


def test_plotly_served_locally(client: TestClient) -> None:
    r = client.get("/static/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000 and b"plotly" in r.content[:2000].lower()


def test_buyer_places_and_cancels_order_through_forms(web_app: Any, web_db: str, sample: dict[str, Any]) -> None:
    c = _login(web_app, "buyer-test-b-user", TEST_PASSWORD)
    page = c.get("/buyer").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    idem = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    week = re.search(r'<select id="week_from" name="week_from"><option>([0-9-]+)</option>', page).group(1)  # type: ignore[union-attr]
    form = {
        "grade": "XL",
        "quantity_kg": "321",
        "week_from": week,
        "week_to": week,
        "destination": "chongqing",
        "price_yuan": "15.20",
        "floor_price_yuan": "",
        "idempotency_key": idem,
        "csrf_token": csrf,
    }
    r1 = c.post("/buyer/orders", data=form)
    r2 = c.post("/buyer/orders", data=form)  # double submit of the same rendered form
    assert 'id="order-placed"' in r1.text and 'id="order-placed"' in r2.text
    with psycopg.connect(web_db) as conn:
        rows = conn.execute(
            "SELECT order_id, price_fen_per_kg, status FROM orders WHERE buyer_id = 'buyer-test-b' "
            "AND idempotency_key = %s",
            (idem,),
        ).fetchall()
    assert len(rows) == 1 and rows[0][1] == 1520 and rows[0][2] == "open"
    c.post(f"/buyer/orders/{rows[0][0]}/cancel", data={"csrf_token": csrf})
    with psycopg.connect(web_db) as conn:
        assert conn.execute("SELECT status FROM orders WHERE order_id = %s", (rows[0][0],)).fetchone()[0] == "cancelled"
    other = _login(web_app, "buyer-test-a-user", TEST_PASSWORD)
    assert rows[0][0] not in other.get("/buyer").text


def test_buyer_downloads_allocation_detail_as_csv_and_xlsx(web_app: Any) -> None:
    import io

    from openpyxl import load_workbook

    c = _login(web_app, "buyer-test-a-user", TEST_PASSWORD)
    csv_r = c.get("/buyer/allocations.csv")
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    head = csv_r.content.decode("utf-8-sig").splitlines()[0]
    assert head.split(",")[:2] == ["订单号", "果园"]
    x = c.get("/buyer/allocations.xlsx")
    assert x.status_code == 200 and "attachment" in x.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws.title == "分配结果" and [c.value for c in ws[1]][:2] == ["订单号", "果园"]
    assert ws.max_row == len(csv_r.content.decode("utf-8-sig").splitlines())
    assert c.get("/buyer/allocations.pdf").status_code == 404
