"""The device fleet: many devices per orchard and in cold rooms, moves and replacements that keep each
reading with the orchard of its time, CSV import with line-numbered errors, export round trip."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from ingest import rollups
from ingest.samples import store_readings
from ingest.storage import ensure_partitions
from registry import devices as reg
from registry.csv_io import CsvImportError
from registry.devices_csv import export_devices, import_devices


@pytest.fixture(scope="module")
def fleet_db(make_fleet_db: Callable[[], str]) -> str:
    return make_fleet_db()


@pytest.fixture
def db(fleet_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fleet_db) as c:
        yield c


def test_seeded_gateways_have_an_open_first_placement(db: psycopg.Connection) -> None:
    rows = db.execute("SELECT count(*), count(*) FILTER (WHERE valid_from = '-infinity' AND valid_to IS NULL) "
                      "FROM device_assignments a JOIN devices d USING (device_id, orchard_id)").fetchone()
    assert rows == (12, 12)
    assert reg.place_at(db, "gw-0003", datetime(2001, 1, 1, tzinfo=UTC)) == reg.Place("WS-0003", None)


def _hourly(device: str, start: datetime, hours: int, soil: float) -> list[tuple[str, str, datetime, float]]:
    rows = []
    for h in range(hours):
        t = start + timedelta(hours=h)
        rows += [(device, "air_temp_c", t, 10.0 + h % 24 / 4), (device, "soil_vwc_30cm", t, soil)]
    return rows


def test_moved_and_replaced_probe_keeps_each_reading_with_the_orchard_of_its_time(db: psycopg.Connection) -> None:
    from ingest.read import season_summary as sensor_summary
    from orchard_models.inputs import read_season_weather

    day = date(2026, 5, 10)                        # local days 10-13 May; the move at local midnight of 12 May
    start = datetime(2026, 5, 9, 16, tzinfo=UTC)   # 10 May 00:00 Asia/Shanghai
    moved = start + timedelta(days=2)
    reg.add_device(db, device_id="probe-30", kind="soil_probe", model="LSE01", profile="dragino_lse01",
                   dev_eui="a840411234567801", orchard_id="WS-0001", depth_cm=30, position="row 3 tree 12",
                   installed_at=start - timedelta(days=30))
    ensure_partitions(db, start - timedelta(days=1), start + timedelta(days=5))
    db.commit()
    store_readings(db, _hourly("probe-30", start, 48, soil=0.21))            # in WS-0001
    reg.move_device(db, "probe-30", orchard_id="WS-0002", at=moved)
    store_readings(db, _hourly("probe-30", moved, 24, soil=0.33))            # in WS-0002
    retired = moved + timedelta(days=1)
    reg.add_device(db, device_id="probe-30b", kind="soil_probe", model="LSE01", orchard_id="WS-0002", depth_cm=30,
                   installed_at=retired)
    reg.retire_device(db, "probe-30", at=retired, replaced_by="probe-30b")
    store_readings(db, _hourly("probe-30b", retired, 24, soil=0.35))         # the replacement, in WS-0002
    db.commit()
    rollups.refresh(db)
    db.commit()

    assert [(h["orchard_id"], h["valid_from"], h["valid_to"]) for h in reg.history(db, "probe-30")] == [
        ("WS-0001", None, moved), ("WS-0002", moved, retired)]
    # the trace page's season summary: each orchard gets exactly the days its probe was there
    a = sensor_summary(db, "WS-0001", day, day + timedelta(days=5))
    b = sensor_summary(db, "WS-0002", day, day + timedelta(days=5))
    assert a is not None and b is not None
    assert a["days_with_data"] == 2 and b["days_with_data"] == 2
    # the forecast inputs: per-orchard daily arrays from the rollups, attributed by time
    idx = {"WS-0001": 0, "WS-0002": 1}
    w = read_season_weather(db, idx, 2026, datetime(2026, 5, 20, tzinfo=UTC), hourly_days=0)
    from orchard_models.weather import season_start

    d0 = (day - season_start(2026)).days
    tmax = w.tmax_c
    assert [bool(x == x) for x in tmax[0, d0:d0 + 4]] == [True, True, False, False]
    assert [bool(x == x) for x in tmax[1, d0:d0 + 4]] == [False, False, True, True]
    # the retired probe is out of ingest's device list; its replacement is in
    active = {r[0] for r in db.execute("SELECT device_id FROM devices WHERE active")}
    assert "probe-30" not in active and "probe-30b" in active
    assert reg.get_device(db, "probe-30")["replaced_by"] == "probe-30b"


def test_move_and_retire_refuse_what_cannot_be(db: psycopg.Connection) -> None:
    reg.add_device(db, device_id="ws-1", kind="weather_station", model="WTS506", orchard_id="WS-0004")
    with pytest.raises(reg.DeviceConflict, match="already there"):
        reg.move_device(db, "ws-1", orchard_id="WS-0004")
    with pytest.raises(reg.DeviceInvalid, match="not in the registry"):
        reg.move_device(db, "ws-1", orchard_id="WS-9999")
    with pytest.raises(reg.DeviceInvalid, match="exactly one"):
        reg.move_device(db, "ws-1", orchard_id="WS-0005", cold_room_id="CR-A")
    t = datetime.now(UTC) - timedelta(hours=1)
    reg.move_device(db, "ws-1", orchard_id="WS-0005", at=t)
    with pytest.raises(reg.DeviceConflict, match="since"):     # before its current period began
        reg.move_device(db, "ws-1", orchard_id="WS-0006", at=t - timedelta(days=1))
    reg.move_device(db, "ws-1", cold_room_id="CR-A")
    assert reg.get_device(db, "ws-1")["cooperative_id"] is not None
    reg.retire_device(db, "ws-1")
    with pytest.raises(reg.DeviceConflict, match="retired"):
        reg.move_device(db, "ws-1", orchard_id="WS-0005")
    with pytest.raises(reg.DeviceConflict, match="already retired"):
        reg.retire_device(db, "ws-1")
    with pytest.raises(reg.DeviceNotFound):
        reg.retire_device(db, "nope")
    with pytest.raises(reg.DeviceConflict):
        reg.add_device(db, device_id="gw-0001", model="YC-GW1", orchard_id="WS-0001")
    with pytest.raises(reg.DeviceInvalid, match="depth_cm"):
        reg.add_device(db, device_id="deep", kind="soil_probe", model="LSE01", orchard_id="WS-0001", depth_cm=900)
    # overlapping periods are refused by the database itself, whoever writes them
    with pytest.raises(psycopg.errors.ExclusionViolation):
        db.execute("INSERT INTO device_assignments (device_id, orchard_id, valid_from) "
                   "VALUES ('gw-0001', 'WS-0002', now() - interval '1 day')")
    db.rollback()


GOOD = """device_id,kind,model,profile,dev_eui,orchard_id,cold_room_id,depth_cm,position,installed_at
ws7-gw,gateway,YC-GW1,,,WS-0007,,,shed,2026-03-01
ws7-soil-10,soil_probe,EM500-SMTC,milesight_em500_smtc,24e124126b000010,WS-0007,,10,row 1,2026-03-01
ws7-soil-30,soil_probe,EM500-SMTC,milesight_em500_smtc,24E124126B000030,WS-0007,,30,row 1,2026-03-01T09:00+08:00
ws7-soil-60,soil_probe,EM500-SMTC,milesight_em500_smtc,24e124126b000060,WS-0007,,60,row 1,2026-03-01
ws7-weather,weather_station,SenseCAP S2120,sensecap_s2120,2cf7f1c0440000a1,WS-0007,,,mast,2026-03-02
cr-a-th-1,air_sensor,LHT65,dragino_lht65,a84041000000c001,,CR-A,,door,2026-04-01
"""


def test_csv_import_adds_many_devices_per_orchard_or_nothing(db: psycopg.Connection) -> None:
    bad = GOOD.replace("24e124126b000060,WS-0007,,60", "24e124126b00006,WS-0007,,60") \
              .replace("cr-a-th-1,air_sensor", "ws7-soil-10,air_sensor") \
              .replace(",WS-0007,,,mast", ",WS-7777,,,mast") + "x,probe,LSE01,,,WS-0007,,-5,,yesterday\n"
    with pytest.raises(CsvImportError) as exc:
        import_devices(db, bad)
    lines = {(e.line, e.reason.split(" ")[0]) for e in exc.value.errors}
    assert (5, "dev_eui='24e124126b00006'") in lines                  # not 16 hex digits
    assert (7, "device_id") in lines                                  # repeats line 3
    assert {(8, "kind='probe'"), (8, "depth_cm=-5"), (8, "installed_at='yesterday'")} <= lines
    assert all(e.line != 6 for e in exc.value.errors)  # the unknown orchard is checked once the file parses
    assert db.execute("SELECT count(*) FROM devices WHERE device_id LIKE 'ws7-%'").fetchone()[0] == 0
    with pytest.raises(CsvImportError) as exc:
        import_devices(db, GOOD.replace(",WS-0007,,,mast", ",WS-7777,,,mast"))
    assert [(e.line, "WS-7777" in e.reason) for e in exc.value.errors] == [(6, True)]
    assert db.execute("SELECT count(*) FROM devices WHERE device_id LIKE 'ws7-%'").fetchone()[0] == 0

    assert import_devices(db, GOOD) == (6, 0)
    rows, total = reg.list_devices(db, orchard_id="WS-0007")
    assert total == 6 - 1 + 1 and sorted(r["depth_cm"] for r in rows if r["kind"] == "soil_probe") == [10, 30, 60]
    assert reg.get_device(db, "ws7-soil-30")["dev_eui"] == "24e124126b000030"
    assert reg.get_device(db, "cr-a-th-1")["cold_room_id"] == "CR-A"
    # the same file again changes nothing; a DevEUI of another device is refused with its line
    assert import_devices(db, GOOD) == (0, 6)
    taken = "device_id,model,dev_eui,orchard_id\nnew-probe,LSE01,24e124126b000010,WS-0008\n"
    with pytest.raises(CsvImportError, match="line 2: dev_eui 24e124126b000010 belongs to device ws7-soil-10"):
        import_devices(db, taken)


def test_export_then_import_gives_the_same_fleet(db: psycopg.Connection, make_fleet_db: Callable[[], str]) -> None:
    first = io.StringIO()
    n = export_devices(db, first)
    assert n == db.execute("SELECT count(*) FROM devices").fetchone()[0]
    other = make_fleet_db()
    with psycopg.connect(other) as c2:
        import_devices(c2, first.getvalue())
        again = io.StringIO()
        assert export_devices(c2, again) == n
    assert again.getvalue() == first.getvalue()
