"""MQTT broker accounts and topic ACLs for every sender: issued by yuncang, enforced by the broker.

For Mosquitto, :func:`render_dynsec_json` writes the dynamic-security plugin's configuration (the
production setup, deploy/mosquitto.conf). Mosquitto's plain ``acl_file`` is NOT enough: its check
returns "allowed" for every SUBSCRIBE (``/* FIXME - implement ACL subscription strings */`` in
``mosquitto_acl_check_default``, every 1.x/2.x release) and filters only at delivery — so any account
can join ``$share/ingest/...`` and the broker hands it (then drops) its share of the uplinks; measured
in tests/test_broker_acl.py: half of them lost. The dynamic-security plugin checks subscriptions.

Each native gateway, ThingsBoard gateway or device and network-server integration (ChirpStack, The
Things Stack) gets its own username and a random password; ingest has its own. Only the hash is
stored, in Mosquitto's ``password_file`` format ``$7$<iterations>$<salt b64>$<hash b64>``:
PBKDF2-HMAC-SHA512 (RFC 8018 §5.2) with a 12-byte salt and a 64-byte key, exactly what
``mosquitto_passwd`` (Mosquitto ≥ 2.0) writes, so the rendered file is read by Mosquitto unchanged.

:func:`render_acl_file` writes Mosquitto's ``acl_file``: what each account may publish and read.

=====================  ========================================  ==================================
kind                   may publish (after the topic prefix)      may read
=====================  ========================================  ==================================
``gateway``            ``orchards/<its orchard>/<its id>/up``    nothing
``chirpstack``         ``application/#``                         ``application/+/device/+/command/#``
``tts``                ``v3/#``                                  nothing
``thingsboard_gateway`` ``tbgw/<its username>/v1/gateway/#``     nothing
``thingsboard_device`` ``tb/<its device>/v1/devices/me/telemetry``, ``…/attributes``  nothing
``ingest``             nothing                                   every filter ingest subscribes to
=====================  ========================================  ==================================

Nobody may read ``#``; nobody but ingest may read uplinks, so nobody else can join ingest's shared
group ``$share/ingest/...`` (the broker checks a shared subscription's filter like any other).

A ThingsBoard gateway cannot choose its topic (``v1/gateway/telemetry``), so each one gets a Mosquitto
listener of its own (a stored TCP port, ``listener_port``) with ``mount_point <prefix>tbgw/<username>/``
(:func:`render_listeners_conf`): what it publishes there arrives as
``<prefix>tbgw/<username>/v1/gateway/telemetry``, and only that account may publish under
``tbgw/<username>/``. The account's devices (:func:`thingsboard_gateway_devices`) are those placed where
the account's own device is; ingest dead-letters readings of any other device.

A device on ThingsBoard's *device* API cannot choose its topic either (``v1/devices/me/telemetry``), so a
``thingsboard_device`` account gets a listener of its own the same way, with
``mount_point <prefix>tb/<its device>/``: what it publishes there arrives as
``<prefix>tb/<device>/v1/devices/me/telemetry``, the device-API topic ingest reads with the device taken
from the topic, and only that account may publish under ``tb/<device>/``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from registry.devices import ID_RE

#: PBKDF2 iterations of new hashes. mosquitto_passwd's default is 101; more costs each CONNECT
#: ~1 ms per 1,000 (measured on this machine kind) and slows offline guessing of a leaked hash.
ITERATIONS = 1000
SALT_BYTES = 12
KINDS: tuple[str, ...] = ("gateway", "chirpstack", "tts", "thingsboard_gateway", "thingsboard_device", "ingest")
_DEVICE_KINDS = ("gateway", "thingsboard_device")
#: kinds whose sender cannot choose its topic, so each account gets a Mosquitto listener with a mount point
LISTENER_KINDS = ("thingsboard_gateway", "thingsboard_device")
#: topic namespace of the ThingsBoard gateways' listeners (after the deployment prefix):
#: ``mount_point <prefix>tbgw/<username>/``
TB_GATEWAY_MOUNT = "tbgw/"
#: topic namespace of the ThingsBoard device-API listeners: ``mount_point <prefix>tb/<device_id>/`` (the
#: namespace ingest's device-API filter ``tb/+/v1/devices/me/telemetry`` reads)
TB_DEVICE_MOUNT = "tb/"
#: the first listener port given to a ThingsBoard account (then the lowest free one above it)
TB_LISTENER_PORT_BASE = 18831

#: topics (without prefix) each kind may publish; ``{orchard}``/``{device}`` filled per account
WRITE_TOPICS: dict[str, tuple[str, ...]] = {
    "gateway": ("orchards/{orchard}/{device}/up",),
    "chirpstack": ("application/#",),
    "tts": ("v3/#",),
    # its own namespace only: on its listener the mount point puts its v1/gateway/... there
    "thingsboard_gateway": ("{mount}{username}/v1/gateway/#",),
    # its own namespace only: on its listener the mount point puts its v1/devices/me/... there
    "thingsboard_device": (TB_DEVICE_MOUNT + "{device}/v1/devices/me/telemetry",
                           TB_DEVICE_MOUNT + "{device}/v1/devices/me/attributes"),
    "ingest": (),
}
#: topics (without prefix) each kind may read besides ingest's uplink filters
READ_TOPICS: dict[str, tuple[str, ...]] = {"chirpstack": ("application/+/device/+/command/#",)}


class AccountError(ValueError):
    """Bad account request (unknown kind, bad username, device missing or retired)."""


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto ``$7$`` hash of ``password`` (PBKDF2-HMAC-SHA512, 64-byte key)."""
    s = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), s, iterations)
    return f"$7${iterations}${base64.b64encode(s).decode()}${base64.b64encode(key).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (constant-time compare); False for any other format."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations, salt, key = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    if not (1 <= iterations <= 10_000_000):
        return False
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(key)), key)


