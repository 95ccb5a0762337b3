"""Fixtures for the web tests (API, pages, browser): one migrated, seeded database with demo users.

Imported by the ``test_api_*``, ``test_web_*`` and ``test_browser_*`` modules; the database is made
once per test session and dropped at its end (``make_database``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest.samples import store_readings
from registry.seed import SeedParams, seed
from yuncang.app import create_app
from yuncang.auth import DEMO_PASSWORDS, create_user, seed_demo_users
from yuncang.db import make_pool
from yuncang.migrations import migrate
from yuncang.settings import Settings

#: Two test buyers with their own accounts (trading's buyers table, when present, gets rows too).
TEST_BUYERS = ("buyer-test-a", "buyer-test-b")
TEST_PASSWORD = "correct horse battery"


def _ensure_buyers(conn: psycopg.Connection) -> None:
    """Trading's demo buyers, warehouse, and the two test buyers (through trading's own API)."""
    from trading.buyers import create_buyer, seed_buyers
    from trading.warehouse import seed_warehouse

    seed_buyers(conn)
    seed_warehouse(conn)
    for b in TEST_BUYERS:
        create_buyer(conn, buyer_id=b, name=f"测试采购商 {b}", kind="supermarket", city_name="yantai")
    conn.commit()


@pytest.fixture(scope="session")
def web_db(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams())
        _ensure_buyers(conn)
        seed_demo_users(conn)
        for b in TEST_BUYERS:
            create_user(conn, username=f"{b}-user", password=TEST_PASSWORD, role="buyer", buyer_id=b)
        conn.commit()
    return url


@pytest.fixture(scope="session")
def web_app(web_db: str) -> Iterator[Any]:
    pool = make_pool(web_db, min_size=1, max_size=6, name="web-tests")
    app = create_app(Settings(database_url=web_db), pool)
    yield app
    pool.close()


@pytest.fixture(scope="session")
def client(web_app: Any) -> Iterator[TestClient]:
    with TestClient(web_app) as c:
        yield c


def token_for(client: TestClient, username: str, password: str | None = None, role: str | None = None) -> str:
    pw = password or DEMO_PASSWORDS[role or "grower"]
    r = client.post("/api/v1/auth/token", json={"username": username, "password": pw})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: The orchard (and its grower) that gets sensor data, a forecast and an alert in the sample data.
SAMPLE_GROWER = "G-00001"
SAMPLE_DAYS = 20


@pytest.fixture(scope="session")
def sample(web_db: str) -> dict[str, Any]:
    """Sensor readings (hourly, SAMPLE_DAYS days, through ingest's tables and rollup refresh), a device
    health row, a forecast run and an open alert for SAMPLE_GROWER's orchard."""
    from datetime import UTC, date, datetime, timedelta

    from ingest import rollups
    from ingest.storage import ensure_partitions
    from registry.alerts import Alert, raise_alerts

    with psycopg.connect(web_db) as conn:
        oid, dev, coop = conn.execute(
            "SELECT o.orchard_id, d.device_id, o.cooperative_id FROM orchards o JOIN devices d USING (orchard_id) "
            "WHERE o.grower_id = %s ORDER BY o.orchard_id LIMIT 1",
            (SAMPLE_GROWER,),
        ).fetchone()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=SAMPLE_DAYS)
        ensure_partitions(conn, start, end + timedelta(hours=1))
        conn.commit()
        import math

        rows = []
        t = start
        while t < end:
            h = (t.hour + 8) % 24
            diurnal = math.sin((h - 9) / 24 * 2 * math.pi)
            vals = {
                "air_temp_c": 18 + 6 * diurnal,
                "air_rh_pct": 70 - 15 * diurnal,
                "soil_vwc_10cm": 0.28,
                "soil_vwc_30cm": 0.31,
                "soil_temp_10cm_c": 17 + 2 * diurnal,
                "soil_temp_30cm_c": 16.5,
                "rain_mm": 1.0 if h == 3 else 0.0,
                "leaf_wetness_pct": 20.0,
                "solar_wm2": max(0.0, 800 * diurnal),
                "wind_ms": 1.5,
            }
            rows += [(dev, m, t, v) for m, v in vals.items()]
            t += timedelta(hours=1)
        store_readings(conn, rows)
        conn.execute(
            "INSERT INTO device_health (device_id, first_seen_at, last_seen_at, last_reading_at, messages, readings, "
            "battery_v) VALUES (%s, %s, %s, %s, 480, %s, 3.9) ON CONFLICT (device_id) DO NOTHING",
            (dev, start, end, end - timedelta(hours=1), len(rows)),
        )
        conn.commit()
        rollups.refresh(conn)
        season = end.year
        run = conn.execute(
            "INSERT INTO forecast_runs (as_of, season, model_version, orchard_count) VALUES (%s, %s, 'test', 1) "
            "RETURNING run_id",
            (end, season),
        ).fetchone()[0]
        first = date(season, 7, 13)
        first -= timedelta(days=first.weekday())
        for i in range(4):
            for g, share in (("XL", 0.3), ("L", 0.5), ("M", 0.2)):
                p50 = 2000 * share * (1 + i % 2)
                conn.execute(
                    "INSERT INTO forecasts VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (run, oid, first + timedelta(weeks=i), g, p50 * 0.7, p50, p50 * 1.3),
                )
        conn.execute(
            "INSERT INTO forecast_orchards VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                run,
                oid,
                date(season, 3, 18),
                first,
                first + timedelta(days=27),
                8400.0,
                12000.0,
                15600.0,
                psycopg.types.json.Jsonb({"frost": 0.2, "brown_rot": 0.4}),
            ),
        )
        raise_alerts(
            conn,
            [
                Alert(
                    dedupe_key=f"test-frost:{oid}",
                    kind="frost",
                    severity="warning",
                    title_zh="霜冻风险",
                    title_en="Frost risk",
                    advice_zh="夜间熏烟或覆盖防霜。",
                    advice_en="Smoke or cover trees at night.",
                    orchard_id=oid,
                )
            ],
        )
        conn.commit()
    return {"orchard_id": oid, "device_id": dev, "cooperative_id": coop, "end": end, "start": start}
