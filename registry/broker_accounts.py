"""MQTT broker accounts and topic ACLs for every sender: issued by yuncang, enforced by the broker.

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
``thingsboard_gateway`` ``v1/gateway/#``                          nothing
``thingsboard_device`` ``v1/devices/me/telemetry``, ``…/attributes``  nothing
``ingest``             nothing                                   every filter ingest subscribes to
=====================  ========================================  ==================================

Nobody may read ``#``; nobody but ingest may read uplinks, so nobody else can join ingest's shared
group ``$share/ingest/...`` (the broker checks a shared subscription's filter like any other).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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

#: topics (without prefix) each kind may publish; ``{orchard}``/``{device}`` filled per account
WRITE_TOPICS: dict[str, tuple[str, ...]] = {
    "gateway": ("orchards/{orchard}/{device}/up",),
    "chirpstack": ("application/#",),
    "tts": ("v3/#",),
    "thingsboard_gateway": ("v1/gateway/#",),
    "thingsboard_device": ("v1/devices/me/telemetry", "v1/devices/me/attributes"),
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


def issue(conn: psycopg.Connection, username: str, kind: str, *, device_id: str | None = None) -> str:
    """Create or re-key an account; returns the new password (the only time it exists in clear)."""
    if kind not in KINDS:
        raise AccountError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not ID_RE.match(username):
        raise AccountError(f"username {username!r} is not valid (letters, digits, - _ ., at most 64)")
    if kind in _DEVICE_KINDS and device_id is None:
        raise AccountError(f"a {kind} account belongs to a device: give its device_id")
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
        conn.execute(
            "INSERT INTO broker_accounts (username, kind, device_id, password_hash) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, issued_at = now(),"
            " revoked_at = NULL", (username, kind, device_id, hash_password(password)))
    return password


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
        "SELECT a.username, a.kind, a.device_id, a.password_hash, a.issued_at, d.orchard_id, d.status"
        " FROM broker_accounts a LEFT JOIN devices d USING (device_id)"
        " WHERE a.revoked_at IS NULL AND (d.status IS NULL OR d.status <> 'retired') ORDER BY a.username"
    ).fetchall()


@dataclass(frozen=True)
class TopicPlan:
    """What the ACL needs to know about topics: the deployment prefix (ends with '/' or is empty) and the
    filters ingest subscribes to (without prefix)."""

    prefix: str
    ingest_filters: tuple[str, ...]

    def __post_init__(self) -> None:
        if any(c in self.prefix for c in "+#") or (self.prefix and not self.prefix.endswith("/")):
            raise AccountError(f"topic prefix {self.prefix!r} must end with '/' and hold no wildcard")


def acl_entries(account: dict[str, Any], plan: TopicPlan) -> list[tuple[str, str]]:
    """(access, topic) lines of one account: access is 'read' or 'write'."""
    kind = account["kind"]
    out: list[tuple[str, str]] = []
    for t in WRITE_TOPICS[kind]:
        if "{orchard}" in t:
            if not account.get("orchard_id"):
                continue  # a gateway not in an orchard (spare, cold room) may publish nowhere
            t = t.format(orchard=account["orchard_id"], device=account["device_id"])
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
