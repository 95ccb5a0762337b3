"""Label sheets: the PDF carries one QR code per label that decodes (zxing-cpp) to the lot's GS1
Digital Link URI, and the Chinese trace code, grade and origin as text (pypdf)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from registry.seed import SeedParams, seed
from trading import genealogy, warehouse
from trading.gs1 import Gs1Config, parse_link
from trading.labels import Label, label_sheet, labels_for
from yuncang.migrations import migrate

CFG = Gs1Config(resolver="https://trace.wushan.example")
T0 = datetime(2026, 7, 21, 2, 0, tzinfo=UTC)


def _decode_all(pdf: bytes) -> list[str]:
    found = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for img in page.images:
            im = Image.open(io.BytesIO(img.data)).convert("L")
            found += [r.text for r in zxingcpp.read_barcodes(im) if r.format == zxingcpp.BarcodeFormat.QRCode]
    return found


def test_each_label_qr_decodes_to_its_uri_and_text_is_chinese():
    labels = [Label(uri=f"https://trace.wushan.example/01/06970000000024/10/GL26-{i:08X}", trace_code=f"GL26-{i:08X}",
                    grade="L", kg=Decimal("12.5"), township_zh="双龙镇", harvested_on=date(2026, 7, 21))
              for i in range(12)]                    # 12 labels: two pages of 10
    pdf = label_sheet(labels)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2
    assert sorted(_decode_all(pdf)) == sorted(lab.uri for lab in labels)
    text = reader.pages[0].extract_text()
    assert "追溯码" in text and "GL26-00000000" in text and "一级果" in text and "双龙镇" in text


@pytest.fixture(scope="module")
def url(make_database) -> str:
    u = make_database()
    migrate(u)
    with psycopg.connect(u) as c:
        seed(c, SeedParams())
        warehouse.seed_warehouse(c)
    return u


def test_labels_for_packed_units_resolve_to_their_lot(url):
    with psycopg.connect(url, autocommit=True) as conn:
        oid, town = conn.execute("SELECT o.orchard_id, t.name_zh FROM orchards o JOIN townships t USING "
                                 "(township_id) ORDER BY orchard_id LIMIT 1").fetchone()
        h = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 21), kg="40", cfg=CFG, at=T0)
        lot = genealogy.grade(conn, inputs={h.created["lot"]: "40"}, outputs_kg_by_grade={"XL": "40"}, losses=[],
                              site_id="WH-WUSHAN", cfg=CFG, at=T0).created["XL"]
        units = [genealogy.pack(conn, children={lot: "10"}, site_id="WH-WUSHAN", cfg=CFG, at=T0).created["unit"]
                 for _ in range(4)]
        labels = labels_for(conn, CFG, units)
    assert [lab.trace_code for lab in labels] == units
    assert all(lab.township_zh == town and lab.harvested_on == date(2026, 7, 21) for lab in labels)
    uris = _decode_all(label_sheet(labels))
    assert sorted(parse_link(u).lot for u in uris) == sorted(units)
