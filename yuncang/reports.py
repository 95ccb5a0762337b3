"""The periodic statistics report (数据统计分析体系, as the county's policy papers ask): a week, a month or
a season of the platform in figures, as XLSX (openpyxl) and PDF (fpdf2, CJK text in WenQuanYi Micro Hei
from Debian's ``fonts-wqy-microhei``).

Sections (each a sheet of the workbook and a table of the PDF):

* **概要 / Summary** — orchards and area (mu) with a reporting gateway, gateways reporting, data
  completeness (gateway-hours with data / gateway-hours in the period);
* **预测与采收 / Forecast vs harvest** — the latest forecast's P50 per grade against the kg the
  warehouse received from the season's lots so far;
* **订单 / Orders** — forward orders, kg ordered, committed and expected (latest allocation run),
  shipped (in the period and in the season), fill rates;
* **库存 / Stock** — per cold room and grade, kg held and capacity;
* **收入 / Income** — grower statements' total and the part reaching poverty-alleviated households (fen
  stored, yuan shown).

The figures come from each table owner's read module; this module only arranges them. The scheduler's
``statistics_report`` job stores the county's weekly report in ``statistics_reports``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from ingest.read import reporting_coverage
from orchard_models.read import forecast_supply
from registry.grades import GRADES
from registry.read import EVERYTHING, OrchardScope
from trading import settlement, warehouse
from trading.errors import TradingError
from trading.read import current_season, order_figures, received_by_grade

SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIODS = ("week", "month", "season")
#: where Debian's fonts-wqy-microhei puts its font (CI installs the package)
CJK_FONTS = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
             Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"))
SHEETS = ("概要 Summary", "预测与采收 Forecast vs harvest", "订单 Orders", "库存 Stock", "收入 Income")


@dataclass(frozen=True)
class Period:
    kind: str
    start: date  #: first local (Asia/Shanghai) day
    end: date    #: day after the last

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()} – {(self.end - timedelta(days=1)).isoformat()}"


def period_before(kind: str, today: date) -> Period:
    """The last complete week (Monday-Sunday) or month before ``today``; for 'season', 1 January of
    today's year to today."""
    if kind == "week":
        monday = today - timedelta(days=today.weekday())
        return Period(kind, monday - timedelta(days=7), monday)
    if kind == "month":
        first = today.replace(day=1)
        return Period(kind, (first - timedelta(days=1)).replace(day=1), first)
    if kind == "season":
        return Period(kind, date(today.year, 1, 1), today + timedelta(days=1))
    raise ValueError(f"period must be one of {PERIODS}")


def _utc(d: date) -> datetime:
    return datetime.combine(d, time(0), SHANGHAI).astimezone(UTC)


def gather(conn: psycopg.Connection, period: Period, *, cooperative_id: str | None = None) -> dict[str, Any]:
    """The report's figures (JSON-ready: kg and fen as numbers, dates as ISO strings)."""
    scope = OrchardScope(cooperative_id=cooperative_id) if cooperative_id else EVERYTHING
    t0, t1 = _utc(period.start), _utc(period.end)
    season = current_season(conn)
    cov = reporting_coverage(conn, scope=scope, start=t0, end=t1)
    fc: dict[str, float] = {}
    for r in forecast_supply(conn, cooperative_id=cooperative_id):
        fc[r["grade"]] = fc.get(r["grade"], 0.0) + float(r["p50_kg"])
    got = received_by_grade(conn, season=season, until=t1, cooperative_id=cooperative_id)
    stock = [{"cold_room": s["name"], "grade": s["grade"], "kg": float(s["kg"]), "capacity_kg": float(s["capacity_kg"])}
             for s in warehouse.stock(conn) if s["grade"]]
    try:
        rep = settlement.statements(conn, season=season, cooperative_id=cooperative_id)
        income = {"total_fen": int(rep.totals.get("total_fen", 0)),
                  "poverty_alleviated_fen": int(rep.poverty_alleviated.get("total_fen", 0)),
                  "households": int(rep.poverty_alleviated.get("households", 0)),
                  "growers": int(rep.totals.get("growers", 0))}
    except TradingError:
        conn.rollback()
        income = {"total_fen": 0, "poverty_alleviated_fen": 0, "households": 0, "growers": 0}
    return {
        "period": period.kind, "start": period.start.isoformat(), "end": period.end.isoformat(),
        "label": period.label, "season": season, "cooperative_id": cooperative_id,
        "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "coverage": cov,
        "forecast_vs_harvest": [{"grade": g.code, "label_zh": g.label_zh, "label_en": g.label_en,
                                 "forecast_p50_kg": round(fc.get(g.code, 0.0), 1),
                                 "received_kg": round(got.get(g.code, 0.0), 1)} for g in GRADES],
        "orders": order_figures(conn, season=season, start=t0, end=t1),
        "stock": stock,
        "income": income,
    }


