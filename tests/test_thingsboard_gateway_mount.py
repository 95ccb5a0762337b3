"""ThingsBoard gateways on a listener of their own, end to end: a real Mosquitto started from
deploy/mosquitto.conf with the files `yuncang devices credentials files` generates (dynamic-security.json
and thingsboard-listeners.conf: one listener per ThingsBoard gateway account with
``mount_point <prefix>tbgw/<account>/``), ingest with its own account, and the database.

A gateway publishes the fixed ``v1/gateway/telemetry`` on its listener; the broker turns it into
``<prefix>tbgw/<account>/v1/gateway/telemetry``; ingest takes the account as the sender: its devices'
readings are stored, another gateway's device is dead-lettered ``device_not_on_gateway`` (never stored),
an unknown device ``unknown_device``; a re-sent message stores nothing twice. The embedded amqtt broker
has no listeners with mount points: there the same ACL lets an account publish only under its own
``tbgw/<account>/`` (a bridge or a gateway that can set its topic), which the last test checks."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest

from ingest.decode import decode_message
from ingest.service import IngestConfig, IngestService
from ingest.validate import DeviceCache, Validator
from registry import broker_accounts as ba
from registry.devices import add_device, move_device
from registry.seed import SeedParams, seed
from yuncang.commands.devices import write_broker_files
from yuncang.embedded import EmbeddedBroker, free_port
from yuncang.migrations import migrate
from yuncang.private_services import PrivateMosquitto
from yuncang.tsdb_jobs import stop_scheduler_of

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "yc-tb/"
DYNSEC = next((p for p in ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                           "/usr/lib/mosquitto_dynamic_security.so") if Path(p).exists()), None)
pytestmark = pytest.mark.timeout(240)


def q(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def world(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """3 orchards (gw-0001..3 in WS-0001..3), a soil probe in WS-0001 and WS-0002; ThingsBoard gateway
    accounts tb-1 (device gw-0001) and tb-2 (device gw-0002) with listener ports; ingest's account."""
    url = make_database()
    migrate(url)
    stop_scheduler_of(url)
    out = tmp_path_factory.mktemp("broker")
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams(seed=5, orchard_count=3, total_area_mu=300.0))
        add_device(conn, device_id="ws1-soil", kind="soil_probe", model="YC-SOIL", orchard_id="WS-0001")
        add_device(conn, device_id="ws2-soil", kind="soil_probe", model="YC-SOIL", orchard_id="WS-0002")
        add_device(conn, device_id="ws3-th", kind="air_sensor", model="YC-SOIL", orchard_id="WS-0003")
        add_device(conn, device_id="ws3-th2", kind="air_sensor", model="YC-SOIL", orchard_id="WS-0003")
        pw = {"ingest": ba.issue(conn, "ingest", "ingest"),
              "tb-1": ba.issue(conn, "tb-1", "thingsboard_gateway", device_id="gw-0001", listener_port=free_port()),
              "tb-2": ba.issue(conn, "tb-2", "thingsboard_gateway", device_id="gw-0002", listener_port=free_port()),
              # ThingsBoard device-API devices: a listener each, mounted under tb/<device>/
              "tbd-1": ba.issue(conn, "tbd-1", "thingsboard_device", device_id="ws3-th", listener_port=free_port()),
              "tbd-2": ba.issue(conn, "tbd-2", "thingsboard_device", device_id="ws3-th2",
                                listener_port=free_port())}
        ports: dict[str, int] = dict(conn.execute(
            "SELECT username, listener_port FROM broker_accounts WHERE listener_port IS NOT NULL").fetchall())
        write_broker_files(conn, out, PREFIX)
    return {"url": url, "pw": pw, "ports": ports, "dir": out}