def new_password() -> str:
    """A random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def issue(conn: psycopg.Connection, username: str, kind: str, *, device_id: str | None = None,
          listener_port: int | None = None) -> str:
    """Create or re-key an account; returns the new password (the only time it exists in clear).

    A ThingsBoard account (:data:`LISTENER_KINDS`) keeps its listener port; a new one gets ``listener_port``
    or the lowest free port from :data:`TB_LISTENER_PORT_BASE`."""
    if kind not in KINDS:
        raise AccountError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not ID_RE.match(username):
        raise AccountError(f"username {username!r} is not valid (letters, digits, - _ ., at most 64)")
    if kind in _DEVICE_KINDS and device_id is None:
        raise AccountError(f"a {kind} account belongs to a device: give its device_id")
    if listener_port is not None and (kind not in LISTENER_KINDS or not 1024 <= listener_port <= 65535):
        raise AccountError("a listener port (1024-65535) is for thingsboard_gateway and thingsboard_device"
                           " accounts only")
    if device_id is not None:
        row = conn.execute("SELECT status FROM devices WHERE device_id = %s", (device_id,)).fetchone()
        if row is None:
            raise AccountError(f"no device {device_id!r}")
        if row[0] == "retired":
            raise AccountError(f"device {device_id} is retired")
    password = new_password()
    with conn.transaction():
        owner = conn.execute("SELECT kind, device_id FROM broker_accounts WHERE username = %s FOR UPDATE",
                             (username,)).fetchone()
        if owner is not None and (owner[0], owner[1]) != (kind, device_id):
            raise AccountError(f"username {username} is already a {owner[0]} account"
                               + (f" of device {owner[1]}" if owner[1] else ""))
        port = None
        if kind in LISTENER_KINDS:
            port = _listener_port(conn, username, listener_port)
        conn.execute(
            "INSERT INTO broker_accounts (username, kind, device_id, password_hash, listener_port)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, issued_at = now(),"
            " revoked_at = NULL, listener_port = EXCLUDED.listener_port",
            (username, kind, device_id, hash_password(password), port))
    return password


def _listener_port(conn: psycopg.Connection, username: str, wanted: int | None) -> int:
    """The account's listener port: ``wanted``, else the one it has, else the lowest free one."""
    conn.execute("LOCK TABLE broker_accounts IN SHARE ROW EXCLUSIVE MODE")  # two issues never pick one port
    if wanted is not None:
        other = conn.execute("SELECT username FROM broker_accounts WHERE listener_port = %s AND username <> %s",
                             (wanted, username)).fetchone()
        if other is not None:
            raise AccountError(f"listener port {wanted} is already {other[0]}'s")
        return wanted
    row = conn.execute("SELECT listener_port FROM broker_accounts WHERE username = %s", (username,)).fetchone()
    if row is not None and row[0] is not None:
        return int(row[0])
    free = conn.execute("SELECT min(p) FROM generate_series(%s, 65535) p WHERE NOT EXISTS"
                        " (SELECT 1 FROM broker_accounts WHERE listener_port = p)", (TB_LISTENER_PORT_BASE,)).fetchone()
    if free is None or free[0] is None:
        raise AccountError("no free listener port left")
    return int(free[0])


