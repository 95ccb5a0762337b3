"""Trace codes (质量安全追溯): a shipment's code resolves to its lot, orchard, harvest date, grower,
certifications, the orchard's season sensor summary and its risk events.

The season's sensor summary comes from ingest, which owns the readings (trading does not depend on
ingest): the caller passes ``sensor_summary`` (``ingest.read.season_summary``); without it the rest is
returned with ``sensor_summary = None`` and a note saying so. For the public (the buyer's customers) the grower's
name is masked (王*华) and the phone is never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from trading.errors import NotFound
from trading.quality import certifications_for_orchard, is_orchard_blacklisted

SHANGHAI = ZoneInfo("Asia/Shanghai")


def mask_name(name: str) -> str:
    """王国华 -> 王*华, 王华 -> 王*, single character unchanged."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


#: (conn, orchard_id, first local day, last local day) -> summary dict, as ``ingest.read.season_summary``
SensorSummary = Callable[[psycopg.Connection, str, date, date], "dict[str, Any]"]


def resolve_trace(conn: psycopg.Connection, code: str, *, public: bool = True,
                  sensor_summary: SensorSummary | None = None) -> dict[str, Any]:
    """Everything a trace code tells. ``NotFound`` for an unknown code. With ``public`` the grower's name is
    masked and contact details are left out. ``sensor_summary`` reads the orchard's season of sensor data
    (from 1 January to the harvest day)."""
    code = code.strip().upper()
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT s.trace_code, s.order_id, s.grade, s.kg, s.shipped_at, o.destination, b.name AS buyer_name,
                      l.lot_id, l.harvested_on, l.received_at, l.cold_room_id, l.season,
                      orc.orchard_id, orc.name AS orchard_name, orc.elevation_m, orc.area_mu, orc.variety,
                      orc.township_id, t.name_zh AS township_zh, t.name_en AS township_en,
                      g.grower_id, g.name AS grower_name, c.name AS cooperative_name
               FROM shipments s JOIN orders o USING (order_id) JOIN buyers b ON b.buyer_id = o.buyer_id
               JOIN lots l ON l.lot_id = s.lot_id JOIN orchards orc ON orc.orchard_id = l.orchard_id
               JOIN townships t ON t.township_id = orc.township_id JOIN growers g ON g.grower_id = orc.grower_id
               LEFT JOIN cooperatives c ON c.cooperative_id = coalesce(orc.cooperative_id, g.cooperative_id)
               WHERE s.trace_code = %s""", (code,)).fetchone()
    if row is None:
        raise NotFound(f"trace code {code} not found", f"追溯码 {code} 不存在", trace_code=code)
    harvested: date = row["harvested_on"]
    season_start = date(harvested.year, 1, 1)
    summary = sensor_summary(conn, row["orchard_id"], season_start, harvested) if sensor_summary else None
    with conn.cursor(row_factory=dict_row) as cur:
        risks = cur.execute(
            """SELECT kind, severity, title_zh, title_en, raised_at, resolved_at FROM alerts
               WHERE orchard_id = %s AND raised_at >= %s AND raised_at < %s AND kind <> 'device_offline'
               ORDER BY raised_at""",
            (row["orchard_id"], datetime.combine(season_start, time(0), SHANGHAI),
             datetime.combine(harvested + timedelta(days=1), time(0), SHANGHAI))).fetchall()
    certs = certifications_for_orchard(conn, row["orchard_id"], on=harvested)
    out: dict[str, Any] = {
        "trace_code": row["trace_code"],
        "shipment": {"order_id": row["order_id"], "grade": row["grade"], "kg": row["kg"],
                     "shipped_at": row["shipped_at"], "destination": row["destination"],
                     "buyer": row["buyer_name"]},
        "lot": {"lot_id": row["lot_id"], "harvested_on": harvested, "received_at": row["received_at"],
                "cold_room_id": row["cold_room_id"], "season": row["season"]},
        "orchard": {"orchard_id": row["orchard_id"], "name": row["orchard_name"],
                    "township_id": row["township_id"], "township_zh": row["township_zh"],
                    "township_en": row["township_en"], "elevation_m": row["elevation_m"],
                    "area_mu": row["area_mu"], "variety": row["variety"]},
        "grower": {"name": mask_name(row["grower_name"]) if public else row["grower_name"],
                   "cooperative": row["cooperative_name"]},
        "certifications": [{"scheme": c.scheme, "certificate_no": c.certificate_no, "issued_on": c.issued_on,
                            "valid_until": c.valid_until} for c in certs],
        "supplier_blacklisted": is_orchard_blacklisted(conn, row["orchard_id"]),
        "sensor_summary": summary,
        "risk_events": risks,
        "notes": [],
    }
    if not public:
        out["grower"]["grower_id"] = row["grower_id"]
    if summary is None:
        out["notes"].append("sensor data unavailable: no sensor summary was asked for")
    elif summary["days_with_data"] == 0:
        out["notes"].append("no sensor readings recorded for this orchard in the season")
    return out
