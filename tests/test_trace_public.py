"""The public trace page names nobody and shows no trade data; the cooperative chooses what consumers
see (issue 14 #2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from registry.errors import Invalid
from registry.trace_disclosure import DISCLOSABLE, set_public_name, set_trace_shows
from trading.trace import mask_name
from trading.trace_public import consumer_view, elevation_band


@pytest.fixture(scope="module")
def trace_db(make_registry_db: Callable[..., str]) -> str:
    return make_registry_db(seed_no=19, orchards=6, area_mu=600.0)


def _full(conn: psycopg.Connection) -> dict[str, Any]:
    """A full trace (as trading.trace.resolve_trace(public=False) gives it) for a real seeded orchard."""
    o = conn.execute(
        """SELECT o.orchard_id, o.name, o.elevation_m, o.area_mu, o.variety, t.name_zh, t.name_en, g.grower_id,
                  g.name, g.phone, c.name, o.cooperative_id
           FROM orchards o JOIN townships t USING (township_id) JOIN growers g USING (grower_id)
           LEFT JOIN cooperatives c ON c.cooperative_id = o.cooperative_id
           WHERE o.cooperative_id IS NOT NULL ORDER BY o.orchard_id LIMIT 1""").fetchone()
    assert o is not None
    return {
        "trace_code": "WS27-ABCD-EFGH-JKMN",
        "shipment": {"order_id": "ORD-2027-SECRET1", "grade": "L", "kg": 1234, "destination": "yantai",
                     "shipped_at": datetime(2027, 7, 30, 8, tzinfo=UTC), "buyer": "烟台某超市"},
        "lot": {"lot_id": "LOT-2027-SECRET2", "harvested_on": date(2027, 7, 27), "cold_room_id": "CR-SECRET3",
                "received_at": datetime(2027, 7, 28, tzinfo=UTC), "season": 2027},
        "orchard": {"orchard_id": o[0], "name": o[1], "township_id": "x", "township_zh": o[5], "township_en": o[6],
                    "elevation_m": o[2], "area_mu": o[3], "variety": o[4]},
        "grower": {"name": o[8], "cooperative": o[10], "grower_id": o[7]},
        "certifications": [{"scheme": "green", "certificate_no": "WSCQ-1"}],
        "supplier_blacklisted": False,
        "sensor_summary": {"frost_days": 1, "days_with_data": 2},
        "risk_events": [{"kind": "frost", "severity": "warning", "title_zh": "霜冻", "title_en": "Frost",
                         "raised_at": datetime(2027, 3, 10, 2, tzinfo=UTC), "resolved_at": None}],
        "notes": [], "_private": {"orchard_name": o[1], "grower_name": o[8], "phone": o[9], "coop": o[11],
                                  "grower_id": o[7], "area": o[3], "elevation": o[2]},
    }


def test_consumers_see_origin_and_quality_not_people_or_trade(trace_db: str) -> None:
    with psycopg.connect(trace_db) as c:
        full = _full(c)
        view = consumer_view(c, full)
    text = json.dumps(view, ensure_ascii=False, default=str)
    p = full["_private"]
    for secret in (p["grower_name"], mask_name(p["grower_name"]), p["orchard_name"], p["phone"], p["grower_id"],
                   "SECRET", "yantai", "烟台", "1234", "order", "lot_id", "kg", "buyer", "destination"):
        assert str(secret) not in text, secret
    assert view["product"] == {"shipped_on": date(2027, 7, 30), "variety": full["orchard"]["variety"], "grade": "L",
                               "harvested_on": date(2027, 7, 27)}
    assert view["origin"]["township_zh"] == full["orchard"]["township_zh"]
    assert view["origin"]["elevation"] == elevation_band(p["elevation"]) and str(p["elevation"]) not in text
    assert view["certifications"] and view["conditions"]["frost_days"] == 1
    assert view["risk_events"][0]["kind"] == "frost"


def test_the_cooperative_chooses_what_is_shown(trace_db: str) -> None:
    with psycopg.connect(trace_db) as c:
        full = _full(c)
        coop, oid = full["_private"]["coop"], full["orchard"]["orchard_id"]
        assert set_trace_shows(c, coop, ["grade", "harvest_date"]) == ("harvest_date", "grade")
        set_public_name(c, oid, "巫山云端脆李园")
        view = consumer_view(c, full)
        assert view["origin"] == {"orchard": "巫山云端脆李园"}
        assert set(view) == {"trace_code", "product", "origin", "supplier_blacklisted", "notes"}
        assert set(view["product"]) == {"shipped_on", "grade", "harvested_on"}
        with pytest.raises(Invalid):
            set_trace_shows(c, coop, ["grower_name"])
        with pytest.raises(Invalid):
            set_public_name(c, oid, "x" * 61)
        set_trace_shows(c, coop, None)
        set_public_name(c, oid, None)
        view = consumer_view(c, full)
        assert oid in view["origin"]["orchard"] and full["_private"]["orchard_name"] != view["origin"]["orchard"]
        assert set(DISCLOSABLE) >= {"township", "grade"}
        c.rollback()


def test_cli_sets_what_consumers_see(trace_db: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "YUNCANG_DATABASE_URL": trace_db, "YUNCANG_MQTT_URL": "mqtt://u:p@127.0.0.1:1"}
    with psycopg.connect(trace_db) as c:
        coop = c.execute("SELECT cooperative_id FROM cooperatives ORDER BY 1 LIMIT 1").fetchone()[0]  # type: ignore[index]
    cmd = [sys.executable, "-m", "yuncang", "trace-page", "--cooperative", coop]
    r = subprocess.run([*cmd, "--show", "grade,township"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "township, grade" in r.stdout, r.stderr
    bad = subprocess.run([*cmd, "--show", "phone"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot disclose" in bad.stderr
    with psycopg.connect(trace_db) as c:
        assert c.execute("SELECT trace_shows FROM cooperatives WHERE cooperative_id = %s", (coop,)).fetchone() == (
            ["grade", "township"],)
