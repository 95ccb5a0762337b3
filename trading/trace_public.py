"""The consumer's view of a trace code: what helps them judge the fruit, as the orchard's cooperative
chose to disclose it (:mod:`registry.trace_disclosure`), and nothing about people or trade.

From the full trace (:func:`trading.trace.resolve_trace` with ``public=False``) it keeps the trace code,
the product (variety, grade, harvest day, the day it left the warehouse), the origin (the orchard's public
name, township, a 100 m elevation band), the cooperative, certifications, the season's conditions and risk
events — each only if disclosed — and whether the supplier is blacklisted (always: it protects the
consumer). It drops the grower's name and id, the orchard's own name and id, exact elevation and area,
and every trade fact: order and lot ids, kg, buyer, destination, cold room.
"""

from __future__ import annotations

from typing import Any

import psycopg

from registry.trace_disclosure import disclosure


def elevation_band(elevation_m: int | float | None) -> str | None:
    """``612`` -> ``"600-700 m"`` (a band, not a position)."""
    if elevation_m is None:
        return None
    lo = int(elevation_m // 100) * 100
    return f"{lo}-{lo + 100} m"


def consumer_view(conn: psycopg.Connection, full: dict[str, Any]) -> dict[str, Any]:
    """The public trace page's data from the full trace of one code."""
    orchard, lot, ship = full["orchard"], full["lot"], full["shipment"]
    public_name, shows = disclosure(conn, orchard["orchard_id"])
    shipped = ship.get("shipped_at")
    product: dict[str, Any] = {"shipped_on": shipped.date() if hasattr(shipped, "date") else shipped}
    if "variety" in shows:
        product["variety"] = orchard.get("variety")
    if "grade" in shows:
        product["grade"] = ship.get("grade")
    if "harvest_date" in shows:
        product["harvested_on"] = lot.get("harvested_on")
    origin: dict[str, Any] = {"orchard": public_name}
    if "township" in shows:
        origin["township_zh"], origin["township_en"] = orchard.get("township_zh"), orchard.get("township_en")
    if "elevation_band" in shows:
        origin["elevation"] = elevation_band(orchard.get("elevation_m"))
    out: dict[str, Any] = {"trace_code": full["trace_code"], "product": product, "origin": origin}
    if "cooperative" in shows:
        out["cooperative"] = full["grower"].get("cooperative")
    if "certifications" in shows:
        out["certifications"] = full["certifications"]
    if "conditions" in shows:
        out["conditions"] = full["sensor_summary"]
    if "risk_events" in shows:
        out["risk_events"] = [{"kind": r["kind"], "severity": r["severity"], "title_zh": r["title_zh"],
                               "title_en": r["title_en"], "on": r["raised_at"].date()}
                              for r in full["risk_events"]]
    out["supplier_blacklisted"] = full["supplier_blacklisted"]
    out["notes"] = list(full["notes"])
    return out
