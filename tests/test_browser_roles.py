# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Headless Chromium (Debian ``chromium``, driven by Playwright, no browser download): sign in as each
role, see the right page, record an observation, place an order, and screenshot every page into
``test-artifacts/``.

If ``/usr/bin/chromium`` (or ``$YUNCANG_CHROMIUM``) is missing these tests FAIL with a message: CI
installs it, so a skip would hide a broken setup.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from test_web_fixtures import SAMPLE_GROWER, TEST_PASSWORD, sample, web_app, web_db  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("YUNCANG_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_url(web_app: Any, sample: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(web_app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    th.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
            "or set YUNCANG_CHROMIUM; browser tests do not download browsers"
        )
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _page(browser: Any, phone: bool = False) -> Any:
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 900},
        device_scale_factor=1,
        locale="zh-CN",
    )
    return ctx.new_page()


def _sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_load_state("networkidle")


def _plots_drawn(page: Any) -> int:
    page.wait_for_function("() => document.querySelectorAll('.plot .main-svg').length > 0", timeout=15000)
    return int(page.evaluate("() => document.querySelectorAll('.plot.js-plotly-plot').length"))


def test_login_page_and_wrong_password(browser: Any, live_url: str) -> None:
    page = _page(browser, phone=True)
    page.goto(f"{live_url}/login")
    page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
    _sign_in(page, live_url, "admin", "not-the-password")
    assert page.is_visible("#login-error")
    page.context.close()


def test_grower_sees_orchard_and_records_observation(browser: Any, live_url: str, sample: Any) -> None:
    page = _page(browser, phone=True)
    _sign_in(page, live_url, SAMPLE_GROWER, "plum-grower")
    assert page.url.endswith("/grower")
    assert sample["orchard_id"] in page.inner_text("#orchard-title")
    assert page.locator("#now .card").count() >= 5
    assert "霜冻风险" in page.inner_text("#alerts")
    assert _plots_drawn(page) >= 3  # week, season, forecast
    page.screenshot(path=str(ARTIFACTS / "grower.png"), full_page=True)
    page.select_option("#kind", "fruit_set")
    page.fill("#value", "12.5")
    page.fill("#note", "browser test 坐果")
    page.click("#record-submit")
    page.wait_for_function("() => (document.querySelector('#records') || {innerText: ''}).innerText"
                           ".includes('browser test 坐果')", timeout=15000)
    page.wait_for_load_state("networkidle")
    assert page.is_visible("#record-saved")
    assert "browser test 坐果" in page.inner_text("#records")
    page.click("#lang-switch")
    page.wait_for_load_state("networkidle")
    assert "My orchard" in page.inner_text("#orchard-title")
    page.screenshot(path=str(ARTIFACTS / "grower-en.png"), full_page=True)
    page.context.close()


def test_manager_sees_all_orchards(browser: Any, live_url: str) -> None:
    page = _page(browser)
    _sign_in(page, live_url, "admin", "plum-admin")
    assert page.url.endswith("/manager")
    assert "1546" in page.inner_text("#orchard-count")
    _plots_drawn(page)
    n_points = page.evaluate(
        "() => document.getElementById('overview-chart').data.filter(d => d.xaxis === 'x' || !d.xaxis)"
        ".reduce((n, d) => n + d.x.length, 0)"
    )
    assert n_points == 1546
    page.screenshot(path=str(ARTIFACTS / "manager.png"), full_page=True)
    ids = page.evaluate("() => document.getElementById('overview-chart').data[0].customdata.slice(0, 1)")
    assert ids and ids[0].startswith("WS-")
    page.goto(f"{live_url}/manager?colour=risk")
    _plots_drawn(page)
    page.screenshot(path=str(ARTIFACTS / "manager-risk.png"), full_page=True)
    page.context.close()


def test_cooperative_manager_page(browser: Any, live_url: str, sample: Any) -> None:
    page = _page(browser)
    _sign_in(page, live_url, sample["cooperative_id"], "plum-manager")
    assert page.url.endswith("/manager")
    assert "1546" not in page.inner_text("#orchard-count")
    page.screenshot(path=str(ARTIFACTS / "manager-cooperative.png"), full_page=True)
    page.context.close()


def test_buyer_sees_supply_and_places_order(browser: Any, live_url: str) -> None:
    page = _page(browser)
    _sign_in(page, live_url, "buyer-test-a-user", TEST_PASSWORD)
    assert page.url.endswith("/buyer")
    _plots_drawn(page)
    page.select_option("#grade", "L")
    page.fill("#quantity_kg", "1500")
    page.select_option("#destination", "yantai")
    page.fill("#price_yuan", "12.50")
    page.fill("#floor_price_yuan", "8.00")
    page.click("#order-submit")
    page.wait_for_load_state("networkidle")
    assert page.is_visible("#order-placed"), page.inner_text("main")
    assert "烟台" in page.inner_text("#orders") and "1,500 公斤" in page.inner_text("#orders")
    page.screenshot(path=str(ARTIFACTS / "buyer.png"), full_page=True)
    page.context.close()


