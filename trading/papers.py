"""Papers a buyer can file (单据): a delivery note for every sale and a periodic statement per buyer,
as PDF (fpdf2, the CJK font embedded as a subset) and XLSX (openpyxl), in Chinese, with every line's
lot and trace code.

* :func:`spot_delivery_note` — 提货单/送货单 of a spot sale (online or hall counter);
* :func:`shipment_delivery_note` — 送货单 of a forward-order shipment;
* :func:`buyer_statement` — 对账单 of a buyer for a period (Asia/Shanghai days, both inclusive): every
  delivered spot line and forward shipment, totals, and the total in capital Chinese numerals
  (大写金额, as on Chinese invoices).

Each returns a :class:`Paper` (title, header fields, table, totals) that :func:`to_pdf` and
:func:`to_xlsx` render to bytes. Money is integer fen, printed as yuan with two decimals.

The PDF needs a font with Chinese glyphs: :func:`cjk_font_path` takes an explicit path, else asks
fontconfig (``fc-match``) for WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``) or Noto Sans CJK,
else tries their usual paths; without one it raises :class:`FontMissing` (the API answers 503).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from registry.grades import BY_CODE
from trading.errors import Invalid, NotFound, TradingError

SHANGHAI = ZoneInfo("Asia/Shanghai")
ISSUER = "巫山脆李产地云仓电子交易中心"
_FONT_NAMES = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC")
_FONT_PATHS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
               "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
               "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
MAX_STATEMENT_DAYS = 366
COLUMNS = ("序号", "单号", "批次", "等级", "产地", "采收日期", "重量(公斤)", "单价(元/公斤)", "金额(元)", "追溯码")


class FontMissing(TradingError):
    """No font with Chinese glyphs on this machine (install fonts-wqy-microhei)."""

    http_status = 503
    code = "font_missing"


@dataclass
class Paper:
    kind: str                                   #: 'delivery_note' or 'statement'
    number: str                                 #: document number printed on it
    title: str
    fields: list[tuple[str, str]]               #: header (label, value)
    #: one per line, in COLUMNS order; price and amount as integer fen
    rows: list[list[Any]] = field(default_factory=list)
    total_kg: float = 0.0
    total_fen: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def trace_codes(self) -> list[str]:
        return [str(r[9]) for r in self.rows if r[9]]

    @property
    def filename(self) -> str:
        return f"{self.kind}-{self.number}"


def yuan(fen: int) -> str:
    """Integer fen as yuan with two decimals: 123456 -> '1,234.56'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿", "万亿")


