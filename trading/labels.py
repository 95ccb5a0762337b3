"""Label sheets (标签): one label per packed unit or lot, with a QR code of its GS1 Digital Link URI and
the Chinese trace code (追溯码) printed beside it, as an A4 PDF (2 columns x 5 rows of 105 x 57 mm).

QR codes come from ``segno`` (ISO/IEC 18004, error correction level M, 4-module quiet zone as the
standard asks); the PDF from ``fpdf2`` with a CJK font found on the machine (Debian's
``fonts-wqy-microhei`` or Noto CJK; ``LabelError`` names the packages when none is installed).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import segno
from fpdf import FPDF

from registry.grades import GRADES

if TYPE_CHECKING:
    import psycopg

    from trading.gs1 import Gs1Config

CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
LABEL_W_MM, LABEL_H_MM, COLS, ROWS = 105.0, 57.0, 2, 5
QR_MM = 44.0
_GRADE_ZH = {g.code: g.label_zh for g in GRADES}


class LabelError(RuntimeError):
    """No CJK font is installed (the labels would print empty boxes instead of Chinese)."""


@dataclass(frozen=True)
class Label:
    """What one label carries; ``uri`` goes in the QR code, ``trace_code`` is printed under it."""

    uri: str
    trace_code: str
    grade: str | None
    kg: Decimal
    township_zh: str
    harvested_on: date | None


def _font() -> Path:
    for f in CJK_FONTS:
        if f.exists():
            return f
    raise LabelError("no CJK font found: install Debian's fonts-wqy-microhei (or fonts-noto-cjk)")


def qr_png(uri: str, scale: int = 10) -> bytes:
    """The QR code of ``uri`` as PNG bytes (error correction M, quiet zone 4 modules)."""
    buf = io.BytesIO()
    segno.make_qr(uri, error="m").save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def label_sheet(labels: list[Label], title: str = "巫山脆李") -> bytes:
    """An A4 PDF with the labels laid out 2 x 5 per page."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.add_font("cjk", "", str(_font()))
    pdf.set_margins(0, 0)
    x0, y0 = (210 - COLS * LABEL_W_MM) / 2, (297 - ROWS * LABEL_H_MM) / 2
    for n, lab in enumerate(labels):
        if n % (COLS * ROWS) == 0:
            pdf.add_page()
        col, row = n % COLS, (n // COLS) % ROWS
        x, y = x0 + col * LABEL_W_MM, y0 + row * LABEL_H_MM
        pdf.set_draw_color(180, 180, 180)
        pdf.rect(x, y, LABEL_W_MM, LABEL_H_MM)
        pdf.image(io.BytesIO(qr_png(lab.uri)), x=x + 3, y=y + (LABEL_H_MM - QR_MM) / 2, w=QR_MM, h=QR_MM)
        tx = x + QR_MM + 6
        pdf.set_font("cjk", size=14)
        pdf.set_xy(tx, y + 5)
        pdf.cell(0, 7, title)
        pdf.set_font("cjk", size=10)
        lines = [
            f"等级: {_GRADE_ZH.get(lab.grade or '', '未分级')}",
            f"净重: {lab.kg:,.1f} 公斤",
            f"产地: 重庆市巫山县{lab.township_zh}",
        ]
        if lab.harvested_on:
            lines.append(f"采收: {lab.harvested_on:%Y年%m月%d日}")
        lines.append(f"追溯码: {lab.trace_code}")
        for i, line in enumerate(lines):
            pdf.set_xy(tx, y + 14 + i * 6.5)
            pdf.cell(0, 6, line)
        pdf.set_font("cjk", size=6)
        pdf.set_xy(tx, y + LABEL_H_MM - 7)
        pdf.cell(0, 4, "扫码查看产地、采收与冷链信息")
    return bytes(pdf.output())


def labels_for(conn: psycopg.Connection, cfg: Gs1Config, object_ids: list[str]) -> list[Label]:
    """Labels for lots or packed units, in the order given: the QR carries the lot's GS1 Digital Link
    (``/01/<GTIN>/10/<lot>``; a packed unit's own lot number is its id), the trace code is the id."""
    from trading.errors import NotFound
    from trading.gs1 import lot_uri

    rows = {r[0]: r for r in conn.execute(
        """SELECT o.object_id, o.gtin, o.lot_number, o.grade, o.kg, coalesce(t.name_zh, '多个乡镇'),
                  (SELECT min(h.harvested_on) FROM trace_objects h WHERE h.object_id IN (
                       WITH RECURSIVE up(object_id) AS (SELECT o.object_id UNION
                            SELECT e.from_object FROM trace_edges e JOIN up ON e.to_object = up.object_id)
                       SELECT object_id FROM up) AND h.kind = 'harvest_lot')
             FROM trace_objects o LEFT JOIN townships t USING (township_id)
            WHERE o.object_id = ANY(%s)""", (list(object_ids),)).fetchall()}
    missing = [o for o in object_ids if o not in rows]
    if missing:
        raise NotFound(f"not found: {', '.join(missing)}", f"批次不存在: {', '.join(missing)}")
    return [Label(uri=lot_uri(cfg, r[1], r[2]), trace_code=r[0], grade=r[3], kg=r[4], township_zh=r[5],
                  harvested_on=r[6]) for r in (rows[o] for o in object_ids)]
