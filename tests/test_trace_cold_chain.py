"""Cold chain against the real database: a lot stored in a monitored cold room gets a record of the
temperatures its room measured (from ingest's samples of a device placed in the room), excursions raise
one alert each for the warehouse manager, and pure functions hold their arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from ingest.read import daily_weather, room_air_temperatures
from registry.devices import add_device
from registry.seed import SeedParams, seed
from trading import buyers, cold_chain, genealogy, warehouse
from trading.cold_chain import Limits, excursions, stay_summary
from trading.errors import Invalid
from trading.gs1 import Gs1Config
from yuncang.migrations import migrate

CFG = Gs1Config()
T0 = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def url(make_database) -> str:
    u = make_database()
    migrate(u)
    with psycopg.connect(u) as c:
        seed(c, SeedParams())
        buyers.seed_buyers(c)
        warehouse.seed_warehouse(c)
    return u


@pytest.fixture
def conn(url: str):
    with psycopg.connect(url, autocommit=True) as c:
        yield c


def _room_sensor(conn: psycopg.Connection, device_id: str, room: str, temps: list[float], start: datetime,
                 step: timedelta = timedelta(minutes=10)) -> None:
    add_device(conn, device_id=device_id, kind="air_sensor", model="LHT65", cold_room_id=room,
               installed_at=start - timedelta(days=1))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO samples (device_id, time, air_temp_c) VALUES (%s, %s, %s)",
                        [(device_id, start + i * step, t) for i, t in enumerate(temps)])


def test_a_stored_lot_records_its_rooms_temperatures_and_excursion(conn):
    room = "CR-02"
    oid = conn.execute("SELECT orchard_id FROM orchards ORDER BY orchard_id LIMIT 1").fetchone()[0]
    # 10-minute samples for 12 hours: 0.5 °C, except one hour at 6.0 °C (6 samples) from hour 4
    temps = [0.5] * 72
    for i in range(24, 30):
        temps[i] = 6.0
    _room_sensor(conn, "cr02-lht65", room, temps, T0)
    h = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 19), kg="100", cfg=CFG,
                          at=T0 - timedelta(hours=3))
    g = genealogy.grade(conn, inputs={h.created["lot"]: "100"}, outputs_kg_by_grade={"L": "100"}, losses=[],
                        site_id="WH-WUSHAN", cfg=CFG, at=T0 - timedelta(hours=1))
    lot = g.created["L"]
    genealogy.store(conn, object_ids=[lot], cold_room_id=room, at=T0)
    unit = genealogy.pack(conn, children={lot: "100"}, site_id="WH-WUSHAN", cfg=CFG,
                          at=T0 + timedelta(hours=12)).created["unit"]
    rec = cold_chain.lot_record(conn, unit, T0 + timedelta(hours=13), room_air_temperatures)
    assert rec["monitored"] and rec["hours_harvest_to_cold"] == 3.0
    [stay] = rec["stays"]
    assert stay["cold_room_id"] == room and stay["left_at"] == T0 + timedelta(hours=12)
    assert stay["samples"] == 72 and stay["max_c"] == 6.0 and stay["min_c"] == 0.5
    assert stay["limit_max_c"] == 4.0                       # set point 1.0 + 3.0 (the default)
    assert stay["hours_above_limit"] == 1.0 and rec["worst_excursion_c"] == 2.0

    res = cold_chain.check_excursions(conn, T0 + timedelta(hours=12), room_air_temperatures)
    assert res["excursions"] == 1
    alerts = conn.execute("SELECT kind, severity, title_zh, resolved_at FROM alerts "
                          "WHERE kind = 'cold_room_excursion'").fetchall()
    assert len(alerts) == 1 and alerts[0][1] == "critical" and "CR-02" in alerts[0][2]
    assert alerts[0][3] is not None                          # over: recorded, not left open
    again = cold_chain.check_excursions(conn, T0 + timedelta(hours=12, minutes=5), room_air_temperatures)
    assert again["raised"] == 0                              # not raised twice
    assert conn.execute("SELECT count(*) FROM alerts WHERE kind = 'cold_room_excursion'").fetchone()[0] == 1


def test_room_limits_are_validated_and_used(conn):
    with pytest.raises(Invalid):
        cold_chain.set_room_limits(conn, "CR-03", max_c=1.0, min_c=2.0, alert_after_min=30)
    with pytest.raises(Invalid):
        cold_chain.set_room_limits(conn, "CR-03", max_c=float("nan"), min_c=-1.0, alert_after_min=30)
    lim = cold_chain.set_room_limits(conn, "CR-03", max_c=2.5, min_c=-1.0, alert_after_min=20)
    assert cold_chain.room_limits(conn, "CR-03") == lim


def test_excursion_runs_and_sample_durations():
    lim = Limits(max_c=4.0, min_c=-1.5, alert_after_min=30)
    t = [T0 + timedelta(minutes=10 * i) for i in range(10)]
    # 20 minutes above (3 samples: 0, 10, 20 -> 20 min run) is shorter than 30: no excursion
    assert excursions(list(zip(t, [5, 5, 5, 1, 1, 1, 1, 1, 1, 1], strict=True)), lim) == []
    runs = excursions(list(zip(t, [1, -2, -3, -2, -2, 1, 1, 7, 8, 9], strict=True)), lim)
    assert [(r["kind"], r["worst_c"], r["ongoing"]) for r in runs] == [("below", -3, False)]
    # a silent sensor (a 3-hour gap) counts 30 minutes at most
    s = stay_summary([(T0, 5.0), (T0 + timedelta(hours=3), 1.0)], T0 + timedelta(hours=4), lim)
    assert s["hours_above_limit"] == 0.5 and s["worst_excursion_c"] == 1.0


def test_consumer_view_names_no_person_and_complaints_are_idempotent(conn):
    from trading import consumer
    from trading.gs1 import lot_uri

    oid, grower = conn.execute("SELECT o.orchard_id, g.name FROM orchards o JOIN growers g USING (grower_id) "
                               "ORDER BY o.orchard_id OFFSET 5 LIMIT 1").fetchone()
    orchard_name = conn.execute("SELECT name FROM orchards WHERE orchard_id = %s", (oid,)).fetchone()[0]
    h = genealogy.harvest(conn, orchard_id=oid, harvested_on=date(2026, 7, 18), kg="60", cfg=CFG, at=T0)
    lot = genealogy.grade(conn, inputs={h.created["lot"]: "60"}, outputs_kg_by_grade={"XL": "60"}, losses=[],
                          site_id="WH-WUSHAN", cfg=CFG, at=T0).created["XL"]
    link = lot_uri(CFG, conn.execute("SELECT gtin FROM trace_objects WHERE object_id = %s", (lot,)).fetchone()[0], lot)
    view = consumer.public_lot(conn, CFG, link, T0 + timedelta(days=1), weather=daily_weather,
                              temps=room_air_temperatures)
    assert view["grade"]["label_zh"] == "特级果" and view["harvested"]["from"] == date(2026, 7, 18)
    text = repr(view)
    assert grower not in text and orchard_name not in text and oid not in text
    assert view["origin"]["townships_zh"] and view["cold_chain"]["monitored"] is False
    ls = consumer.linkset(CFG, link, consumer.find_object(conn, link))
    assert ls["linkset"][0]["anchor"] == link
    a = consumer.file_complaint(conn, link=link, category="damage", text="两个果子裂开", contact=None,
                                client_id="cmp-0001-abcd")
    b = consumer.file_complaint(conn, link=link, category="damage", text="两个果子裂开", contact=None,
                                client_id="cmp-0001-abcd")
    assert a["complaint_id"] == b["complaint_id"]
    assert [c["complaint_id"] for c in consumer.list_complaints(conn)] == [a["complaint_id"]]
    with pytest.raises(Invalid):
        consumer.file_complaint(conn, link=link, category="bogus", text="x", contact=None, client_id=None)
    with pytest.raises(Invalid):
        consumer.file_complaint(conn, link=link, category="other", text="x" * 1001, contact=None, client_id=None)


def test_a_warehouse_lot_has_its_cold_chain_record(conn):
    oid = conn.execute("SELECT orchard_id FROM orchards ORDER BY orchard_id OFFSET 7 LIMIT 1").fetchone()[0]
    _room_sensor(conn, "cr05-em300", "CR-05", [1.0] * 12, T0)
    lot = warehouse.receive_lot(conn, orchard_id=oid, harvested_on=date(2026, 7, 19),
                                kg_by_grade={"L": 200}, cold_room_id="CR-05")
    rec = cold_chain.warehouse_lot_record(conn, lot.lot_id, "L", datetime.now(UTC), room_air_temperatures)
    assert rec is not None and [s["cold_room_id"] for s in rec["stays"]] == ["CR-05"]
    assert cold_chain.warehouse_lot_record(conn, lot.lot_id, "XL", datetime.now(UTC), room_air_temperatures) is None
