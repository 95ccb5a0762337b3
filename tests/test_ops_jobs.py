"""Operations jobs on real data: device alerts, nightly forecast -> re-allocation, unsold-risk digest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from registry.seed import SeedParams, seed
from yuncang.db import make_pool
from yuncang.jobs import default_jobs, device_alerts
from yuncang.migrations import migrate
from yuncang.scheduler import Leadership, run_job


@pytest.fixture
def small_db(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as c:
        seed(c, SeedParams(seed=5, orchard_count=40, total_area_mu=4000.0))
    return url


def test_silent_gateways_and_low_batteries_raise_and_resolve_alerts(small_db: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(small_db) as c:
        c.execute("UPDATE devices SET installed_at = %s", (now - timedelta(days=30),))
        # gw-0001 reported 30 minutes ago with a weak battery; gw-0002 went silent 30 h ago; the rest never reported
        c.execute("INSERT INTO device_health (device_id, first_seen_at, last_seen_at, battery_v) VALUES "
                  "('gw-0001', %s, %s, 3.1), ('gw-0002', %s, %s, 3.9)",
                  (now - timedelta(days=9), now - timedelta(minutes=30), now - timedelta(days=9),
                   now - timedelta(hours=30)))
        detail = device_alerts(c, now)
        # gw-0001 is heard but stored no reading: flagged as storing nothing
        assert detail == {"device_offline": 39, "low_battery": 1, "device_stores_nothing": 1}
        rows = dict(c.execute("SELECT device_id, severity FROM alerts WHERE kind = 'device_offline' "
                              "AND resolved_at IS NULL").fetchall())
        assert "gw-0001" not in rows and rows["gw-0002"] == "critical"
        # gw-0002 comes back and uploads its buffer: its alert resolves
        c.execute("UPDATE device_health SET last_seen_at = %s WHERE device_id = 'gw-0002'", (now,))
        device_alerts(c, now)
        open_ = {r[0] for r in c.execute("SELECT device_id FROM alerts WHERE kind = 'device_offline' "
                                         "AND resolved_at IS NULL").fetchall()}
        assert "gw-0002" not in open_ and len(open_) == 38
        # both are heard but neither stored a reading (this test's health rows have none)
        assert c.execute("SELECT title_en FROM alerts WHERE kind = 'device_stores_nothing' AND resolved_at IS NULL"
                         " ORDER BY device_id").fetchall() == [("Device gw-0001 reports but nothing is stored",),
                                                              ("Device gw-0002 reports but nothing is stored",)]
        # their readings start being stored (e.g. a profile was fixed): those alerts resolve
        c.execute("UPDATE device_health SET last_reading_at = %s", (now,))
        assert device_alerts(c, now)["device_stores_nothing"] == 0
        assert c.execute("SELECT count(*) FROM alerts WHERE kind = 'device_stores_nothing' AND resolved_at IS NULL"
                         ).fetchone() == (0,)


def test_nightly_forecast_then_reallocation_then_digest(small_db: str) -> None:
    """The job chain a night runs: a forecast run appears, orders get (re)allocated, warnings evaluated."""
    from trading.demo import seed_demo

    jobs = {j.name: j for j in default_jobs()}
    pool = make_pool(small_db, max_size=4)
    leader = Leadership(small_db, key=995)
    try:
        assert run_job(pool, jobs["nightly_forecast"], leader)
        with pool.connection() as c:
            season = c.execute("SELECT season FROM forecast_runs").fetchone()[0]
            seed_demo(c, season=season, orders=30)
            c.commit()
        for name in ("reallocate", "reallocate", "unsold_risk_digest"):
            assert run_job(pool, jobs[name], leader)
        with pool.connection() as c:
            runs = c.execute("SELECT job, outcome, detail FROM job_runs ORDER BY run_id").fetchall()
            allocs = c.execute("SELECT count(*) FROM allocation_runs").fetchone()[0]
    finally:
        leader.release()
        pool.close()
    assert [r[1] for r in runs] == ["ok"] * 4, runs
    assert runs[1][2]["allocated"] is True and runs[2][2]["allocated"] is False  # nothing new the 2nd time
    assert allocs == 1


def test_job_runs_visible_to_managers_not_growers(small_db: str) -> None:
    """Every run is recorded and shown to managers (API and manager page); growers may not see them."""
    from fastapi.testclient import TestClient

    from yuncang.app import create_app
    from yuncang.auth import create_user
    from yuncang.settings import Settings

    pool = make_pool(small_db, max_size=4)
    leader = Leadership(small_db, key=996)
    try:
        jobs = {j.name: j for j in default_jobs()}
        run_job(pool, jobs["device_alerts"], leader)
        with pool.connection() as c:
            create_user(c, username="ops-admin", password="ops-admin-lantern-58", role="admin")
            create_user(c, username="ops-grower", password="ops-grower-lantern-58", role="grower", grower_id="G-00001")
        with TestClient(create_app(Settings(database_url=small_db), pool)) as client:
            def bearer(u: str, pw: str) -> dict[str, str]:
                tok = client.post("/api/v1/auth/token", json={"username": u, "password": pw}).json()["token"]
                return {"Authorization": f"Bearer {tok}"}

            admin, grower = bearer("ops-admin", "ops-admin-lantern-58"), bearer("ops-grower", "ops-grower-lantern-58")
            body = client.get("/api/v1/jobs/runs", headers=admin).json()
            assert body["total"] == 1 and body["items"][0]["job"] == "device_alerts"
            assert body["items"][0]["outcome"] == "ok" and body["items"][0]["finished_at"]
            assert client.get("/api/v1/jobs/runs", headers=grower).status_code == 403
            assert client.get("/api/v1/jobs/runs", params={"job": "DROP TABLE"}, headers=admin).status_code == 422
            page = client.get("/manager", headers=admin).text
            assert 'id="job-runs"' in page and "device_alerts" in page and "成功" in page
    finally:
        leader.release()
        pool.close()
