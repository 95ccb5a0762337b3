"""Per-device broker credentials and topic ACLs, enforced by a real Mosquitto (a private one, started
from deploy/mosquitto.conf with the generated password_file and acl_file) and by the embedded amqtt
broker reading the same files: a gateway cannot publish as another, read ``#`` or join ingest's
shared group; wrong passwords are refused; ingest still receives everything it should."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest

from registry import broker_accounts as ba
from registry.seed import SeedParams, seed
from yuncang import broker_acl
from yuncang.commands.devices import write_broker_files
from yuncang.embedded import EmbeddedBroker, free_port
from yuncang.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto")
PASSWD = shutil.which("mosquitto_passwd")
pytestmark = pytest.mark.timeout(180)


# ------------------------------------------------------------------------------------------ pure parts


def test_hash_is_mosquitto_passwd_format_both_ways(tmp_path: Path) -> None:
    h = ba.hash_password("s3cret-pw")
    assert re.fullmatch(r"\$7\$1000\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88}", h)
    assert ba.verify_password("s3cret-pw", h) and not ba.verify_password("s3cret-pX", h)
    assert not ba.verify_password("s3cret-pw", "$6$abc$def") and not ba.verify_password("x", "$7$zz$!!$??")
    if PASSWD is None:
        pytest.skip("mosquitto_passwd not installed")
    f = tmp_path / "pw"
    subprocess.run([PASSWD, "-c", "-b", str(f), "alice", "from-mosquitto"], check=True, capture_output=True)
    theirs = f.read_text().strip().split(":", 1)[1]
    assert ba.verify_password("from-mosquitto", theirs) and not ba.verify_password("from-mosquittO", theirs)


@pytest.mark.parametrize(("pattern", "sub", "covered"), [
    ("orchards/WS-1/gw-1/up", "orchards/WS-1/gw-1/up", True),
    ("orchards/+/+/up", "orchards/WS-1/+/up", True),
    ("orchards/+/+/up", "orchards/#", False),
    ("orchards/+/+/up", "#", False),
    ("application/#", "application/1/device/+/event/up", True),
    ("application/+/device/+/command/#", "application/#", False),
    ("a/+", "a/#", False),
    ("#", "#", True),
])
def test_subscription_must_be_covered_by_a_read_pattern(pattern: str, sub: str, covered: bool) -> None:
    assert broker_acl.filter_covered(pattern, sub) is covered


def test_topic_match_follows_mqtt() -> None:
    m = broker_acl.topic_matches
    assert m("a/#", "a") and m("a/#", "a/b/c") and m("a/+/c", "a/b/c") and not m("a/+", "a/b/c")
    assert not m("#", "$SYS/broker") and not m("+/x", "$share/x")
    assert broker_acl.strip_share("$share/ingest/orchards/+/+/up") == "orchards/+/+/up"


# ------------------------------------------------------------------------------------------ the fleet


@pytest.fixture(scope="module")
def accounts(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Issued accounts (two native gateways, ChirpStack, a ThingsBoard gateway, ingest) and the files."""
    url = make_database()
    migrate(url)
    out = tmp_path_factory.mktemp("broker-files")
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams(seed=3, orchard_count=3, total_area_mu=300.0))
        issued = dict(ba.issue_gateways(conn))
        issued["ingest"] = ba.issue(conn, "ingest", "ingest")
        issued["chirpstack"] = ba.issue(conn, "chirpstack", "chirpstack")
        issued["tb-gw"] = ba.issue(conn, "tb-gw", "thingsboard_gateway", device_id="gw-0003",
                                   listener_port=free_port())
        issued["revoked"] = ba.issue(conn, "revoked", "chirpstack")
        assert ba.revoke(conn, "revoked") and not ba.revoke(conn, "revoked")
        with pytest.raises(ba.AccountError, match="already a gateway account"):
            ba.issue(conn, "gw-0001", "chirpstack")
        write_broker_files(conn, out, "")
        stored = dict(conn.execute("SELECT username, password_hash FROM broker_accounts").fetchall())
    assert set(issued) - {"revoked"} == {"gw-0001", "gw-0002", "gw-0003", "ingest", "chirpstack", "tb-gw"}
    for user, pw in issued.items():     # only hashes are stored
        assert pw not in stored[user] and ba.verify_password(pw, stored[user])
    acl = (out / "acl").read_text()
    assert "user gw-0001\ntopic write orchards/WS-0001/gw-0001/up\n" in acl and "revoked" not in acl
    assert "topic read #" not in acl and "readwrite" not in acl
    return {"pw": issued, "dir": out, "url": url}


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(200):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("broker did not listen")


