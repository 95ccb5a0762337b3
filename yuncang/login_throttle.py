"""Login throttling that slows password guessing without letting a stranger lock anyone out.

The old rule (5 failures per account lock it for 15 minutes) let anyone who knows a username — they are
predictable: ``G-00010``, ``admin`` — lock its owner out. This follows OWASP's "device cookies" scheme
(OWASP Authentication Cheat Sheet / "Slow Down Online Guessing Attacks with Device Cookies"):

* A browser or API client that signed in successfully gets a **device cookie** (``yc_device``: 256 random
  bits, stored as SHA-256 in ``login_devices``). Sign-ins for that account presenting it are throttled
  only per device — :data:`MAX_FAILS_PER_DEVICE` failures in the window retire the cookie — and never by
  the account-wide or address limits: the owner's correct password from a known-good client always works.
* Everyone else is throttled by
  - **account + address backoff**: after :data:`FREE_FAILS` failures of one account from one address,
    each further try waits ``BACKOFF_BASE_S * 2^(n - FREE_FAILS)`` s (15, 30, 60 ... capped at the window)
    after the last failure;
  - **address ceiling**: :data:`MAX_FAILS_PER_IP` failures from one address (many accounts) in the window;
  - **account ceiling**: :data:`MAX_FAILS_PER_USER` failures of one account from all addresses in the
    window — much higher, so only a distributed attack reaches it, and even then only clients without a
    device cookie wait.
* The address is the peer's, or — only when the peer is a configured trusted proxy — the nearest
  untrusted address in ``X-Forwarded-For`` (:mod:`yuncang.web.client_address`).

All counts live in PostgreSQL (``login_failures``), so the limits hold across every web process.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import psycopg

FAIL_WINDOW = timedelta(minutes=15)  #: window in which failures are counted
FREE_FAILS = 3  #: failures of one account from one address before backoff starts
BACKOFF_BASE_S = 15  #: wait after FREE_FAILS failures, s; doubles with each further failure
MAX_FAILS_PER_IP = 100  #: failures from one address (any accounts) per window
MAX_FAILS_PER_USER = 1000  #: failures of one account (all addresses) per window, for unknown clients
MAX_FAILS_PER_DEVICE = 10  #: failures through one device cookie per window before it is retired
DEVICE_COOKIE = "yc_device"
DEVICE_TTL = timedelta(days=180)


class LoginThrottled(Exception):
    """Too many failed sign-ins; ``retry_after_s`` seconds to wait."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def _sha(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def known_device(conn: psycopg.Connection, username: str, device: str | None) -> bytes | None:
    """The device cookie's hash when it is live and belongs to ``username``, else None."""
    if not device or len(device) > 100:
        return None
    key = _sha(device)
    row = conn.execute(
        """SELECT 1 FROM login_devices d JOIN users u USING (user_id)
           WHERE d.token_sha256 = %s AND d.revoked_at IS NULL AND d.last_used_at > now() - %s
             AND lower(u.username) = lower(%s)""",
        (key, DEVICE_TTL, username),
    ).fetchone()
    return key if row else None


def check(conn: psycopg.Connection, username: str, ip: str, device_key: bytes | None) -> None:
    """Raise :class:`LoginThrottled` when this attempt must wait (before the password is checked)."""
    if device_key is not None:
        return  # a known-good device is limited by its own failures only (see record_failure)
    user, pair = username.lower(), f"{username.lower()}|{ip}"
    rows = conn.execute(
        """SELECT scope, count(*), extract(epoch FROM min(failed_at) + %(w)s - now()),
                  extract(epoch FROM max(failed_at) - now())
           FROM login_failures
           WHERE failed_at > now() - %(w)s AND ((scope = 'user' AND subject = %(u)s)
                 OR (scope = 'ip' AND subject = %(ip)s) OR (scope = 'user_ip' AND subject = %(pair)s))
           GROUP BY scope""",
        {"w": FAIL_WINDOW, "u": user, "ip": ip, "pair": pair},
    ).fetchall()
    window_s = int(FAIL_WINDOW.total_seconds())
    for scope, n, until_window_end, since_last in rows:
        if (scope == "user" and n >= MAX_FAILS_PER_USER) or (scope == "ip" and n >= MAX_FAILS_PER_IP):
            raise LoginThrottled(max(1, int(until_window_end or 1)))
        if scope == "user_ip" and n >= FREE_FAILS:
            delay = min(window_s, BACKOFF_BASE_S * 2 ** (n - FREE_FAILS))
            wait = delay + float(since_last or 0)  # since_last <= 0: seconds since the last failure, negated
            if wait > 0:
                raise LoginThrottled(max(1, int(wait + 0.999)))


def record_failure(conn: psycopg.Connection, username: str, ip: str, device_key: bytes | None) -> None:
    """Count a failed sign-in (the caller commits). A device cookie over its limit is retired (for this
    account)."""
    user = username.lower()
    if device_key is not None:
        subject = f"{device_key.hex()}|{user}"
        conn.execute("INSERT INTO login_failures (scope, subject) VALUES ('device', %s)", (subject,))
        n = conn.execute("SELECT count(*) FROM login_failures WHERE scope = 'device' AND subject = %s "
                         "AND failed_at > now() - %s", (subject, FAIL_WINDOW)).fetchone()
        if n and n[0] >= MAX_FAILS_PER_DEVICE:
            conn.execute("UPDATE login_devices d SET revoked_at = now() FROM users u WHERE u.user_id = d.user_id "
                         "AND d.token_sha256 = %s AND lower(u.username) = %s", (device_key, user))
        return
    conn.execute("INSERT INTO login_failures (scope, subject) VALUES ('user', %s), ('ip', %s), ('user_ip', %s)",
                 (user, ip, f"{user}|{ip}"))
    # keep the table small: failures older than the window no longer count
    conn.execute("DELETE FROM login_failures WHERE failed_at < now() - %s * 4", (FAIL_WINDOW,))


def record_success(conn: psycopg.Connection, user_id: int, username: str, ip: str,
                   device_key: bytes | None, device: str | None = None) -> str | None:
    """After a correct password: forget this client's failures and remember the client as known-good for
    the account. Returns a new device cookie value when the client has none (the caller sets it); a client
    whose cookie is known for other accounts keeps it, now known for this one too."""
    user = username.lower()
    conn.execute("DELETE FROM login_failures WHERE scope = 'user_ip' AND subject = %s", (f"{user}|{ip}",))
    if device_key is not None:
        conn.execute("DELETE FROM login_failures WHERE scope = 'device' AND subject = %s",
                     (f"{device_key.hex()}|{user}",))
        conn.execute("UPDATE login_devices SET last_used_at = now() WHERE token_sha256 = %s AND user_id = %s",
                     (device_key, user_id))
        return None
    known_elsewhere = bool(device) and len(device or "") <= 100 and conn.execute(
        "SELECT 1 FROM login_devices WHERE token_sha256 = %s AND revoked_at IS NULL LIMIT 1",
        (_sha(device or ""),)).fetchone() is not None
    token = device if known_elsewhere and device else secrets.token_urlsafe(32)
    conn.execute("INSERT INTO login_devices (token_sha256, user_id) VALUES (%s, %s) ON CONFLICT (token_sha256, user_id)"
                 " DO UPDATE SET last_used_at = now(), revoked_at = NULL, created_at = now()", (_sha(token), user_id))
    conn.execute("DELETE FROM login_devices WHERE user_id = %s"
                 " AND (revoked_at IS NOT NULL OR last_used_at < now() - %s)", (user_id, DEVICE_TTL))
    return None if known_elsewhere else token
