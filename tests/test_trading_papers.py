"""Papers a buyer can file: delivery notes and statements open as PDF (text extracted with pypdf, the
CJK font embedded) and XLSX (openpyxl), in Chinese, with the lots' trace codes and the right totals."""

from __future__ import annotations

import io
from datetime import date, timedelta

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from trading import papers, spot, warehouse
from trading.errors import Invalid, NotFound
from yuncang.auth import create_user

PW = "papers-test-password"


@pytest.fixture(scope="module")
def world(spot_db: str, spot_api: TestClient) -> dict:
    url = spot_db
    with psycopg.connect(url, autocommit=True) as c:
        create_user(c, username="yt-zone-1", password=PW, role="buyer", buyer_id="yt-zone-1")
        create_user(c, username="yt-zone-2", password=PW, role="buyer", buyer_id="yt-zone-2")
        for g, p in (("XL", 1388), ("L", 1000)):
            spot.set_list_price(c, warehouse_id="WH-WUSHAN", grade=g, price_fen_per_kg=p, set_by="mgr")
        orchard = c.execute("SELECT orchard_id FROM orchards ORDER BY orchard_id LIMIT 1").fetchone()[0]
        lot = warehouse.receive_lot(c, orchard_id=orchard, harvested_on=date(2026, 7, 22),
                                    kg_by_grade={"XL": 100, "L": 300}, cold_room_id="CR-02")
        s1 = spot.reserve(c, buyer_id="yt-zone-1", actor="yt-zone-1", client_request_id="paper-res-1",
                          lines=[{"lot_id": lot.lot_id, "grade": "XL", "kg": "12.5"},
                                 {"lot_id": lot.lot_id, "grade": "L", "kg": 40}], fulfilment="shipment",
                          destination="烟台")
        spot.confirm(c, s1.sale_id, buyer_id="yt-zone-1")
        s1 = spot.deliver(c, s1.sale_id)
        s2 = spot.hall_sale(c, warehouse_id="WH-WUSHAN", actor="clerk", client_request_id="paper-hall-1",
                            lines=[{"lot_id": lot.lot_id, "grade": "L", "kg": 7}], payment_method="cash",
                            buyer_id="yt-zone-1")
        wk = date(2026, 7, 20)
        c.execute("INSERT INTO orders (order_id, buyer_id, idempotency_key, request_hash, season, grade, quantity_kg, "
                  "week_from, week_to, destination, price_fen_per_kg, status) VALUES ('ORD-PAPER-1', 'yt-zone-1', "
                  "'paper-1', 'h', 2026, 'L', 100, %s, %s, 'yantai', 905, 'allocated')", (wk, wk))
        sh = warehouse.fulfil(c, order_id="ORD-PAPER-1", lot_id=lot.lot_id, grade="L", kg=50)
    return {"url": url, "client": spot_api, "online": s1, "hall": s2, "shipment": sh, "lot": lot.lot_id}


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    fonts = [str(f) for page in reader.pages for f in page["/Resources"]["/Font"].values()]
    assert fonts, "no font in the PDF"
    return "\n".join(page.extract_text() for page in reader.pages)


def test_capital_chinese_amounts() -> None:
    assert papers.rmb_upper(0) == "零元整"
    assert papers.rmb_upper(123450) == "壹仟贰佰叁拾肆元伍角整"
    assert papers.rmb_upper(10007) == "壹佰元零柒分"
    assert papers.rmb_upper(100000000) == "壹佰万元整"
    assert papers.rmb_upper(1000100) == "壹万零壹元整"
    assert papers.rmb_upper(10500) == "壹佰零伍元整"
    assert papers.rmb_upper(5) == "零元伍分"
    assert papers.yuan(123456) == "1,234.56" and papers.yuan(-5) == "-0.05"


