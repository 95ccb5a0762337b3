# ruff: noqa: F811  (session fixtures imported from test_web_fixtures / test_browser_roles)
"""Headless Chromium on the consumer's page of a lot, as a shopper would open it from the label's QR
code: at phone width (390 px) and desktop width, the page reads in Chinese with no sideways scrolling,
shows origin, grade, harvest date and the cold-chain block, and a complaint sent from the form is
acknowledged once."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from test_api_traceability import _chain, _gtin_of, _mgr
from test_browser_roles import ARTIFACTS, browser, live_url  # noqa: F401
from test_web_fixtures import client, sample, web_app, web_db  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("width,height", [(390, 844), (1366, 900)])
def test_consumer_page_from_the_qr_code(browser: Any, live_url: str, client: Any, web_db: str, sample: Any,
                                        width: int, height: int) -> None:
    day = sample["end"].date().isoformat()                    # the sample orchard has sensor data up to then
    c = _chain(client, _mgr(client, sample["cooperative_id"]), sample["orchard_id"], "buyer-test-a", day)
    path = "/01/" + _gtin_of(web_db, c["shipment_lot"]) + "/10/" + c["shipment_lot"]
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = ctx.new_page()
    resp = page.goto(live_url + path)
    assert resp is not None and resp.status == 200
    h1 = page.inner_text("h1")
    assert "巫山脆李" in h1 and "一级果" in h1
    body = page.inner_text("main")
    assert "重庆市巫山县" in body and day in body and "冷链" in body
    assert page.locator("svg[aria-label='season chart'] polyline").count() == 2   # the season's highs and lows
    with psycopg.connect(web_db) as conn:
        grower = conn.execute("SELECT g.name FROM orchards o JOIN growers g USING (grower_id) "
                              "WHERE o.orchard_id = %s", (sample["orchard_id"],)).fetchone()[0]
    assert grower not in body
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width   # no sideways scrolling
    page.screenshot(path=str(ARTIFACTS / f"lot-{width}.png"), full_page=True)
    page.select_option("#category", "quality")
    page.fill("#text", "口感偏酸 (browser test)")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    assert "已收到您的投诉" in page.inner_text("#complaint")
    ctx.close()