def test_public_trace_page(browser: Any, live_url: str) -> None:
    page = _page(browser, phone=True)
    page.goto(f"{live_url}/trace?code=WS-NOPE-0000")
    assert page.locator("#trace-not-found").count() + page.locator(".empty").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "trace.png"), full_page=True)
    page.context.close()


@pytest.mark.parametrize("phone", [True, False], ids=["390x844", "1366x900"])
def test_buyer_places_amends_and_cancels_an_order(browser: Any, live_url: str, phone: bool) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844} if phone else {"width": 1366, "height": 900},
                              device_scale_factor=1, locale="zh-CN")
    page = ctx.new_page()
    _sign_in(page, live_url, "buyer-test-b-user", TEST_PASSWORD)
    # inline validation: a bad quantity is named next to the field and nothing is sent
    page.fill("#quantity_kg", "-5")
    page.fill("#price_yuan", "9")
    page.click("#order-submit")
    assert page.inner_text("#quantity_kg-err") and page.locator("#order-placed").count() == 0
    # the three steps: grade and kg, weeks and destination, price
    page.select_option("#grade", "XL")
    qty = 700 + (0 if phone else 1)
    page.fill("#quantity_kg", str(qty))
    page.select_option("#destination", "hangzhou")
    page.fill("#price_yuan", "14.00")
    assert "特级果" in page.inner_text("#order-summary")
    page.click("#order-submit")
    page.wait_for_load_state("networkidle")
    assert page.is_visible("#order-placed")
    row = page.locator(".order-row").first
    oid = row.get_attribute("data-order")
    assert f"{qty:,} 公斤" in row.inner_text() and "杭州" in row.inner_text() and "待分配" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"buyer-order-book-{'phone' if phone else 'desktop'}.png"), full_page=True)
    # amend the quantity
    more = page.locator(".order-row + .order-more").first
    more.locator("details.amend summary").click()
    more.locator(".amend-qty").fill("2000")
    more.locator(".amend-submit").click()
    page.wait_for_load_state("networkidle")
    assert page.is_visible("#order-amended")
    row = page.locator(f'.order-row[data-order="{oid}"]')
    assert "2,000 公斤" in row.inner_text()
    # cancel it
    row.locator(".cancel-order").click()
    page.wait_for_load_state("networkidle")
    assert page.is_visible("#order-cancelled")
    assert "已取消" in page.locator(f'.order-row[data-order="{oid}"]').inner_text()
    ctx.close()


def _wait_page_kept_offline(page: Any) -> None:
    """Until the service worker runs and its page cache holds /grower itself (the copy an offline visit gets)."""
    page.evaluate("() => navigator.serviceWorker.ready")
    page.wait_for_function("() => caches.open('yc-pages-v1').then(c => c.keys())"
                           ".then(k => k.some(r => new URL(r.url).pathname === '/grower'))")


@pytest.mark.parametrize("phone", [True, False], ids=["390x844", "1366x900"])
def test_grower_records_offline_and_it_syncs_exactly_once(browser: Any, live_url: str, web_db: str,
                                                          phone: bool) -> None:
    """Offline: the record waits in the phone's outbox, survives closing the page, and is stored once
    when the network returns (the outbox's client id makes the retries idempotent)."""
    import psycopg

    ctx = browser.new_context(viewport={"width": 390, "height": 844} if phone else {"width": 1366, "height": 900},
                              device_scale_factor=1, locale="zh-CN")
    page = ctx.new_page()
    _sign_in(page, live_url, SAMPLE_GROWER, "plum-grower")
    _wait_page_kept_offline(page)
    note = f"offline {'phone' if phone else 'desktop'} {time.time_ns()}"
    ctx.set_offline(True)
    page.fill("#note", note)
    page.click("#record-submit")
    page.wait_for_function("() => document.querySelector('#outbox-status').textContent.includes('1 条')")
    page.screenshot(path=str(ARTIFACTS / f"grower-offline-{'phone' if phone else 'desktop'}.png"), full_page=True)
    page.close()  # the page is closed while offline: the record lives on in IndexedDB
    page = ctx.new_page()
    page.goto(f"{live_url}/grower")  # served by the service worker from its last copy
    assert "我的果园" in page.inner_text("#orchard-title")
    page.wait_for_function("() => document.querySelector('#outbox-status').textContent.includes('1 条')")
    with psycopg.connect(web_db) as c:
        assert c.execute("SELECT count(*) FROM farm_records WHERE note = %s", (note,)).fetchone()[0] == 0
    ctx.set_offline(False)
    page.wait_for_function("() => document.querySelector('#outbox-status').textContent.includes('已全部上传')",
                           timeout=30000)
    assert note in page.inner_text("#records")
    page.reload()
    page.wait_for_load_state("networkidle")
    with psycopg.connect(web_db) as c:
        assert c.execute("SELECT count(*) FROM farm_records WHERE note = %s", (note,)).fetchone()[0] == 1
    ctx.close()