def test_delivery_note_of_an_online_sale_opens_as_pdf_and_xlsx(world) -> None:
    sale = world["online"]
    with psycopg.connect(world["url"]) as c:
        paper = papers.spot_delivery_note(c, sale.sale_id)
        with pytest.raises(NotFound):
            papers.spot_delivery_note(c, "SP-2026-NOPE")
    codes = [ln.trace_code for ln in sale.lines]
    assert len(codes) == 2 and all(codes) and paper.trace_codes == codes
    assert paper.total_fen == round(12.5 * 1388) + 40 * 1000 == sale.total_fen
    text = _pdf_text(papers.to_pdf(paper))
    assert "送货单" in text and "巫山脆李产地云仓" in text and sale.sale_id in text
    for code in codes:
        assert code in text
    assert papers.yuan(sale.total_fen) in text and papers.rmb_upper(sale.total_fen) in text
    wb = openpyxl.load_workbook(io.BytesIO(papers.to_xlsx(paper)))
    ws = wb.active
    cells = [[c for c in row] for row in ws.iter_rows(values_only=True)]
    flat = [v for row in cells for v in row if v is not None]
    assert "购货方" in flat and "烟台超市巫山脆李专区一 (芝罘)" in flat
    assert set(codes) <= set(flat)
    total_row = next(r for r in cells if r[0] == "合计")
    assert total_row[6] == pytest.approx(52.5) and total_row[8] == pytest.approx(sale.total_fen / 100)


def test_statement_lists_spot_and_forward_lines_with_totals(world) -> None:
    today = spot.local_today()
    with psycopg.connect(world["url"]) as c:
        paper = papers.buyer_statement(c, "yt-zone-1", today - timedelta(days=30), today)
        empty = papers.buyer_statement(c, "yt-zone-2", today - timedelta(days=30), today)
        with pytest.raises(Invalid):
            papers.buyer_statement(c, "yt-zone-1", today, today - timedelta(days=1))
    expected = world["online"].total_fen + world["hall"].total_fen + world["shipment"].amount_fen
    assert paper.total_fen == expected and len(paper.rows) == 4
    assert world["shipment"].trace_code in paper.trace_codes
    assert empty.rows == [] and empty.total_fen == 0
    text = _pdf_text(papers.to_pdf(paper))
    assert "对账单" in text and world["shipment"].trace_code in text and "ORD-PAPER-1" in text
    assert papers.rmb_upper(expected) in text
    ws = openpyxl.load_workbook(io.BytesIO(papers.to_xlsx(paper))).active
    amounts = [r[8] for r in ws.iter_rows(values_only=True) if isinstance(r[0], int)]
    assert sum(round(a * 100) for a in amounts) == expected


def test_papers_through_the_api_are_scoped_to_their_buyer(world) -> None:
    client: TestClient = world["client"]
    mine = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "yt-zone-1", "password": PW}).json()["token"]}
    other = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "yt-zone-2", "password": PW}).json()["token"]}
    sid = world["hall"].sale_id
    r = client.get(f"/api/v1/papers/sales/{sid}.pdf", headers=mine)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert "现货销售单" in _pdf_text(r.content) and world["hall"].lines[0].trace_code in _pdf_text(r.content)
    assert client.get(f"/api/v1/papers/sales/{sid}.xlsx", headers=other).status_code == 403
    x = client.get(f"/api/v1/papers/shipments/{world['shipment'].shipment_id}.xlsx", headers=mine)
    assert x.status_code == 200
    flat = [v for row in openpyxl.load_workbook(io.BytesIO(x.content)).active.iter_rows(values_only=True)
            for v in row]
    assert world["shipment"].trace_code in flat
    today = spot.local_today().isoformat()
    st = client.get("/api/v1/papers/statements/yt-zone-1.pdf", params={"date_from": today, "date_to": today},
                    headers=mine)
    assert st.status_code == 200 and "对账单" in _pdf_text(st.content)
    assert client.get("/api/v1/papers/statements/yt-zone-1.pdf", params={"date_from": today, "date_to": today},
                      headers=other).status_code == 403
    assert client.get("/api/v1/papers/sales/SP-2026-NONE.pdf", headers=mine).status_code == 404