DYNSEC = next((p for p in ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                           "/usr/lib/mosquitto_dynamic_security.so") if Path(p).exists()), None)


@contextmanager
def private_mosquitto(conf: str, tmp: Path) -> Iterator[int]:
    """A Mosquitto of this test alone on a free port, running ``conf`` (deploy/mosquitto.conf's shape)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed")
    port = free_port()
    conf = (conf.replace("listener 1883", f"listener {port} 127.0.0.1")
                .replace("/mosquitto/data/", f"{tmp}/")
                .replace("log_dest stdout", f"log_dest file {tmp}/mosquitto.log"))
    (tmp / "mosquitto.conf").write_text(conf + "\nuser root\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(tmp / "mosquitto.conf")], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def mosquitto(accounts: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """deploy/mosquitto.conf as shipped (dynamic-security plugin) with the generated configuration."""
    if DYNSEC is None:
        pytest.skip("mosquitto's dynamic-security plugin not installed")
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "plugin_opt_config_file /mosquitto/config/auth/" in conf
    conf = conf.replace("/usr/lib/mosquitto_dynamic_security.so", DYNSEC) \
               .replace("/mosquitto/config/auth/", f"{accounts['dir']}/")
    with private_mosquitto(conf, tmp_path_factory.mktemp("mosq")) as port:
        yield port


@pytest.fixture(scope="module")
def amqtt_auth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("amqtt-auth")


@pytest.fixture(scope="module")
def amqtt_broker(accounts: dict[str, Any], amqtt_auth: Path) -> Iterator[int]:
    """The embedded amqtt broker reading the same passwd/acl (plus its own random service account)."""
    for name in ("passwd", "acl"):
        shutil.copy(accounts["dir"] / name, amqtt_auth / name)
    with EmbeddedBroker(auth_dir=amqtt_auth, service_password=secrets.token_urlsafe(16)) as b:
        yield b.port


def _client(port: int, user: str | None, password: str | None, v5: bool, cid: str) -> aiomqtt.Client:
    proto = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, identifier=cid, protocol=proto,
                          timeout=10)


def _refused(codes: Any) -> bool:
    return all((c.value if hasattr(c, "value") else c) >= 0x80 for c in codes)


async def _boundaries(port: int, pw: dict[str, str], v5: bool) -> dict[str, Any]:
    """Run the attack and the honest traffic; return what ingest received and what the attacker got."""
    run = secrets.token_hex(3)
    got: list[tuple[str, bytes]] = []
    facts: dict[str, Any] = {}
    share = "$share/ingest/" if v5 else ""
    async with _client(port, "ingest", pw["ingest"], v5, f"ingest-{run}") as ingest, \
            _client(port, "gw-0001", pw["gw-0001"], v5, f"a-{run}") as a, \
            _client(port, "gw-0002", pw["gw-0002"], v5, f"b-{run}") as b, \
            _client(port, "chirpstack", pw["chirpstack"], v5, f"cs-{run}") as cs, \
            _client(port, "tb-gw", pw["tb-gw"], v5, f"tb-{run}") as tb:
        for f in ("orchards/+/+/up", "application/+/device/+/event/up", "tbgw/+/v1/gateway/telemetry",
                  "v1/gateway/telemetry"):
            facts.setdefault("ingest_granted", []).append(not _refused(await ingest.subscribe(share + f, qos=1)))
        # gateway A tries to read everything and to join ingest's shared group
        facts["a_hash"] = _refused(await a.subscribe("#", qos=1))
        facts["a_share_all"] = _refused(await a.subscribe("$share/ingest/#", qos=1))
        facts["a_share_up"] = _refused(await a.subscribe("$share/ingest/orchards/+/+/up", qos=1))
        facts["a_up"] = _refused(await a.subscribe("orchards/+/+/up", qos=1))
        facts["a_sys"] = _refused(await a.subscribe("$SYS/#", qos=1))
        # A publishes as B, into B's orchard, as an integration, on ThingsBoard's shared topic and as the
        # ThingsBoard gateway (its mounted namespace)
        for topic in ("orchards/WS-0002/gw-0002/up", "orchards/WS-0001/gw-0002/up", "orchards/WS-0002/gw-0001/up",
                      "application/1/device/0000000000000001/event/up", "v1/gateway/telemetry",
                      "tbgw/tb-gw/v1/gateway/telemetry"):
            await a.publish(topic, b"forged-by-a", qos=1)
        await b.publish("application/1/device/0000000000000002/event/up", b"forged-by-b", qos=1)
        # the honest traffic: 20 uplinks from each gateway, one from each integration
        for i in range(20):
            await a.publish("orchards/WS-0001/gw-0001/up", f"a{i}".encode(), qos=1)
            await b.publish("orchards/WS-0002/gw-0002/up", f"b{i}".encode(), qos=1)
        await cs.publish("application/1/device/0000000000000003/event/up", b"cs", qos=1)
        # the ThingsBoard gateway may publish only in its own namespace (what its listener's mount point
        # makes of v1/gateway/telemetry); the bare shared topic is nobody's
        await tb.publish("v1/gateway/telemetry", b"forged-tb-bare", qos=1)
        await tb.publish("tbgw/tb-gw/v1/gateway/telemetry", b"tb", qos=1)
        await a.publish("orchards/WS-0001/gw-0001/up", b"end", qos=1)
        try:
            async with asyncio.timeout(10):
                async for m in ingest.messages:
                    got.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
                    if len(got) >= 43:
                        break
            async with asyncio.timeout(0.5):   # anything more (a forged message) would arrive by now
                async for m in ingest.messages:
                    got.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
        except TimeoutError:
            pass
        stolen: list[bytes] = []
        try:
            async with asyncio.timeout(1.0):
                async for m in a.messages:
                    stolen.append(bytes(m.payload))  # type: ignore[arg-type]
        except TimeoutError:
            pass
        facts["stolen"] = stolen
    # credentials that must not work
    refused = []
    for user, password in (("gw-0001", pw["gw-0002"]), ("gw-0001", ""), ("nobody", "x"), (None, None),
                           ("revoked", pw["revoked"]), ("yuncang", "yuncang")):
        try:
            async with _client(port, user, password, v5, f"bad-{run}"):
                refused.append(False)
        except aiomqtt.MqttError:
            refused.append(True)
    facts["bad_logins_refused"] = refused
    facts["got"] = got
    return facts


def _check(f: dict[str, Any]) -> None:
    assert f["ingest_granted"] == [True, True, True, True]
    assert f["a_hash"] and f["a_share_all"] and f["a_share_up"] and f["a_up"] and f["a_sys"]
    payloads = sorted(p for _, p in f["got"])
    expect = sorted([f"a{i}".encode() for i in range(20)] + [f"b{i}".encode() for i in range(20)]
                    + [b"cs", b"tb", b"end"])
    assert payloads == expect                      # everything honest, exactly once; nothing forged
    assert {t for t, p in f["got"] if p.startswith(b"a")} == {"orchards/WS-0001/gw-0001/up"}
    assert f["stolen"] == []
    assert f["bad_logins_refused"] == [True] * 6


def test_mosquitto_enforces_the_generated_acl(accounts: dict[str, Any], mosquitto: int) -> None:
    _check(asyncio.run(_boundaries(mosquitto, accounts["pw"], v5=True)))


def test_plain_acl_file_lets_a_gateway_black_hole_ingests_shared_group(accounts: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    """Why deploy/mosquitto.conf uses the dynamic-security plugin: with password_file + acl_file (same
    accounts and topic lines), Mosquitto grants gateway A its SUBSCRIBE to ingest's shared group and then
    drops A's share of the uplinks at delivery (acl_file never checks subscriptions)."""
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    # (without the ThingsBoard listeners: the module's dynsec broker holds their ports)
    conf = re.sub(r"^(plugin|include_dir).*$", "", conf, flags=re.M) + (
        f"\npassword_file {accounts['dir']}/passwd\nacl_file {accounts['dir']}/acl\n")
    with private_mosquitto(conf, tmp_path) as port:
        f = asyncio.run(_boundaries(port, accounts["pw"], v5=True))
    assert not f["a_share_up"] and f["stolen"] == []           # granted, yet A never sees a message ...
    lost = {f"b{i}".encode() for i in range(20)} - {p for _, p in f["got"]}
    assert len(lost) >= 5                                      # ... and ingest loses A's share of them
    assert not any(p.startswith(b"forged") for _, p in f["got"])  # publishing is still enforced