def _share(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def tables(r: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(sheet name, header, rows) per section, bilingual labels, numbers as numbers."""
    c, o, inc = r["coverage"], r["orders"], r["income"]
    summary = [
        ["期间 Period", r["label"]], ["产季 Season", r["season"]],
        ["范围 Scope", r["cooperative_id"] or "全县 County"],
        ["果园 Orchards", c["orchards"]], ["在线果园 Orchards online", c["orchards_online"]],
        ["面积(亩) Area (mu)", round(c["area_mu"], 1)],
        ["在线面积(亩) Area online (mu)", round(c["area_online_mu"], 1)],
        ["网关 Gateways", c["devices"]], ["上报网关 Gateways reporting", c["devices_reporting"]],
        ["数据完整率 Data completeness", _share(c["completeness"])],
    ]
    fvh = [[f"{x['label_zh']} {x['label_en']}", x["forecast_p50_kg"], x["received_kg"]]
           for x in r["forecast_vs_harvest"]]
    orders = [["订单数 Orders", o["orders"]], ["订购(公斤) Ordered (kg)", o["ordered_kg"]],
              ["已确定(公斤) Committed (kg)", o["committed_kg"]], ["预计(公斤) Expected (kg)", o["expected_kg"]],
              ["本期发货(公斤) Shipped in period (kg)", o["shipped_in_period_kg"]],
              ["本季发货(公斤) Shipped in season (kg)", o["shipped_kg"]],
              ["确定率 Committed / ordered", _share(o["committed_share"])],
              ["履约率 Shipped / ordered", _share(o["shipped_share"])]]
    stock = [[s["cold_room"], s["grade"], s["kg"], s["capacity_kg"]] for s in r["stock"]]
    income = [["结算总额(元) Statements total (yuan)", inc["total_fen"] / 100],
              ["脱贫户收入(元) To poverty-alleviated households (yuan)", inc["poverty_alleviated_fen"] / 100],
              ["脱贫户 Households", inc["households"]], ["果农 Growers", inc["growers"]]]
    return [
        (SHEETS[0], ["项目 Item", "数值 Value"], summary),
        (SHEETS[1], ["等级 Grade", "预测P50(公斤) Forecast P50 (kg)", "已入库(公斤) Received (kg)"], fvh),
        (SHEETS[2], ["项目 Item", "数值 Value"], orders),
        (SHEETS[3], ["冷库 Cold room", "等级 Grade", "库存(公斤) Stock (kg)", "容量(公斤) Capacity (kg)"], stock),
        (SHEETS[4], ["项目 Item", "数值 Value"], income),
    ]


def to_xlsx(r: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, head, rows in tables(r):
        ws = wb.create_sheet(name[:31])
        ws.append([f"巫山脆李云仓 统计报告 {r['label']}"])
        ws.append(head)
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(row)
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, float):
                    cell.number_format = "#,##0.0"
        for col, width in zip("ABCD", (44, 24, 24, 24), strict=False):
            ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def cjk_font() -> Path:
    for p in CJK_FONTS:
        if p.exists():
            return p
    raise FileNotFoundError("no CJK font for the PDF report: apt-get install fonts-wqy-microhei")


def to_pdf(r: dict[str, Any]) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(format="A4")
    pdf.add_font("wqy", fname=str(cjk_font()))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("wqy", size=16)
    pdf.cell(0, 10, "巫山脆李云仓 统计报告 Statistics report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("wqy", size=10)
    pdf.cell(0, 6, f"{r['label']} · {r['cooperative_id'] or '全县 County'} · 产季 {r['season']}",
             new_x="LMARGIN", new_y="NEXT")
    for name, head, rows in tables(r):
        pdf.ln(4)
        pdf.set_font("wqy", size=12)
        pdf.cell(0, 8, name, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("wqy", size=9)
        headings = FontFace(emphasis="", fill_color=(238, 230, 236))  # one CJK face: no bold variant
        with pdf.table(text_align="LEFT", first_row_as_headings=True, headings_style=headings) as table:
            for row in [head, *rows]:
                line = table.row()
                for v in row:
                    line.cell(f"{v:,.1f}" if isinstance(v, float) else str(v))
    return bytes(pdf.output())


def make(conn: psycopg.Connection, period: Period, *, cooperative_id: str | None = None
         ) -> tuple[dict[str, Any], bytes, bytes]:
    """(figures, xlsx, pdf) of one report."""
    r = gather(conn, period, cooperative_id=cooperative_id)
    return r, to_xlsx(r), to_pdf(r)


def store(conn: psycopg.Connection, period: Period, *, cooperative_id: str | None = None) -> int:
    """Make a report and keep it in ``statistics_reports``; returns its id (the caller commits)."""
    r, xlsx, pdf = make(conn, period, cooperative_id=cooperative_id)
    row = conn.execute(
        "INSERT INTO statistics_reports (period, period_start, period_end, cooperative_id, figures, xlsx, pdf) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING report_id",
        (period.kind, period.start, period.end, cooperative_id, Jsonb(json.loads(json.dumps(r))), xlsx, pdf),
    ).fetchone()
    assert row is not None
    return int(row[0])


def latest_stored(conn: psycopg.Connection, *, cooperative_id: str | None = None) -> list[dict[str, Any]]:
    """The newest stored report of each period for a cooperative (or the county): id, period, dates, made."""
    rows = conn.execute(
        """SELECT DISTINCT ON (period) report_id, period, period_start, period_end, created_at
           FROM statistics_reports WHERE cooperative_id IS NOT DISTINCT FROM %s
           ORDER BY period, created_at DESC""", (cooperative_id,)).fetchall()
    return [{"report_id": r[0], "period": r[1], "start": r[2], "end": r[3], "created_at": r[4]} for r in rows]


def stored_file(conn: psycopg.Connection, report_id: int, fmt: str) -> tuple[bytes, str | None, date] | None:
    """(file bytes, cooperative_id, period start) of a stored report, None if there is none."""
    col = {"xlsx": "xlsx", "pdf": "pdf"}[fmt]
    row = conn.execute(f"SELECT {col}, cooperative_id, period_start FROM statistics_reports WHERE report_id = %s",
                       (report_id,)).fetchone()
    return None if row is None else (bytes(row[0]), row[1], row[2])


def scheduled_report(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Scheduler job: the county's report of the week just ended (once per week and period)."""
    period = period_before("week", now.astimezone(SHANGHAI).date())
    done = conn.execute("SELECT report_id FROM statistics_reports WHERE period = 'week' AND period_start = %s "
                        "AND cooperative_id IS NULL", (period.start,)).fetchone()
    if done:
        return {"period": period.label, "report_id": done[0], "made": False}
    return {"period": period.label, "report_id": store(conn, period), "made": True}
