"""Headless Chromium on the issue-17 pages: a buyer reserves and buys stock on a phone, hall staff sell
from the same stock and hand over on the counter page (tablet/desktop width) at two sites, a manager
opens a glut offer and an institutional buyer takes part of it, and the papers open.

Chromium is Debian's (``/usr/bin/chromium`` or ``$YUNCANG_CHROMIUM``): missing, the tests FAIL (CI
installs it). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from pypdf import PdfReader

from trading import spot, warehouse
from yuncang.auth import create_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PW = "browser-spot-password"
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROME = os.environ.get("YUNCANG_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}


@pytest.fixture(scope="module")
def world(spot_db: str, spot_forecast: date, serve_spot: str) -> Iterator[dict[str, Any]]:
    with psycopg.connect(spot_db, autocommit=True) as c:
        coop = c.execute("SELECT cooperative_id FROM cooperatives ORDER BY 1 LIMIT 1").fetchone()[0]
        grower = c.execute("SELECT grower_id FROM growers ORDER BY 1 LIMIT 1").fetchone()[0]
        create_user(c, username="b-manager", password=PW, role="manager", cooperative_id=coop)
        create_user(c, username="b-clerk", password=PW, role="grower", grower_id=grower)
        for b in ("yt-zone-1", "inst-cq-union"):
            create_user(c, username=b, password=PW, role="buyer", buyer_id=b)
        orchard = c.execute("SELECT orchard_id FROM orchards ORDER BY 1 LIMIT 1").fetchone()[0]
        lots = {}
        for site, room in (("WH-WUSHAN", "CR-03"), ("WH-QUCHI", "QUCHI-CR2")):
            spot.grant_hall_staff(c, username="b-clerk", warehouse_id=site, granted_by="b-manager")
            spot.set_list_price(c, warehouse_id=site, grade="L", price_fen_per_kg=1000, set_by="b-manager")
            lots[site] = warehouse.receive_lot(c, orchard_id=orchard, harvested_on=spot_forecast + timedelta(weeks=2),
                                               kg_by_grade={"L": 500}, cold_room_id=room).lot_id
    yield {"url": serve_spot, "db": spot_db, "lots": lots, "w0": spot_forecast}


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    if not (Path(CHROME).exists() or shutil.which(CHROME)):
        pytest.fail(f"Chromium not found at {CHROME}: apt-get install chromium, or set YUNCANG_CHROMIUM")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROME, headless=True,
                               args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield b
        b.close()


def _as(chrome: Any, world: dict[str, Any], user: str, viewport: dict[str, int]) -> Any:
    page = chrome.new_context(viewport=viewport, locale="zh-CN").new_page()
    page.goto(world["url"] + "/login")
    page.fill("#username", user)
    page.fill("#password", PW)
    page.click("#sign-in")
    page.wait_for_load_state("networkidle")
    return page


def _go(page: Any, world: dict[str, Any], path: str) -> None:
    page.goto(world["url"] + path)
    page.wait_for_load_state("networkidle")


def _submit(page: Any, button: Any) -> None:
    with page.expect_navigation():
        button.click()
    page.wait_for_load_state("networkidle")


def test_buyer_reserves_and_buys_stock_on_a_phone(chrome: Any, world: dict[str, Any]) -> None:
    page = _as(chrome, world, "yt-zone-1", PHONE)
    _go(page, world, "/spot")
    row = page.locator(f"tr.stock-row[data-lot='{world['lots']['WH-WUSHAN']}'][data-grade='L']")
    assert row.locator(".avail").inner_text() == "500.0"
    row.locator(".reserve-kg").fill("20")
    _submit(page, row.locator("button.reserve"))
    assert page.is_visible("#spot-ok")
    sale = page.locator("tr.my-sale").first
    assert sale.get_attribute("data-status") == "held"
    _submit(page, sale.locator("button.confirm"))
    sale = page.locator("tr.my-sale").first
    assert sale.get_attribute("data-status") == "confirmed"
    assert page.locator(f"tr.stock-row[data-lot='{world['lots']['WH-WUSHAN']}'] .avail").inner_text() == "480.0"
    page.screenshot(path=str(SHOTS / "spot-buyer-phone.png"), full_page=True)
    sid = sale.get_attribute("data-sale")
    pdf = page.request.get(world["url"] + f"/api/v1/papers/sales/{sid}.pdf")
    assert pdf.status == 200
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.body())).pages)
    assert sid in text and "送货单" in text
    page.context.close()


def test_hall_staff_sell_from_the_same_stock_and_hand_over_at_two_sites(chrome: Any, world: dict[str, Any]) -> None:
    page = _as(chrome, world, "b-clerk", DESK)
    lot_a, lot_b = world["lots"]["WH-WUSHAN"], world["lots"]["WH-QUCHI"]
    _go(page, world, "/hall?warehouse_id=WH-WUSHAN")
    page.select_option("#item", f"{lot_a}|L")
    page.fill("#hall-kg", "10")
    page.fill("#walk-in", "张大姐")
    _submit(page, page.locator("#hall-sell"))
    assert page.is_visible("#hall-ok")
    assert page.locator(f"tr.hall-stock-row[data-lot='{lot_a}'] .avail").inner_text() == "470.0"
    online = page.locator("tr.hall-sale[data-status='confirmed']").first     # the buyer's confirmed sale
    _submit(page, online.locator("button.hand-over"))
    assert page.locator("tr.hall-sale[data-status='confirmed']").count() == 0
    assert page.locator("tr.hall-sale[data-status='delivered']").count() == 2
    assert "WS" in page.locator("tr.hall-sale").first.locator(".codes").inner_text()
    page.screenshot(path=str(SHOTS / "hall-counter-desktop.png"), full_page=True)
    _go(page, world, "/hall?warehouse_id=WH-QUCHI")
    page.select_option("#item", f"{lot_b}|L")
    page.fill("#hall-kg", "501")                                             # more than the lot has
    _submit(page, page.locator("#hall-sell"))
    assert page.is_visible("#hall-error")
    page.fill("#hall-kg", "25")
    _submit(page, page.locator("#hall-sell"))
    assert page.is_visible("#hall-ok")
    sid = page.locator("tr.hall-sale").first.get_attribute("data-sale")
    xlsx = page.request.get(world["url"] + f"/api/v1/papers/sales/{sid}.xlsx")
    assert xlsx.status == 200
    cells = [v for r in openpyxl.load_workbook(io.BytesIO(xlsx.body())).active.iter_rows(values_only=True) for v in r]
    assert sid in cells and "现货销售单" in str(cells[0])
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "hall-counter-phone.png"), full_page=True)
    page.context.close()
    with psycopg.connect(world["db"]) as c:
        left = dict(c.execute("SELECT warehouse_id, count(*) FROM spot_sales WHERE status = 'delivered' "
                              "GROUP BY 1").fetchall())
    assert left.get("WH-WUSHAN", 0) >= 2 and left.get("WH-QUCHI", 0) >= 1        # sales left two sites


def test_manager_opens_a_glut_offer_and_a_partner_takes_part(chrome: Any, world: dict[str, Any]) -> None:
    week = (world["w0"] + timedelta(weeks=3)).isoformat()
    mgr = _as(chrome, world, "b-manager", DESK)
    _go(mgr, world, "/glut")
    row = mgr.locator(f"tr.warning-row[data-week='{week}'][data-grade='L']")
    before = float(row.locator(".surplus").inner_text().replace(",", ""))
    assert before > 50_000
    row.locator(".floor").fill("6")
    row.locator(".offer-kg").fill("50000")
    _submit(mgr, row.locator("button.open-offer"))
    assert mgr.is_visible("#glut-ok") and mgr.locator("tr.offer-row").count() == 1
    partner = _as(chrome, world, "inst-cq-union", PHONE)
    _go(partner, world, "/spot")
    offer = partner.locator("tr.glut-offer").first
    offer.locator(".glut-kg").fill("20000")
    _submit(partner, offer.locator("button.glut-accept"))
    assert partner.is_visible("#spot-ok")
    assert partner.locator("tr.glut-offer .remaining").first.inner_text() == "30,000"
    partner.screenshot(path=str(SHOTS / "glut-partner-phone.png"), full_page=True)
    _go(mgr, world, "/glut")
    assert mgr.locator("tr.offer-row .accepted").first.inner_text() == "20,000"
    assert mgr.locator("tr.partner-row[data-buyer='inst-cq-union'] .glut-kg").inner_text() == "20,000"
    after = float(mgr.locator(f"tr.warning-row[data-week='{week}'][data-grade='L'] .surplus").inner_text()
                  .replace(",", ""))
    assert after < before                                                    # the warning updated
    mgr.screenshot(path=str(SHOTS / "glut-manager-desktop.png"), full_page=True)
    mgr.context.close()
    partner.context.close()