def test_embedded_amqtt_enforces_the_same_files(accounts: dict[str, Any], amqtt_broker: int) -> None:
    _check(asyncio.run(_boundaries(amqtt_broker, accounts["pw"], v5=False)))


def test_moved_gateway_publishes_only_to_its_new_orchard_once_the_files_are_rewritten(
        accounts: dict[str, Any], amqtt_broker: int, amqtt_auth: Path) -> None:
    """A move changes the gateway's ACL when the files are regenerated; the embedded broker re-reads them
    without a restart."""
    from registry.devices import move_device

    pw = accounts["pw"]

    async def go() -> list[bytes]:
        got: list[bytes] = []
        async with _client(amqtt_broker, "ingest", pw["ingest"], False, "ingest-mv") as ingest, \
                _client(amqtt_broker, "gw-0002", pw["gw-0002"], False, "b-mv") as b:
            await ingest.subscribe("orchards/+/+/up", qos=1)
            await b.publish("orchards/WS-0002/gw-0002/up", b"old-place", qos=1)
            await b.publish("orchards/WS-0003/gw-0002/up", b"new-place", qos=1)
            await b.publish("orchards/WS-0002/gw-0002/up", b"end", qos=1)
            async with asyncio.timeout(10):
                async for m in ingest.messages:
                    got.append(bytes(m.payload))  # type: ignore[arg-type]
                    if m.payload == b"end" or len(got) > 3:
                        break
        return got

    assert asyncio.run(go()) == [b"old-place", b"end"]
    with psycopg.connect(accounts["url"]) as conn:
        move_device(conn, "gw-0002", orchard_id="WS-0003")
        write_broker_files(conn, amqtt_auth, "")

    async def after() -> list[bytes]:
        got: list[bytes] = []
        async with _client(amqtt_broker, "ingest", pw["ingest"], False, "ingest-mv2") as ingest, \
                _client(amqtt_broker, "gw-0002", pw["gw-0002"], False, "b-mv2") as b:
            await ingest.subscribe("orchards/+/+/up", qos=1)
            await b.publish("orchards/WS-0002/gw-0002/up", b"old-place", qos=1)
            await b.publish("orchards/WS-0003/gw-0002/up", b"end", qos=1)
            async with asyncio.timeout(10):
                async for m in ingest.messages:
                    got.append(bytes(m.payload))  # type: ignore[arg-type]
                    if m.payload == b"end" or len(got) > 3:
                        break
        return got

    assert asyncio.run(after()) == [b"end"]


