# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""The periodic statistics report: its figures, the XLSX sheets, a PDF with Chinese text, the stored
scheduler copy and who may download which."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from test_web_fixtures import SAMPLE_GROWER, client, sample, web_app, web_db  # noqa: F401

from yuncang import reports


def test_periods_are_whole_weeks_and_months() -> None:
    w = reports.period_before("week", date(2027, 7, 14))  # a Wednesday
    assert (w.start, w.end) == (date(2027, 7, 5), date(2027, 7, 12)) and w.start.weekday() == 0
    m = reports.period_before("month", date(2027, 3, 1))
    assert (m.start, m.end) == (date(2027, 2, 1), date(2027, 3, 1))
    s = reports.period_before("season", date(2027, 8, 2))
    assert s.start == date(2027, 1, 1) and s.end == date(2027, 8, 3)


def test_report_figures_sheets_and_pdf(web_db: str, sample: dict[str, Any]) -> None:
    today = datetime.now(reports.SHANGHAI).date()
    with psycopg.connect(web_db) as conn:
        r, xlsx, pdf = reports.make(conn, reports.period_before("season", today))
        coop = conn.execute("SELECT cooperative_id FROM orchards WHERE grower_id = %s", (SAMPLE_GROWER,)).fetchone()[0]
        mine = reports.gather(conn, reports.period_before("season", today), cooperative_id=coop)
    c = r["coverage"]
    assert c["orchards"] == 1546 and 1 <= c["orchards_online"] <= c["orchards"]
    assert 0 < c["completeness"] <= 1 and c["devices_reporting"] >= 1
    assert mine["coverage"]["orchards"] < c["orchards"] and mine["coverage"]["orchards_online"] >= 1
    assert [x["grade"] for x in r["forecast_vs_harvest"]] == ["XL", "L", "M"]
    assert sum(x["forecast_p50_kg"] for x in r["forecast_vs_harvest"]) > 0  # the sample forecast
    wb = load_workbook(io.BytesIO(xlsx))
    assert wb.sheetnames == list(reports.SHEETS)
    summary = {row[0].value: row[1].value for row in wb[reports.SHEETS[0]].iter_rows(min_row=3)}
    assert summary["果园 Orchards"] == 1546 and summary["在线果园 Orchards online"] == c["orchards_online"]
    assert pdf[:5] == b"%PDF-" and len(pdf) > 5000
    assert b"WenQuanYi" in pdf  # the CJK font is embedded, so the Chinese labels render


def test_the_scheduler_keeps_one_report_a_week_and_managers_download_theirs(
        client: TestClient, web_db: str, sample: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(web_db) as conn:
        a = reports.scheduled_report(conn, now)
        b = reports.scheduled_report(conn, now)
        conn.commit()
    assert a["made"] and not b["made"] and a["report_id"] == b["report_id"]

    def login(user: str, pw: str) -> TestClient:
        c = TestClient(client.app)
        page = c.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        c.post("/login", data={"username": user, "password": pw, "csrf_token": token})
        return c

    admin = login("admin", "plum-admin")
    got = admin.get(f"/manager/reports/{a['report_id']}.xlsx")
    assert got.status_code == 200 and load_workbook(io.BytesIO(got.content)).sheetnames == list(reports.SHEETS)
    assert admin.get(f"/manager/reports/{a['report_id']}.pdf").content[:5] == b"%PDF-"
    assert "/manager/reports/" in admin.get("/manager").text
    manager = login("coop-shuanglong-1", "plum-manager")
    assert manager.get(f"/manager/reports/{a['report_id']}.xlsx").status_code == 404  # the county's, not theirs
    live = manager.get("/manager/report.xlsx?period=month")
    assert live.status_code == 200 and "attachment" in live.headers["content-disposition"]
    assert load_workbook(io.BytesIO(live.content))[reports.SHEETS[0]]["B6"].value < 1546  # their cooperative
    assert manager.get("/manager/report.pdf?period=season").content[:5] == b"%PDF-"
    assert manager.get("/manager/report.xlsx?period=year").status_code == 422
    grower = login(SAMPLE_GROWER, "plum-grower")
    assert grower.get("/manager/report.xlsx", follow_redirects=False).status_code == 303