def rmb_upper(fen: int) -> str:
    """Amount in capital Chinese numerals as written on invoices (大写金额): 1234.50 yuan ->
    '壹仟贰佰叁拾肆元伍角整'; 0 -> '零元整'; 100.07 -> '壹佰元零柒分'."""
    if fen < 0:
        return "负" + rmb_upper(-fen)
    yuan_part, jiao, fen_d = fen // 100, (fen // 10) % 10, fen % 10
    out = ""
    if yuan_part == 0:
        out = "零"
    else:
        groups = []
        n = yuan_part
        while n:
            groups.append(n % 10_000)
            n //= 10_000
        zero_pending = False
        for gi in range(len(groups) - 1, -1, -1):
            g = groups[gi]
            if g == 0:
                zero_pending = bool(out)
                continue
            s = ""
            for pos in range(3, -1, -1):
                d = (g // 10**pos) % 10
                if d == 0:
                    if s or out:
                        zero_pending = True
                    continue
                if zero_pending and (s or out):
                    s += "零"
                zero_pending = False
                s += _DIGITS[d] + _UNITS[pos]
            out += s + _SECTIONS[gi]
    out += "元"
    if jiao == 0 and fen_d == 0:
        return out + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif yuan_part:
        out += "零"
    if fen_d:
        out += _DIGITS[fen_d] + "分"
    else:
        out += "整"
    return out


def _local(ts: datetime | None) -> str:
    return ts.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if ts else ""


def _grade(code: str) -> str:
    g = BY_CODE.get(code)
    return f"{g.label_zh} ({code})" if g else code


def _line(i: int, doc_no: str, r: dict[str, Any]) -> list[Any]:
    return [i, doc_no, r["lot_id"], _grade(r["grade"]), r["township_zh"], r["harvested_on"].isoformat(),
            float(r["kg"]), int(r["price_fen_per_kg"]), int(r["amount_fen"]), r["trace_code"] or ""]


_LOT_JOIN = """JOIN lots lt ON lt.lot_id = x.lot_id JOIN orchards o ON o.orchard_id = lt.orchard_id
               JOIN townships t ON t.township_id = o.township_id"""


def spot_delivery_note(conn: psycopg.Connection, sale_id: str) -> Paper:
    """The delivery note of a spot sale (its lines, trace codes once delivered). ``NotFound`` if absent."""
    with conn.cursor(row_factory=dict_row) as cur:
        sale = cur.execute(
            """SELECT s.*, w.name AS site_name, b.name AS buyer_name FROM spot_sales s
               JOIN warehouses w USING (warehouse_id) LEFT JOIN buyers b USING (buyer_id)
               WHERE s.sale_id = %s""", (sale_id,)).fetchone()
        if sale is None:
            raise NotFound(f"sale {sale_id} not found", f"销售单 {sale_id} 不存在", sale_id=sale_id)
        lines = cur.execute(
            f"""SELECT x.*, lt.harvested_on, t.name_zh AS township_zh FROM spot_sale_lines x {_LOT_JOIN}
                WHERE x.sale_id = %s ORDER BY x.line_no""", (sale_id,)).fetchall()
    status_zh = {"held": "保留中 (未确认)", "confirmed": "已确认 (待提货)", "delivered": "已交付",
                 "expired": "保留已过期", "cancelled": "已取消"}[sale["status"]]
    how = {"pickup": "自提", "shipment": "发货", "counter": "大厅现场交易"}[sale["fulfilment"]]
    pay = {"cash": "现金", "transfer": "转账", "online": "线上支付", None: "未付"}[sale["payment_method"]]
    paper = Paper("delivery_note", sale_id, "送货单 / 提货单" if sale["fulfilment"] != "counter" else "现货销售单",
                  [("单号", sale_id), ("开单方", ISSUER), ("发货仓库", f"{sale['site_name']} ({sale['warehouse_id']})"),
                   ("购货方", sale["buyer_name"] or sale["walk_in_name"] or "散客"),
                   ("渠道", "线上" if sale["channel"] == "online" else "交易大厅"), ("交付方式", how),
                   ("付款方式", pay), ("状态", status_zh), ("下单时间", _local(sale["created_at"])),
                   ("交付时间", _local(sale["delivered_at"]))])
    for i, r in enumerate(lines, 1):
        paper.rows.append(_line(i, sale_id, r))
    paper.total_kg = float(sum(r["kg"] for r in lines))
    paper.total_fen = int(sale["total_fen"])
    if sale["destination"]:
        paper.fields.append(("目的地", sale["destination"]))
    if sale["status"] != "delivered":
        paper.notes.append("货物尚未交付, 追溯码在出库时生成。")
    return paper


def shipment_delivery_note(conn: psycopg.Connection, shipment_id: int) -> Paper:
    """The delivery note of a forward-order shipment. ``NotFound`` if absent."""
    with conn.cursor(row_factory=dict_row) as cur:
        r = cur.execute(
            f"""SELECT x.*, lt.harvested_on, t.name_zh AS township_zh, od.buyer_id, od.destination,
                       b.name AS buyer_name, w.name AS site_name
                FROM shipments x {_LOT_JOIN} JOIN orders od ON od.order_id = x.order_id
                JOIN buyers b ON b.buyer_id = od.buyer_id LEFT JOIN warehouses w ON w.warehouse_id = x.from_warehouse_id
                WHERE x.shipment_id = %s""", (shipment_id,)).fetchone()
    if r is None:
        raise NotFound(f"shipment {shipment_id} not found", "发货记录不存在", shipment_id=shipment_id)
    number = f"SH-{r['shipment_id']:08d}"
    paper = Paper("delivery_note", number, "送货单 (订单农业)",
                  [("单号", number), ("开单方", ISSUER), ("订单号", r["order_id"]),
                   ("发货仓库", f"{r['site_name'] or ''} ({r['from_warehouse_id'] or ''})"),
                   ("购货方", r["buyer_name"]), ("目的地", r["destination"]), ("发货时间", _local(r["shipped_at"]))])
    paper.rows.append(_line(1, r["order_id"], r))
    paper.total_kg = float(r["kg"])
    paper.total_fen = int(r["amount_fen"])
    return paper


def buyer_statement(conn: psycopg.Connection, buyer_id: str, date_from: date, date_to: date) -> Paper:
    """A buyer's statement for ``date_from``..``date_to`` (Asia/Shanghai days): every delivered spot line
    and forward shipment in the period, oldest first. ``Invalid`` for a reversed or over-a-year period."""
    if not date(2000, 1, 1) <= date_from <= date_to <= date(2100, 12, 31) or \
            (date_to - date_from).days >= MAX_STATEMENT_DAYS:
        raise Invalid("the period must run forward and be at most a year", "对账期间不正确", field="date_to")
    t0 = datetime.combine(date_from, time(0), SHANGHAI)
    t1 = datetime.combine(date_to + timedelta(days=1), time(0), SHANGHAI)
    with conn.cursor(row_factory=dict_row) as cur:
        buyer = cur.execute("SELECT buyer_id, name, city, contact FROM buyers WHERE buyer_id = %s",
                            (buyer_id,)).fetchone()
        if buyer is None:
            raise NotFound(f"buyer {buyer_id} not found", "采购商不存在", buyer_id=buyer_id)
        rows = cur.execute(
            f"""SELECT * FROM (
                  SELECT s.delivered_at AS at, s.sale_id AS doc_no, x.lot_id, x.grade, x.kg, x.price_fen_per_kg,
                         x.amount_fen, x.trace_code, lt.harvested_on, t.name_zh AS township_zh
                  FROM spot_sale_lines x JOIN spot_sales s USING (sale_id) {_LOT_JOIN}
                  WHERE s.buyer_id = %(b)s AND s.status = 'delivered' AND s.delivered_at >= %(t0)s
                    AND s.delivered_at < %(t1)s
                  UNION ALL
                  SELECT x.shipped_at, x.order_id, x.lot_id, x.grade, x.kg, x.price_fen_per_kg, x.amount_fen,
                         x.trace_code, lt.harvested_on, t.name_zh
                  FROM shipments x JOIN orders od ON od.order_id = x.order_id {_LOT_JOIN}
                  WHERE od.buyer_id = %(b)s AND x.shipped_at >= %(t0)s AND x.shipped_at < %(t1)s) q
                ORDER BY at, doc_no, trace_code""", {"b": buyer_id, "t0": t0, "t1": t1}).fetchall()
    number = f"ST-{buyer_id}-{date_from:%Y%m%d}-{date_to:%Y%m%d}"
    paper = Paper("statement", number, "对账单",
                  [("单号", number), ("开单方", ISSUER), ("购货方", f"{buyer['name']} ({buyer_id})"),
                   ("对账期间", f"{date_from.isoformat()} 至 {date_to.isoformat()}"),
                   ("笔数", str(len(rows))), ("生成时间", _local(datetime.now(SHANGHAI)))])
    for i, r in enumerate(rows, 1):
        paper.rows.append(_line(i, r["doc_no"], r))
    paper.total_kg = float(sum(r["kg"] for r in rows))
    paper.total_fen = int(sum(int(r["amount_fen"]) for r in rows))
    paper.notes.append(f"合计金额 (大写): {rmb_upper(paper.total_fen)}")
    paper.notes.append("请核对无误后签字确认; 如有异议请于收到本对账单 7 日内提出。")
    return paper


# ----------------------------------------------------------------------------------- render

def cjk_font_path(explicit: str | None = None) -> str:
    """A font file with Chinese glyphs (see the module docstring); ``FontMissing`` when none is found."""
    if explicit:
        if os.path.exists(explicit):
            return explicit
        raise FontMissing(f"font file {explicit} not found", f"字体文件 {explicit} 不存在")
    if shutil.which("fc-match"):
        for name in _FONT_NAMES:
            try:
                out = subprocess.run(["fc-match", "-f", "%{file}|%{family}", name], capture_output=True, text=True,
                                     timeout=10, check=False).stdout
            except (OSError, subprocess.SubprocessError):
                break
            path, _, family = out.partition("|")
            if path and os.path.exists(path) and name.split()[0].lower() in family.lower():
                return path
    for p in _FONT_PATHS:
        if os.path.exists(p):
            return p
    raise FontMissing("no font with Chinese glyphs found (install fonts-wqy-microhei)",
                      "未找到中文字体 (请安装 fonts-wqy-microhei)")


_WIDTHS = (9, 30, 30, 18, 16, 21, 20, 21, 24, 48)   #: mm, landscape A4 (277 mm printable)


def to_pdf(paper: Paper, *, font_path: str | None = None) -> bytes:
    """The paper as a PDF (A4 landscape), the CJK font embedded (subset)."""
    from fpdf import FPDF

    path = cjk_font_path(font_path)
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_title(f"{paper.title} {paper.number}")
    pdf.set_author(ISSUER)
    pdf.set_creator("yuncang")
    pdf.add_font("cjk", "", path, collection_font_number=0)
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.cell(0, 10, f"{ISSUER}  {paper.title}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    for i in range(0, len(paper.fields), 2):
        pair = paper.fields[i:i + 2]
        for label, value in pair:
            pdf.cell(138, 6, f"{label}: {value}")
        pdf.ln(6)
    pdf.ln(2)
    pdf.set_font("cjk", size=8)
    for w, h in zip(_WIDTHS, COLUMNS, strict=True):
        pdf.cell(w, 7, h, border=1, align="C")
    pdf.ln(7)
    for row in paper.rows:
        shown = [*row[:7], yuan(row[7]), yuan(row[8]), row[9]]
        for w, v in zip(_WIDTHS, shown, strict=True):
            pdf.cell(w, 6, str(v), border=1, align="L" if isinstance(v, str) and not v[:1].isdigit() else "R")
        pdf.ln(6)
    pdf.set_font("cjk", size=9)
    pdf.cell(sum(_WIDTHS[:6]), 7, "合计", border=1, align="R")
    pdf.cell(_WIDTHS[6], 7, f"{paper.total_kg:g}", border=1, align="R")
    pdf.cell(_WIDTHS[7], 7, "", border=1)
    pdf.cell(_WIDTHS[8], 7, yuan(paper.total_fen), border=1, align="R")
    pdf.cell(_WIDTHS[9], 7, "", border=1)
    pdf.ln(9)
    pdf.cell(0, 6, f"合计金额 (大写): {rmb_upper(paper.total_fen)}    合计重量: {paper.total_kg:g} 公斤",
             new_x="LMARGIN", new_y="NEXT")
    for n in paper.notes:
        pdf.cell(0, 6, n, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(138, 6, "开单人签字:")
    pdf.cell(138, 6, "收货人签字:")
    return bytes(pdf.output())


def to_xlsx(paper: Paper) -> bytes:
    """The paper as an XLSX workbook: one sheet with the header fields, the table and the totals
    (kg and yuan as numbers, so a buyer's accountant can sum them)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = paper.title.split(" ")[0][:31]
    ws.append([f"{ISSUER} {paper.title}"])
    ws["A1"].font = Font(bold=True, size=14)
    for label, value in paper.fields:
        ws.append([label, value])
    ws.append([])
    ws.append(list(COLUMNS))
    head = ws.max_row
    for c in ws[head]:
        c.font = Font(bold=True)
        c.alignment = Alignment(horizontal="center")
    for r in paper.rows:
        ws.append([*r[:7], r[7] / 100, r[8] / 100, r[9]])
        ws.cell(ws.max_row, 8).number_format = "0.00"
        ws.cell(ws.max_row, 9).number_format = "#,##0.00"
    ws.append(["合计", "", "", "", "", "", paper.total_kg, "", paper.total_fen / 100, ""])
    ws.cell(ws.max_row, 9).number_format = "#,##0.00"
    ws.append(["合计金额 (大写)", rmb_upper(paper.total_fen)])
    for n in paper.notes:
        ws.append([n])
    for col, w in zip("ABCDEFGHIJ", (6, 20, 20, 14, 10, 12, 12, 14, 14, 24), strict=True):
        ws.column_dimensions[col].width = w
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