def test_generated_listener_config_and_acl(world: dict[str, Any]) -> None:
    conf = (world["dir"] / "thingsboard-listeners.conf").read_text()
    for user in ("tb-1", "tb-2"):
        assert f"listener {world['ports'][user]}\nprotocol mqtt\nmount_point {PREFIX}tbgw/{user}/\n" in conf
    for user, dev in (("tbd-1", "ws3-th"), ("tbd-2", "ws3-th2")):
        assert f"listener {world['ports'][user]}\nprotocol mqtt\nmount_point {PREFIX}tb/{dev}/\n" in conf
    acl = (world["dir"] / "acl").read_text()
    assert f"user tb-1\ntopic write {PREFIX}tbgw/tb-1/v1/gateway/#\n" in acl
    assert (f"user tbd-1\ntopic write {PREFIX}tb/ws3-th/v1/devices/me/telemetry\n"
            f"topic write {PREFIX}tb/ws3-th/v1/devices/me/attributes\n") in acl
    assert "topic write v1/devices" not in acl and f"topic write {PREFIX}v1/devices" not in acl
    assert "topic write v1/gateway" not in acl and f"topic write {PREFIX}v1/gateway" not in acl
    assert f"topic read {PREFIX}tbgw/+/v1/gateway/telemetry\n" in acl      # ingest's
    assert f"topic read {PREFIX}v3/+/devices/+/up\n" in acl                # TTS topics were missing before
    with psycopg.connect(world["url"]) as conn:   # re-issuing keeps the port; taking another's is refused
        ba.issue(conn, "tb-1", "thingsboard_gateway", device_id="gw-0001")
        assert conn.execute("SELECT listener_port FROM broker_accounts WHERE username = 'tb-1'").fetchall() \
            == [(world["ports"]["tb-1"],)]
        with pytest.raises(ba.AccountError, match="already tb-2's"):
            ba.issue(conn, "tb-3", "thingsboard_gateway", device_id="gw-0003", listener_port=world["ports"]["tb-2"])
        with pytest.raises(ba.AccountError, match="thingsboard_gateway and thingsboard_device accounts only"):
            ba.issue(conn, "x-cs", "chirpstack", listener_port=20000)
    # deploy/mosquitto.conf includes the generated directory last, after its own listener
    main = (ROOT / "deploy" / "mosquitto.conf").read_text()
    assert main.rstrip().splitlines()[-1] == "include_dir /mosquitto/config/auth/"


def test_account_devices_follow_the_gateways_place(world: dict[str, Any]) -> None:
    with psycopg.connect(world["url"]) as conn:
        own = ba.thingsboard_gateway_devices(conn)
    assert own["tb-1"] == {"gw-0001", "ws1-soil"} and own["tb-2"] == {"gw-0002", "ws2-soil"}


def _telemetry(t_ms: int, **devices: dict[str, float]) -> bytes:
    return json.dumps({d: [{"ts": t_ms, "values": v}] for d, v in devices.items()}).encode()


def _ingest(url: str, mqtt_url: str) -> IngestService:
    return IngestService(IngestConfig(database_url=url, mqtt_url=mqtt_url, topic_prefix=PREFIX,
                                      client_id=f"yc-ingest-tb-{secrets.token_hex(4)}",
                                      shared_group=f"g{secrets.token_hex(3)}", session_expiry_s=60,
                                      refresh_every_s=0))


async def _run(svc: IngestService, publish: Callable[[], Any], expect_messages: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        await asyncio.wait_for(svc.ready.wait(), 20)
        await publish()
        t0 = time.monotonic()
        while svc.stats.messages < expect_messages:
            assert time.monotonic() - t0 < 60, f"{svc.stats.messages} of {expect_messages} messages committed"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)   # anything the broker let through by mistake would have arrived by now
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert svc.stats.messages == expect_messages


def _client(port: int, user: str, pw: str, v5: bool = True) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, password=pw, identifier=f"{user}-{secrets.token_hex(3)}",
                          protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311, timeout=10)


def _stored(url: str, devices: list[str]) -> set[tuple[str, str, int, float]]:
    return {(d, m, int(t.timestamp()), v) for d, m, t, v in q(
        url, "SELECT device_id, metric, time, value FROM readings WHERE device_id = ANY(%s)", devices)}


