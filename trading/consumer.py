"""What a consumer sees when scanning a lot's QR code (GS1 Digital Link), and the complaints they file.

Public by design: origin as the township (乡镇) — never a grower's name, phone, orchard name or exact
location — harvest dates, grade with its size class, certifications (scheme names), the season in a
few numbers and one small chart (daily air temperature min/max, °C, and rain, mm, from the contributing
orchards' own gateways, through the ``weather`` function the caller passes: ``ingest.read.daily_weather``),
and the cold-chain record. No buyer, order,
destination or traded kg (trade data stays with the trade).

The GS1 Digital Link resolver (``linkset``) answers machines with the links GS1's resolver standard
defines (GS1-Conformant resolver standard 1.1: ``gs1:pip`` product information page,
``gs1:traceability`` the EPCIS events, ``gs1:certificationInfo``).

Complaints (投诉) are recorded against the lot, idempotent on a client-generated id, and listed for
managers; a complaint is text (1-1,000 characters) with an optional contact (≤ 100 characters).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from registry.grades import GRADES
from trading import cold_chain
from trading.errors import Invalid, NotFound
from trading.gs1 import Gs1Config, lot_uri, parse_link
from trading.quality import certifications_for_orchard

COMPLAINT_CATEGORIES = {"quality": "品质问题", "damage": "破损/腐烂", "weight": "重量不足", "label": "标签/追溯信息",
                        "other": "其他"}
_GRADE = {g.code: g for g in GRADES}
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def find_object(conn: psycopg.Connection, link: str) -> dict[str, Any]:
    """The trace object a Digital Link (URI or path, ``/01/../10/..`` or ``/00/<sscc>``) names."""
    try:
        p = parse_link(link)
    except ValueError as exc:
        raise Invalid(str(exc), "不是有效的 GS1 数字链接", field="link") from exc
    with conn.cursor(row_factory=dict_row) as cur:
        if p.sscc:
            row = cur.execute("SELECT * FROM trace_objects WHERE sscc = %s", (p.sscc,)).fetchone()
        else:
            row = cur.execute("SELECT * FROM trace_objects WHERE gtin = %s AND lot_number = %s",
                              (p.gtin, p.lot)).fetchone()
    if row is None:
        raise NotFound("no lot with this GS1 Digital Link", "没有找到该批次", link=link)
    return row


def _origins(conn: psycopg.Connection, object_id: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """WITH RECURSIVE up(object_id) AS (
                   SELECT %s::text UNION
                   SELECT e.from_object FROM trace_edges e JOIN up ON e.to_object = up.object_id)
               SELECT o.orchard_id, o.harvested_on, o.kg, t.name_zh AS township_zh, t.name_en AS township_en,
                      orc.elevation_m
                 FROM up JOIN trace_objects o USING (object_id)
                 JOIN townships t ON t.township_id = o.township_id
                 JOIN orchards orc ON orc.orchard_id = o.orchard_id
                WHERE o.kind = 'harvest_lot' ORDER BY o.kg DESC, o.orchard_id""", (object_id,)).fetchall()


#: (conn, orchard_ids, first day, last day) -> daily series, as ``ingest.read.daily_weather``
DailyWeather = Callable[[psycopg.Connection, list[str], date, date], dict[str, list[Any]]]


def public_lot(conn: psycopg.Connection, cfg: Gs1Config, link: str, now: datetime, *, weather: DailyWeather,
               temps: cold_chain.RoomTemperatures) -> dict[str, Any]:
    """Everything the consumer page shows for the lot or unit a Digital Link names (see module docstring)."""
    obj = find_object(conn, link)
    origins = _origins(conn, obj["object_id"])
    if not origins:
        raise NotFound("this lot has no recorded harvest", "该批次没有采收记录")
    days = sorted({o["harvested_on"] for o in origins})
    certs: dict[str, dict[str, Any]] = {}
    for o in origins:
        for c in certifications_for_orchard(conn, o["orchard_id"], on=o["harvested_on"]):
            certs.setdefault(c.scheme, {"scheme": c.scheme, "valid_until": c.valid_until})
    grade = _GRADE.get(obj["grade"] or "")
    chart = weather(conn, [o["orchard_id"] for o in origins], date(days[-1].year, 3, 1), days[-1])
    highs = [t for t in chart["tmax_c"] if t is not None]
    lows = [t for t in chart["tmin_c"] if t is not None]
    return {
        "link": lot_uri(cfg, obj["gtin"], obj["lot_number"]),
        "trace_code": obj["object_id"],
        "kind": obj["kind"],
        "product_zh": "巫山脆李", "product_en": "Wushan crisp plum",
        "grade": None if grade is None else {"code": grade.code, "label_zh": grade.label_zh,
                                             "label_en": grade.label_en},
        "origin": {"county_zh": "重庆市巫山县", "county_en": "Wushan County, Chongqing",
                   "townships_zh": sorted({o["township_zh"] for o in origins}),
                   "townships_en": sorted({o["township_en"] for o in origins}),
                   "elevation_m": [min(o["elevation_m"] for o in origins), max(o["elevation_m"] for o in origins)],
                   "orchards": len({o["orchard_id"] for o in origins})},
        "harvested": {"from": days[0], "to": days[-1]},
        "certifications": sorted(certs.values(), key=lambda c: c["scheme"]),
        "season": {"days_with_data": len(chart["day"]), "tmax_c": max(highs) if highs else None,
                   "tmin_c": min(lows) if lows else None, "rain_mm": round(sum(chart["rain_mm"]), 1),
                   "frost_days": sum(1 for t in lows if t < 0.0), "heat_days": sum(1 for t in highs if t >= 35.0)},
        "chart": chart,
        "cold_chain": cold_chain.lot_record(conn, obj["object_id"], now, temps),
        "complaint_categories": COMPLAINT_CATEGORIES,
    }


def linkset(cfg: Gs1Config, link: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The GS1 resolver linkset (RFC 9264 ``application/linkset+json``) for a lot's Digital Link."""
    base = cfg.resolver.rstrip("/")
    anchor = lot_uri(cfg, obj["gtin"], obj["lot_number"])
    events = f"{base}/api/v1/epcis/events?MATCH_anyEPCClass={anchor}"
    if obj["kind"] == "packed_unit":
        events += f"&MATCH_anyEPC={base}/00/{obj['sscc']}"
    return {"linkset": [{
        "anchor": anchor,
        "https://gs1.org/voc/defaultLink": [{"href": anchor + "?linkType=gs1:pip", "type": "text/html"}],
        "https://gs1.org/voc/pip": [{"href": anchor + "?linkType=gs1:pip", "type": "text/html",
                                     "title": "巫山脆李 产品与产地信息", "hreflang": ["zh-CN"]}],
        "https://gs1.org/voc/traceability": [{"href": events, "type": "application/ld+json",
                                              "title": "EPCIS 2.0 events"}],
    }]}


