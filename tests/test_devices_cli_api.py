"""`yuncang devices` on the command line and the devices API with its per-role scope."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from registry import broker_accounts as ba
from yuncang.app import create_app
from yuncang.auth import create_user
from yuncang.db import make_pool
from yuncang.settings import Settings

PW = "a-long-test-password"


def _yc(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YUNCANG_DATABASE_URL": url, "YUNCANG_MQTT_URL": "mqtt://u:p@127.0.0.1:1"}
    return subprocess.run([sys.executable, "-m", "yuncang", "devices", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cli_db(make_fleet_db: Callable[[], str]) -> str:
    return make_fleet_db()


def test_cli_add_import_list_move_retire_and_credentials(cli_db: str, tmp_path: Path) -> None:
    r = _yc(cli_db, "add", "ws1-soil-20", "--kind", "soil_probe", "--model", "LSE01", "--orchard", "WS-0001",
            "--depth-cm", "20", "--dev-eui", "A840410000000020", "--installed", "2026-03-01")
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("device_id,kind,model,orchard_id,depth_cm\nws2-a,soil_probe,LSE01,WS-0002,10\n"
                   "ws2-b,soil_probe,LSE01,WS-0002,ten\nws2-c,soil_probe,,WS-0002,30\n")
    r = _yc(cli_db, "import", str(bad))
    assert r.returncode == 2 and "line 3: depth_cm='ten'" in r.stderr and "line 4: model is empty" in r.stderr
    good = tmp_path / "good.csv"
    good.write_text("device_id,kind,model,orchard_id,depth_cm\nws2-a,soil_probe,LSE01,WS-0002,10\n"
                    "ws2-b,soil_probe,LSE01,WS-0002,30\nws2-c,soil_probe,LSE01,WS-0002,60\n")
    r = _yc(cli_db, "import", str(good))
    assert r.returncode == 0 and "3 added" in r.stdout, r.stderr
    r = _yc(cli_db, "list", "--orchard", "WS-0002")
    assert r.returncode == 0 and [ln.split()[0] for ln in r.stdout.splitlines()] == ["gw-0002", "ws2-a", "ws2-b",
                                                                                   "ws2-c"]
    assert _yc(cli_db, "move", "ws2-c", "--orchard", "WS-0003", "--at", "2026-06-01T08:00+08:00").returncode == 0
    r = _yc(cli_db, "list", "--history", "ws2-c")
    assert r.returncode == 0 and "orchard WS-0002" in r.stdout and "2026-06-01T00:00+00:00" in r.stdout
    r = _yc(cli_db, "move", "ws2-c", "--orchard", "WS-0003")
    assert r.returncode == 2 and "already there" in r.stderr
    # credentials: every gateway gets one, printed once; ingest its own
    r = _yc(cli_db, "credentials", "issue", "--gateways")
    assert r.returncode == 0, r.stderr
    issued = dict(line.split(",") for line in r.stdout.splitlines())
    assert sorted(issued) == [f"gw-{i:04d}" for i in range(1, 13)]
    assert _yc(cli_db, "credentials", "issue", "--gateways").stdout == ""      # nothing new to issue
    r = _yc(cli_db, "credentials", "issue", "ingest", "--kind", "ingest")
    assert r.returncode == 0 and r.stdout.startswith("ingest,")
    with psycopg.connect(cli_db) as c:
        h = c.execute("SELECT password_hash FROM broker_accounts WHERE username = 'gw-0005'").fetchone()[0]
        assert ba.verify_password(issued["gw-0005"], h) and issued["gw-0005"] not in h
    assert _yc(cli_db, "retire", "gw-0005", "--replaced-by", "ws1-soil-20").returncode == 0
    out = tmp_path / "broker"
    r = _yc(cli_db, "credentials", "files", "--out", str(out), "--prefix", "")
    assert r.returncode == 0, r.stderr
    acl = (out / "acl").read_text()
    assert "user gw-0004\ntopic write orchards/WS-0004/gw-0004/up" in acl and "gw-0005" not in acl  # revoked
    assert (out / "passwd").stat().st_mode & 0o777 == 0o640
    assert '"username": "ingest"' in (out / "dynamic-security.json").read_text()
    r = _yc(cli_db, "export", "-")
    assert r.returncode == 0 and r.stdout.splitlines()[0].startswith("device_id,kind,model,profile,dev_eui")


# ------------------------------------------------------------------------------------------- the API


@pytest.fixture(scope="module")
def api(cli_db: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    with psycopg.connect(cli_db) as c:
        coop_a, coop_b = (c.execute("SELECT cooperative_id FROM cold_rooms WHERE cold_room_id = %s", (r,)).fetchone()[0]
                          for r in ("CR-A", "CR-B"))
        grower = c.execute("SELECT grower_id FROM orchards WHERE orchard_id = 'WS-0001'").fetchone()[0]
        other = c.execute("SELECT orchard_id FROM orchards WHERE cooperative_id IS DISTINCT FROM %s "
                          "ORDER BY orchard_id LIMIT 1", (coop_a,)).fetchone()[0]
        create_user(c, username="mgr-a", password=PW, role="manager", cooperative_id=coop_a)
        create_user(c, username="mgr-b", password=PW, role="manager", cooperative_id=coop_b)
        create_user(c, username="boss", password=PW, role="admin")
        create_user(c, username="grower-1", password=PW, role="grower", grower_id=grower)
        c.commit()
    pool = make_pool(cli_db, min_size=1, max_size=3, name="devices-api-tests")
    try:
        with TestClient(create_app(Settings(database_url=cli_db), pool)) as client:
            heads = {}
            for u in ("mgr-a", "mgr-b", "boss", "grower-1"):
                tok = client.post("/api/v1/auth/token", json={"username": u, "password": PW}).json()["token"]
                heads[u] = {"Authorization": f"Bearer {tok}"}
            yield client, {"h": heads, "coop_a": coop_a, "other_orchard": other}
    finally:
        pool.close()


def test_api_scope_per_role(api: tuple[TestClient, dict[str, Any]]) -> None:
    client, ctx = api
    h = ctx["h"]
    r = client.post("/api/v1/devices", headers=h["mgr-a"], json={
        "device_id": "cr-a-th", "kind": "air_sensor", "model": "LHT65", "cold_room_id": "CR-A",
        "dev_eui": "A84041000000AAAA"})
    assert r.status_code == 201, r.text
    assert r.json()["dev_eui"] == "a84041000000aaaa" and r.json()["cooperative_id"] == ctx["coop_a"]
    # manager A: own cooperative's orchards and cold room, nobody else's
    mine = client.get("/api/v1/devices", headers=h["mgr-a"], params={"limit": 500}).json()
    assert mine["total"] >= 2 and {d["cooperative_id"] for d in mine["items"]} == {ctx["coop_a"]}
    assert "cr-a-th" in {d["device_id"] for d in mine["items"]}
    theirs = client.get("/api/v1/devices", headers=h["mgr-b"], params={"limit": 500}).json()
    assert "cr-a-th" not in {d["device_id"] for d in theirs["items"]}
    # B can neither retire A's device nor add into A's room; A cannot add into another coop's orchard
    assert client.post("/api/v1/devices/cr-a-th/retire", headers=h["mgr-b"]).status_code == 403
    assert client.get("/api/v1/devices/cr-a-th/history", headers=h["mgr-b"]).status_code == 403
    assert client.post("/api/v1/devices/no-such/retire", headers=h["mgr-b"]).status_code == 404
    assert client.post("/api/v1/devices", headers=h["mgr-b"], json={
        "device_id": "sneaky", "model": "LHT65", "cold_room_id": "CR-A"}).status_code == 403
    assert client.post("/api/v1/devices", headers=h["mgr-a"], json={
        "device_id": "sneaky", "model": "YC-GW1", "orchard_id": ctx["other_orchard"]}).status_code == 403
    # growers see their orchard's devices and may not add or retire
    g = client.get("/api/v1/devices", headers=h["grower-1"]).json()
    assert g["total"] >= 1 and {d["orchard_id"] for d in g["items"]} == {"WS-0001"}
    assert client.post("/api/v1/devices/gw-0001/retire", headers=h["grower-1"]).status_code == 403
    # bad input is a 4xx with a message, duplicates are 409
    assert client.post("/api/v1/devices", headers=h["boss"], json={
        "device_id": "bad id", "model": "x", "orchard_id": "WS-0001"}).status_code == 422
    dup = client.post("/api/v1/devices", headers=h["boss"], json={
        "device_id": "gw-0001", "model": "YC-GW1", "orchard_id": "WS-0001"})
    assert dup.status_code == 409 and "exists" in dup.json()["detail"]["message"]
    # A retires its own device; again is 409; the history shows the closed period
    r = client.post("/api/v1/devices/cr-a-th/retire", headers=h["mgr-a"], json={})
    assert r.status_code == 200 and r.json()["status"] == "retired"
    assert client.post("/api/v1/devices/cr-a-th/retire", headers=h["mgr-a"]).status_code == 409
    hist = client.get("/api/v1/devices/cr-a-th/history", headers=h["mgr-a"]).json()
    assert len(hist) == 1 and hist[0]["cold_room_id"] == "CR-A" and hist[0]["valid_to"] is not None
    assert client.get("/api/v1/devices", headers=h["boss"], params={"include_retired": True,
                                                                    "cold_room_id": "CR-A"}).json()["total"] == 1


def test_registry_export_import_round_trips_the_fleet(cli_db: str, make_database: Callable[[], str],
                                                      tmp_path: Path) -> None:
    """`yuncang registry export x.csv` writes x.devices.csv beside it; `import` brings both back, or
    nothing when either file has a bad row."""
    from yuncang.migrations import migrate

    env = {**os.environ, "YUNCANG_DATABASE_URL": cli_db, "YUNCANG_MQTT_URL": "mqtt://u:p@127.0.0.1:1"}
    reg_csv = tmp_path / "reg.csv"
    r = subprocess.run([sys.executable, "-m", "yuncang", "registry", "export", str(reg_csv)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    dev_csv = tmp_path / "reg.devices.csv"
    assert dev_csv.exists() and len(dev_csv.read_text().splitlines()) > 13   # more devices than orchards
    fresh = make_database()
    migrate(fresh)
    with psycopg.connect(fresh) as c:
        c.execute("INSERT INTO warehouses VALUES ('WH-1', '巫山云仓', 31.07, 109.88)")
        c.execute("INSERT INTO cold_rooms (cold_room_id, warehouse_id, name, capacity_kg) VALUES "
                  "('CR-A', 'WH-1', 'a', 1000), ('CR-B', 'WH-1', 'b', 1000)")
        c.commit()
    env2 = {**env, "YUNCANG_DATABASE_URL": fresh}
    good = dev_csv.read_text()
    dev_csv.write_text(good + "broken,gateway,,,,,WS-0001,,,,,,,,\n")       # model missing: a bad row
    r = subprocess.run([sys.executable, "-m", "yuncang", "registry", "import", str(reg_csv)], env=env2,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "model is empty" in r.stderr
    with psycopg.connect(fresh) as c:
        assert c.execute("SELECT count(*) FROM orchards").fetchone()[0] == 0     # nothing half-imported
    dev_csv.write_text(good)
    r = subprocess.run([sys.executable, "-m", "yuncang", "registry", "import", str(reg_csv)], env=env2,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    again = _yc(fresh, "export", "-")
    assert again.returncode == 0 and again.stdout == good