def test_a_listener_mount_point_gives_a_thingsboard_gateway_an_identity(tmp_path: Path) -> None:
    """The arrangement docs/wire-format.md recommends for ThingsBoard gateways (their topic is fixed):
    a listener of their own with ``mount_point tbgw/<account>/``, so that what they publish on
    ``v1/gateway/telemetry`` arrives as ``tbgw/<account>/v1/gateway/telemetry``; another account can
    neither use that listener nor publish the mounted topic."""
    if DYNSEC is None:
        pytest.skip("mosquitto's dynamic-security plugin not installed")
    accounts = [{"username": u, "kind": "chirpstack", "password_hash": ba.hash_password(u + "-pw")}
                for u in ("tb-1", "tb-2", "ingest")]
    doc = json.loads(ba.render_dynsec_json(accounts, ba.TopicPlan("", ())))
    grants = {"tb-1": [("publishClientSend", "tbgw/tb-1/v1/gateway/telemetry")],
              "tb-2": [("publishClientSend", "tbgw/tb-2/v1/gateway/telemetry")],
              "ingest": [("subscribePattern", "tbgw/+/v1/gateway/telemetry"), ("publishClientReceive", "tbgw/#")]}
    for role in doc["roles"]:
        role["acls"] = [{"acltype": t, "topic": topic, "allow": True} for t, topic in grants[role["rolename"][5:]]]
    (tmp_path / "dynsec.json").write_text(json.dumps(doc))
    own = free_port()
    conf = ("listener 1883\nallow_anonymous false\nlog_dest stdout\n"
            f"plugin {DYNSEC}\nplugin_opt_config_file {tmp_path}/dynsec.json\n"
            f"listener {own} 127.0.0.1\nmount_point tbgw/tb-1/\n")

    async def go(main: int) -> list[tuple[str, bytes]]:
        got: list[tuple[str, bytes]] = []
        async with _client(main, "ingest", "ingest-pw", True, "i") as ing:
            await ing.subscribe("tbgw/+/v1/gateway/telemetry", qos=1)
            for port, user, topic, body in ((own, "tb-1", "v1/gateway/telemetry", b"tb-1 on its listener"),
                                            (own, "tb-2", "v1/gateway/telemetry", b"tb-2 on tb-1's listener"),
                                            (main, "tb-2", "tbgw/tb-1/v1/gateway/telemetry", b"tb-2 forging")):
                async with _client(port, user, f"{user}-pw", True, f"c-{user}") as c:
                    await c.publish(topic, body, qos=1)
            try:
                async with asyncio.timeout(1.5):
                    async for m in ing.messages:
                        got.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
            except TimeoutError:
                pass
        return got

    with private_mosquitto(conf, tmp_path) as main:
        assert asyncio.run(go(main)) == [("tbgw/tb-1/v1/gateway/telemetry", b"tb-1 on its listener")]