def issue_gateways(conn: psycopg.Connection, *, orchard_id: str | None = None,
                   rekey: bool = False) -> list[tuple[str, str]]:
    """Accounts for active native gateways (username = device id) that have none yet (all of them with
    ``rekey``), optionally of one orchard; returns (username, password) pairs."""
    rows = conn.execute(
        "SELECT d.device_id FROM devices d LEFT JOIN broker_accounts a ON a.username = d.device_id"
        " AND a.revoked_at IS NULL WHERE d.kind = 'gateway' AND d.status = 'active' AND d.orchard_id IS NOT NULL"
        " AND (%s OR a.username IS NULL) AND (%s::text IS NULL OR d.orchard_id = %s) ORDER BY d.device_id",
        (rekey, orchard_id, orchard_id)).fetchall()
    return [(r[0], issue(conn, r[0], "gateway", device_id=r[0])) for r in rows]


def revoke(conn: psycopg.Connection, username: str) -> bool:
    """Revoke a live account; False when there was none."""
    with conn.transaction():
        cur = conn.execute("UPDATE broker_accounts SET revoked_at = now() WHERE username = %s"
                           " AND revoked_at IS NULL", (username,))
    return cur.rowcount == 1


def live_accounts(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Live accounts with what their ACL needs (a gateway's current orchard), by username."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT a.username, a.kind, a.device_id, a.password_hash, a.issued_at, a.listener_port, d.orchard_id,"
        " d.status"
        " FROM broker_accounts a LEFT JOIN devices d USING (device_id)"
        " WHERE a.revoked_at IS NULL AND (d.status IS NULL OR d.status <> 'retired') ORDER BY a.username"
    ).fetchall()


@dataclass(frozen=True)
class TopicPlan:
    """What the ACL needs to know about topics: the deployment prefix (ends with '/' or is empty) and the
    filters ingest subscribes to (without prefix)."""

    prefix: str
    ingest_filters: tuple[str, ...]
    #: namespace of the ThingsBoard gateways' mount points (after the prefix)
    tb_gateway_mount: str = TB_GATEWAY_MOUNT

    def __post_init__(self) -> None:
        for what, v in (("topic prefix", self.prefix), ("ThingsBoard gateway mount", self.tb_gateway_mount)):
            if any(c in v for c in "+#") or (v and not v.endswith("/")):
                raise AccountError(f"{what} {v!r} must end with '/' and hold no wildcard")
        if not self.tb_gateway_mount:
            raise AccountError("the ThingsBoard gateway mount namespace must not be empty")

    def mount_point(self, username: str) -> str:
        """The ``mount_point`` of a ThingsBoard gateway account's listener."""
        return f"{self.prefix}{self.tb_gateway_mount}{username}/"

    def listener_mount_point(self, account: dict[str, Any]) -> str:
        """The ``mount_point`` of a ThingsBoard account's listener: the gateway's namespace (by username) or
        the device API's (by device)."""
        if account["kind"] == "thingsboard_device":
            return f"{self.prefix}{TB_DEVICE_MOUNT}{account['device_id']}/"
        return self.mount_point(account["username"])


def acl_entries(account: dict[str, Any], plan: TopicPlan) -> list[tuple[str, str]]:
    """(access, topic) lines of one account: access is 'read' or 'write'."""
    kind = account["kind"]
    out: list[tuple[str, str]] = []
    for t in WRITE_TOPICS[kind]:
        if "{orchard}" in t:
            if not account.get("orchard_id"):
                continue  # a gateway not in an orchard (spare, cold room) may publish nowhere
            t = t.format(orchard=account["orchard_id"], device=account["device_id"])
        elif "{mount}" in t:
            t = t.format(mount=plan.tb_gateway_mount, username=account["username"])
        elif "{device}" in t:
            if not account.get("device_id"):
                continue
            t = t.format(device=account["device_id"])
        out.append(("write", plan.prefix + t))
    reads = plan.ingest_filters if kind == "ingest" else READ_TOPICS.get(kind, ())
    out += [("read", plan.prefix + t) for t in reads]
    return out


_HEADER = "# generated by `yuncang devices credentials files` from the broker_accounts table: do not edit\n"


def render_password_file(accounts: list[dict[str, Any]]) -> str:
    """Mosquitto ``password_file``: ``username:hash`` per live account."""
    return _HEADER + "".join(f"{a['username']}:{a['password_hash']}\n" for a in accounts)


def render_acl_file(accounts: list[dict[str, Any]], plan: TopicPlan) -> str:
    """Mosquitto ``acl_file``: a ``user`` block per account; an account without lines may do nothing."""
    out = [_HEADER, "# no topic lines before the first 'user': anonymous clients are refused anyway\n"]
    for a in accounts:
        out.append(f"\n# {a['kind']}" + (f" of device {a['device_id']}" if a.get("device_id") else "") + "\n")
        out.append(f"user {a['username']}\n")
        out += [f"topic {access} {topic}\n" for access, topic in acl_entries(a, plan)]
    return "".join(out)


def render_listeners_conf(accounts: list[dict[str, Any]], plan: TopicPlan) -> str:
    """Mosquitto configuration lines (``include_dir``-able): one listener per ThingsBoard gateway account,
    on its stored port, with ``mount_point <prefix>tbgw/<username>/``, and one per ThingsBoard device-API
    account with ``mount_point <prefix>tb/<device_id>/``. Authentication and ACLs stay global
    (the dynamic-security plugin, ``per_listener_settings false``): another account may log in on this
    listener, but what it publishes there is mounted under this account's namespace, which its ACL does
    not allow — so it is refused."""
    out = [_HEADER.replace("do not edit", "do not edit; read by deploy/mosquitto.conf's include_dir"),
           "# one listener per ThingsBoard gateway or device-API device: point its MQTT client at this port\n"]
    for a in accounts:
        if a["kind"] not in LISTENER_KINDS or a.get("listener_port") is None:
            continue
        if a["kind"] == "thingsboard_device" and not a.get("device_id"):
            continue
        dev = f" (device {a['device_id']})" if a.get("device_id") else " (no device: every reading is refused)"
        what = "gateway" if a["kind"] == "thingsboard_gateway" else "device-API"
        out.append(f"\n# ThingsBoard {what} account {a['username']}{dev}\n"
                   f"listener {int(a['listener_port'])}\nprotocol mqtt\n"
                   f"mount_point {plan.listener_mount_point(a)}\n")
    return "".join(out)


def thingsboard_gateway_devices(conn: psycopg.Connection) -> dict[str, frozenset[str]]:
    """Live ThingsBoard gateway accounts -> the active devices they may report for: the account's own
    device and every active device placed where it is now (same orchard, or same cold room). An account
    without a device, or whose device has no place, may report for none (ingest dead-letters all)."""
    rows = conn.execute(
        "SELECT a.username, array_remove(array_agg(m.device_id), NULL) FROM broker_accounts a"
        " LEFT JOIN devices g ON g.device_id = a.device_id AND g.status <> 'retired'"
        " LEFT JOIN devices m ON m.active AND (m.device_id = g.device_id"
        "   OR (g.orchard_id IS NOT NULL AND m.orchard_id = g.orchard_id)"
        "   OR (g.cold_room_id IS NOT NULL AND m.cold_room_id = g.cold_room_id))"
        " WHERE a.kind = 'thingsboard_gateway' AND a.revoked_at IS NULL GROUP BY a.username").fetchall()
    return {r[0]: frozenset(r[1]) for r in rows}


def _role(username: str) -> str:
    return f"acct-{username}"


def render_dynsec_json(accounts: list[dict[str, Any]], plan: TopicPlan) -> str:
    """Configuration of Mosquitto's dynamic-security plugin (``plugin_opt_config_file``): a client per
    account (the same PBKDF2-SHA512 hash, split into password/salt/iterations) with a role holding its
    ACL. Defaults deny publishing and subscribing; a read topic is allowed to subscribe plainly and in any
    shared group (``$share/+/<topic>``: the subscribe check sees the full filter)."""
    clients, roles = [], []
    for a in accounts:
        _, _, iterations, salt, key = a["password_hash"].split("$")
        clients.append({"username": a["username"], "textname": a["kind"] + (f" {a['device_id']}" if a.get("device_id")
                                                                          else ""),
                        "password": key, "salt": salt, "iterations": int(iterations),
                        "roles": [{"rolename": _role(a["username"])}]})
        acls: list[dict[str, Any]] = []
        for access, topic in acl_entries(a, plan):
            if access == "write":
                acls.append({"acltype": "publishClientSend", "topic": topic, "allow": True})
            else:
                acls += [{"acltype": "subscribePattern", "topic": topic, "allow": True},
                         {"acltype": "subscribePattern", "topic": f"$share/+/{topic}", "allow": True},
                         {"acltype": "publishClientReceive", "topic": topic, "allow": True}]
        roles.append({"rolename": _role(a["username"]), "acls": acls})
    doc = {"clients": clients, "groups": [], "roles": roles,
           "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                                "unsubscribe": True}}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