def file_complaint(conn: psycopg.Connection, *, link: str, category: str, text: str, contact: str | None,
                   client_id: str | None) -> dict[str, Any]:
    """Record a consumer complaint against the lot; a retried submission (same ``client_id``) is one."""
    if category not in COMPLAINT_CATEGORIES:
        raise Invalid(f"category must be one of {sorted(COMPLAINT_CATEGORIES)}", "投诉类别不正确", field="category")
    text = (text or "").strip()
    if not 1 <= len(text) <= 1000:
        raise Invalid("text must be 1-1000 characters", "投诉内容须为 1-1000 字", field="text")
    contact = (contact or "").strip() or None
    if contact is not None and len(contact) > 100:
        raise Invalid("contact must be at most 100 characters", "联系方式过长", field="contact")
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise Invalid("client_id must be 8-64 letters, digits, - or _", "请求编号不正确", field="client_id")
    obj = find_object(conn, link)
    cid = client_id or uuid.uuid4().hex
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """INSERT INTO trace_complaints (client_id, object_id, category, text, contact)
               VALUES (%s, %s, %s, %s, %s) ON CONFLICT (client_id) DO NOTHING
               RETURNING complaint_id, object_id, category, submitted_at, status""",
            (cid, obj["object_id"], category, text, contact)).fetchone()
        if row is None:
            row = cur.execute("SELECT complaint_id, object_id, category, submitted_at, status FROM trace_complaints "
                              "WHERE client_id = %s", (cid,)).fetchone()
    conn.commit()
    return dict(row)


def list_complaints(conn: psycopg.Connection, *, status: str | None = "open", limit: int = 100,
                    offset: int = 0) -> list[dict[str, Any]]:
    """Complaints for managers, newest first, with the lot's origin townships (paged)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT c.complaint_id, c.object_id, c.category, c.text, c.contact, c.submitted_at, c.status,
                      o.grade, o.kind
                 FROM trace_complaints c JOIN trace_objects o USING (object_id)
                WHERE (%s::text IS NULL OR c.status = %s)
                ORDER BY c.submitted_at DESC, c.complaint_id DESC LIMIT %s OFFSET %s""",
            (status, status, limit, offset)).fetchall()