@pytest.mark.parametrize("phone", [True, False], ids=["390x844", "1366x900"])
def test_grower_counts_sample_trees_offline_and_the_count_is_stored_once(browser: Any, live_url: str, web_db: str,
                                                                         phone: bool) -> None:
    """Issue 16: the phone page takes a sample-tree fruit count (a sixth tree added with the button, an
    empty row skipped) while offline; it waits in the outbox across closing the page and is stored exactly
    once, with its trees, when the network returns; the page lists it."""
    import psycopg

    ctx = browser.new_context(viewport={"width": 390, "height": 844} if phone else {"width": 1366, "height": 900},
                              device_scale_factor=1, locale="zh-CN")
    page = ctx.new_page()
    _sign_in(page, live_url, SAMPLE_GROWER, "plum-grower")
    _wait_page_kept_offline(page)
    orchard = page.input_value('#count-form input[name="orchard_id"]')
    with psycopg.connect(web_db) as c:
        before = c.execute("SELECT count(*) FROM fruit_counts WHERE orchard_id = %s", (orchard,)).fetchone()[0]
    ctx.set_offline(True)
    page.click("#count-submit")   # no count entered: refused on the page, nothing queued
    assert "至少" in page.inner_text("#count-error")
    fruit = page.locator('#count-trees input[name="fruit"]')
    for k, n in enumerate(["212", "187", "", "240", "199"]):
        fruit.nth(k).fill(n)
    page.click("#count-add-tree")
    assert fruit.count() == 6
    fruit.nth(5).fill("205")
    page.fill("#mean_fruit_g", "38.5")
    page.click("#count-submit")
    page.wait_for_function("() => document.querySelector('#count-outbox-status').textContent.includes('1 条')")
    page.screenshot(path=str(ARTIFACTS / f"grower-count-offline-{'phone' if phone else 'desktop'}.png"),
                    full_page=True)
    page.close()
    page = ctx.new_page()
    page.goto(f"{live_url}/grower")  # the service worker's copy; the count is still in the outbox
    page.wait_for_function("() => document.querySelector('#outbox-status').textContent.includes('1 条')")
    ctx.set_offline(False)
    page.wait_for_function("() => document.querySelector('#outbox-status').textContent.includes('已全部上传')",
                           timeout=30000)
    assert "5 棵树" in page.inner_text("#counts")
    page.reload()
    page.wait_for_load_state("networkidle")
    assert "5 棵树,平均每棵 209 个果 · 38.5 g" in page.inner_text("#counts")
    with psycopg.connect(web_db) as c:
        rows = c.execute("SELECT tree_ids, fruit_per_tree, mean_fruit_g FROM fruit_counts WHERE orchard_id = %s"
                         " ORDER BY count_id DESC", (orchard,)).fetchall()
    assert len(rows) == before + 1
    assert rows[0] == (["1", "2", "4", "5", "6"], [212.0, 187.0, 240.0, 199.0, 205.0], 38.5)
    ctx.close()


@pytest.mark.parametrize("phone", [True, False], ids=["390x844", "1366x900"])
def test_manager_downloads_the_report_and_it_opens_with_its_sheets(browser: Any, live_url: str,
                                                                   phone: bool) -> None:
    import io

    from openpyxl import load_workbook

    from yuncang.reports import SHEETS

    ctx = browser.new_context(viewport={"width": 390, "height": 844} if phone else {"width": 1366, "height": 900},
                              device_scale_factor=1, locale="zh-CN", accept_downloads=True)
    page = ctx.new_page()
    _sign_in(page, live_url, "coop-shuanglong-1", "plum-manager")
    assert page.url.endswith("/manager") and "统计报告" in page.inner_text("#reports")
    with page.expect_download() as dl:
        page.click('.report-xlsx[data-period="month"]')
    assert dl.value.suggested_filename.endswith(".xlsx")
    wb = load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert wb.sheetnames == list(SHEETS)
    assert wb[SHEETS[0]]["A6"].value == "果园 Orchards" and wb[SHEETS[0]]["B6"].value > 0
    with page.expect_download() as dl:
        page.click('.report-pdf[data-period="week"]')
    assert Path(dl.value.path()).read_bytes()[:5] == b"%PDF-"
    page.screenshot(path=str(ARTIFACTS / f"manager-{'phone' if phone else 'desktop'}.png"), full_page=False)
    ctx.close()