def test_thingsboard_gateway_on_its_own_mosquitto_listener(world: dict[str, Any], tmp_path: Path) -> None:
    if shutil.which("mosquitto") is None or DYNSEC is None:
        pytest.skip("mosquitto with its dynamic-security plugin is not installed")
    url, pw, ports = world["url"], world["pw"], world["ports"]
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    port = free_port()
    conf = (conf.replace("listener 1883", f"listener {port} 127.0.0.1")
                .replace("/usr/lib/mosquitto_dynamic_security.so", DYNSEC)
                .replace("/mosquitto/config/auth/", f"{world['dir']}/")
                .replace("/mosquitto/data/", f"{tmp_path}/")
                .replace("log_dest stdout", f"log_dest file {tmp_path}/mosquitto.log"))
    if os.geteuid() == 0:
        conf += "\nuser root\n"
    broker = PrivateMosquitto(tmp_path, conf, port)
    t0 = (int(time.time()) // 60 - 30) * 60
    honest = _telemetry(t0 * 1000, **{"gw-0001": {"air_temp_c": 21.5}, "ws1-soil": {"soil_vwc_10cm": 0.31},
                                      "gw-0002": {"air_temp_c": 35.0}, "no-such-device": {"air_temp_c": 1.0}})

    async def publish() -> None:
        # tb-1 on its own listener, the topic a ThingsBoard gateway always uses; the same message twice
        async with _client(ports["tb-1"], "tb-1", pw["tb-1"]) as c:
            await c.publish("v1/gateway/telemetry", honest, qos=1)
            await c.publish("v1/gateway/telemetry", honest, qos=1)
            # on the shared listener the bare topic and another account's namespace are refused
            async with _client(port, "tb-1", pw["tb-1"]) as c2:
                await c2.publish("v1/gateway/telemetry", _telemetry(t0 * 1000 + 60_000, **{"gw-0001": {
                    "air_temp_c": 11.0}}), qos=1)
                await c2.publish(f"{PREFIX}tbgw/tb-2/v1/gateway/telemetry", _telemetry(t0 * 1000 + 60_000, **{
                    "gw-0002": {"air_temp_c": 12.0}}), qos=1)
        # tb-2 on tb-1's listener: what it publishes lands in tb-1's namespace, which it may not write
        async with _client(ports["tb-1"], "tb-2", pw["tb-2"]) as c:
            await c.publish("v1/gateway/telemetry", _telemetry(t0 * 1000 + 120_000, **{"gw-0001": {
                "air_temp_c": 13.0}}), qos=1)
        # ThingsBoard device API: tbd-1 on its own listener publishes the fixed device topic (stored as ws3-th);
        # tbd-2 on tbd-1's listener lands in ws3-th's namespace, which it may not write (refused); tbd-1 on the
        # shared listener may not publish the bare topic or another device's namespace
        async with _client(ports["tbd-1"], "tbd-1", pw["tbd-1"]) as c:
            await c.publish("v1/devices/me/telemetry", json.dumps(
                {"ts": t0 * 1000, "values": {"air_temp_c": 18.75}}).encode(), qos=1)
        async with _client(ports["tbd-1"], "tbd-2", pw["tbd-2"]) as c:
            await c.publish("v1/devices/me/telemetry", json.dumps({"air_temp_c": 40.0}).encode(), qos=1)
        async with _client(port, "tbd-1", pw["tbd-1"]) as c:
            await c.publish("v1/devices/me/telemetry", json.dumps({"air_temp_c": 41.0}).encode(), qos=1)
            await c.publish(f"{PREFIX}tb/ws3-th2/v1/devices/me/telemetry", json.dumps({"air_temp_c": 42.0}).encode(),
                            qos=1)
        # tb-2 on its own listener, for its own device
        async with _client(ports["tb-2"], "tb-2", pw["tb-2"]) as c:
            await c.publish("v1/gateway/telemetry", _telemetry(t0 * 1000, **{"gw-0002": {"air_temp_c": 22.5},
                                                                           "ws2-soil": {"soil_temp_10cm_c": 14.25}}),
                            qos=1)

    broker.start()
    try:
        ingest_url = f"mqtt://ingest:{pw['ingest']}@127.0.0.1:{port}"
        asyncio.run(_run(_ingest(url, ingest_url), publish, 4))
    finally:
        broker.stop()
    devs = ["gw-0001", "ws1-soil", "gw-0002", "ws2-soil", "ws3-th", "ws3-th2"]
    assert _stored(url, devs) == {("gw-0001", "air_temp_c", t0, 21.5), ("ws1-soil", "soil_vwc_10cm", t0, 0.31),
                                  ("gw-0002", "air_temp_c", t0, 22.5), ("ws2-soil", "soil_temp_10cm_c", t0, 14.25),
                                  ("ws3-th", "air_temp_c", t0, 18.75)}
    dead = q(url, "SELECT topic, device_id, reason, detail FROM dead_letters ORDER BY reason, device_id")
    assert {(t, d, r) for t, d, r, _ in dead} == {
        (f"{PREFIX}tbgw/tb-1/v1/gateway/telemetry", "gw-0002", "device_not_on_gateway"),
        (f"{PREFIX}tbgw/tb-1/v1/gateway/telemetry", "no-such-device", "unknown_device")}
    assert len(dead) == 2     # the duplicate message adds no second copy
    assert "tb-1 reported for device gw-0002" in next(x for _, d, r, x in dead if r == "device_not_on_gateway")


def test_mounted_decoding_rules(world: dict[str, Any]) -> None:
    """Decoder level: a revoked or unknown account, a moved gateway (its devices follow its place)."""
    url = world["url"]
    topic = f"{PREFIX}tbgw/%s/v1/gateway/telemetry"
    now = time.time()
    body = _telemetry(int(now * 1000) - 60_000, **{"gw-0003": {"air_temp_c": 20.0}, "ws1-soil": {"soil_vwc_10cm": 0.2}})
    with psycopg.connect(url, autocommit=True) as conn:   # DeviceCache.load ends its read with a rollback
        v = Validator(DeviceCache.load(conn))
        dec = decode_message(topic % "nobody", body, v, PREFIX)
        assert [r.reason for r in dec.rejects] == ["unknown_gateway"] and dec.n_readings == 0
        dec = decode_message(topic % "tb-1", body, v, PREFIX)
        assert [(r.reason, r.device_id) for r in dec.rejects] == [("device_not_on_gateway", "gw-0003")]
        assert dec.n_readings == 1
        ba.issue(conn, "tb-3", "thingsboard_gateway", device_id="gw-0003", listener_port=free_port())
        move_device(conn, "ws1-soil", orchard_id="WS-0003")
        v = Validator(DeviceCache.load(conn))
        dec = decode_message(topic % "tb-3", body, v, PREFIX)
        assert dec.rejects == [] and dec.n_readings == 2
        assert [r.reason for r in decode_message(topic % "tb-1", body, v, PREFIX).rejects] == \
            ["device_not_on_gateway", "device_not_on_gateway"]
        ba.revoke(conn, "tb-3")
        v = Validator(DeviceCache.load(conn))
        assert [r.reason for r in decode_message(topic % "tb-3", body, v, PREFIX).rejects] == ["unknown_gateway"]
        move_device(conn, "ws1-soil", orchard_id="WS-0001")


def test_embedded_amqtt_same_namespace_without_listeners(world: dict[str, Any], tmp_path: Path) -> None:
    """amqtt has no per-listener mount points, so a stock ThingsBoard gateway (fixed topic) cannot get an
    identity there; the generated ACL still gives each account only its own ``tbgw/<account>/``, so a
    client that can set its topic (a bridge, a re-publisher) is the sender ingest checks."""
    url, pw = world["url"], world["pw"]
    auth = tmp_path / "auth"
    auth.mkdir()
    for name in ("passwd", "acl"):
        shutil.copy(world["dir"] / name, auth / name)
    t1 = (int(time.time()) // 60 - 20) * 60
    mine = f"{PREFIX}tbgw/tb-1/v1/gateway/telemetry"

    async def publish() -> None:
        async with _client(broker.port, "tb-1", pw["tb-1"], v5=False) as c:
            await c.publish(mine, _telemetry(t1 * 1000, **{"gw-0001": {"air_temp_c": 19.5},
                                                          "ws2-soil": {"soil_vwc_10cm": 0.4}}), qos=1)
            await c.publish(f"{PREFIX}v1/gateway/telemetry", _telemetry(t1 * 1000, **{"gw-0001": {
                "air_temp_c": 1.0}}), qos=1)   # bare topic: nobody's
        async with _client(broker.port, "tb-2", pw["tb-2"], v5=False) as c:
            await c.publish(mine, _telemetry(t1 * 1000, **{"gw-0001": {"air_temp_c": 2.0}}), qos=1)  # not its own

    with EmbeddedBroker(auth_dir=auth, service_password=secrets.token_urlsafe(16)) as broker:
        asyncio.run(_run(_ingest(url, f"mqtt://ingest:{pw['ingest']}@127.0.0.1:{broker.port}"), publish, 1))
    assert {r for r in _stored(url, ["gw-0001", "ws2-soil"]) if r[2] == t1} == {("gw-0001", "air_temp_c", t1, 19.5)}
    assert q(url, "SELECT device_id, reason FROM dead_letters WHERE device_id = 'ws2-soil'") == [
        ("ws2-soil", "device_not_on_gateway")]
