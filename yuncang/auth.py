"""Users, sign-in, sessions, bearer tokens, login throttling, CSRF and who-sees-what.

* Passwords are hashed with Argon2id (argon2-cffi ``PasswordHasher`` defaults: time cost 3,
  64 MiB memory, 4 lanes — RFC 9106's second recommended option).
* A sign-in creates a row in ``auth_tokens`` holding only the SHA-256 of a 256-bit random token.
  Browsers get it as an ``HttpOnly; SameSite=Lax`` cookie (``Secure`` when served over HTTPS);
  API clients get it as a bearer token (``Authorization: Bearer <token>``).
* Failed sign-ins are counted in ``login_failures`` per account and per client address, so the
  limit holds across every app process sharing the database.
* Cookie-authenticated state-changing requests must carry the session's CSRF token (form field
  ``csrf_token`` or header ``X-CSRF-Token``); bearer requests need none (browsers never attach them).
* A token turns back into a :class:`Principal` (who is signed in) through :func:`principal_for_token`.

This is the one place of authentication (who you are). Reading a token from a request and the CSRF
check are the web layer's (:mod:`yuncang.web.deps`); what a principal may see is decided by the pure
rules of :mod:`yuncang.web.access`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request

log = logging.getLogger(__name__)

ROLES = ("grower", "buyer", "manager", "admin")
SESSION_COOKIE = "yc_session"
LOGIN_CSRF_COOKIE = "yc_login_csrf"
SESSION_TTL = timedelta(days=7)  #: browser session lifetime
BEARER_TTL = timedelta(days=30)  #: API token lifetime
FAIL_WINDOW = timedelta(minutes=15)  #: window in which failures are counted
MAX_FAILS_PER_USER = 5  #: failed sign-ins per account per window before lock-out
MAX_FAILS_PER_IP = 30  #: failed sign-ins per client address per window

#: Documented demo passwords (docs/users.md). Demo accounts only; real deployments add users with
#: ``create_user`` / ``yuncang users add``.
DEMO_PASSWORDS = {"grower": "plum-grower", "manager": "plum-manager", "buyer": "plum-buyer", "admin": "plum-admin"}

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Principal:
    """The signed-in user as request handlers see it."""

    user_id: int
    username: str
    display_name: str
    role: str
    grower_id: str | None
    buyer_id: str | None
    cooperative_id: str | None
    csrf_token: str
    via: str  #: 'session' (cookie) or 'bearer'

    @property
    def home(self) -> str:
        return {"grower": "/grower", "buyer": "/buyer", "manager": "/manager", "admin": "/manager"}[self.role]


# A few seconds of in-process memory for token lookups: the hot read paths (an orchard's conditions,
# a chart) then cost one query instead of two. Revocation takes effect within CACHE_TTL_S.
CACHE_TTL_S = 5.0
_CACHE: dict[bytes, tuple[float, Principal | None]] = {}


def cached_principal(key: bytes, via: str, now: float) -> tuple[bool, Principal | None]:
    """(found, principal) from the in-process cache; found is False when the lookup must go to the DB."""
    hit = _CACHE.get(key)
    if hit and now - hit[0] < CACHE_TTL_S:
        return True, (hit[1] if hit[1] is None or hit[1].via == via else None)
    return False, None


def principal_for_token(conn: psycopg.Connection, token: str, via: str) -> Principal | None:
    """The user a live (unexpired, unrevoked, enabled) token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    key = token_sha256(token)
    now = time.monotonic()
    found, cached = cached_principal(key, via, now)
    if found:
        return cached
    row = conn.execute(
        """SELECT u.user_id, u.username, u.display_name, u.role, u.grower_id, u.buyer_id, u.cooperative_id,
                  t.csrf_token, t.kind, t.last_seen_at < now() - interval '5 minutes'
           FROM auth_tokens t JOIN users u USING (user_id)
           WHERE t.token_sha256 = %s AND t.revoked_at IS NULL AND t.expires_at > now() AND NOT u.disabled""",
        (key,),
    ).fetchone()
    p: Principal | None = None
    if row is not None:
        kind = row[8]
        if (kind == "session") == (via == "session"):
            p = Principal(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], via)
        if row[9]:
            conn.execute("UPDATE auth_tokens SET last_seen_at = now() WHERE token_sha256 = %s", (key,))
            conn.commit()
    if len(_CACHE) > 10_000:
        _CACHE.clear()
    _CACHE[key] = (now, p)
    return p


def forget_token(token: str) -> None:
    """Drop a token from this process's lookup cache (after revoking it)."""
    _CACHE.pop(token_sha256(token), None)


class LoginThrottled(Exception):
    """Too many failed sign-ins for this account or address; ``retry_after_s`` seconds to wait."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    conn: psycopg.Connection,
    *,
    username: str,
    password: str,
    role: str,
    grower_id: str | None = None,
    buyer_id: str | None = None,
    cooperative_id: str | None = None,
    display_name: str = "",
    password_hash: str | None = None,
) -> int:
    """Insert a user (or update its password, role and links if the username exists); returns user_id."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} not in {ROLES}")
    if len(password) < 8 and password_hash is None:
        raise ValueError("password must have at least 8 characters")
    ph = password_hash or hash_password(password)
    row = conn.execute(
        """INSERT INTO users (username, display_name, password_hash, role, grower_id, buyer_id, cooperative_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,
               password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, grower_id = EXCLUDED.grower_id,
               buyer_id = EXCLUDED.buyer_id, cooperative_id = EXCLUDED.cooperative_id
           RETURNING user_id""",
        (username, display_name, ph, role, grower_id, buyer_id, cooperative_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _throttle_check(conn: psycopg.Connection, username: str, ip: str) -> None:
    rows = conn.execute(
        """SELECT scope, count(*), extract(epoch FROM min(failed_at) + %s - now())
           FROM login_failures
           WHERE failed_at > now() - %s AND ((scope = 'user' AND subject = %s) OR (scope = 'ip' AND subject = %s))
           GROUP BY scope""",
        (FAIL_WINDOW, FAIL_WINDOW, username.lower(), ip),
    ).fetchall()
    for scope, n, wait in rows:
        limit = MAX_FAILS_PER_USER if scope == "user" else MAX_FAILS_PER_IP
        if n >= limit:
            raise LoginThrottled(max(1, int(wait or 1)))


def _record_failure(conn: psycopg.Connection, username: str, ip: str) -> None:
    conn.execute("INSERT INTO login_failures (scope, subject) VALUES ('user', %s), ('ip', %s)", (username.lower(), ip))
    # keep the table small: failures older than the window no longer count
    conn.execute("DELETE FROM login_failures WHERE failed_at < now() - %s * 4", (FAIL_WINDOW,))


def authenticate(conn: psycopg.Connection, username: str, password: str, *, ip: str) -> int | None:
    """user_id when the password matches an enabled account, else None (the failure is counted).

    Raises :class:`LoginThrottled` before checking anything when the account or address is over its
    limit. Commits the failure record itself so that it counts even if the caller rolls back.
    """
    _throttle_check(conn, username, ip)
    row = conn.execute(
        "SELECT user_id, password_hash, disabled FROM users WHERE lower(username) = lower(%s)", (username,)
    ).fetchone()
    ok = False
    if row is None:
        try:  # same work as a real check, so timing does not reveal which usernames exist
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
    else:
        try:
            ok = _hasher.verify(row[1], password) and not row[2]
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    if not ok:
        _record_failure(conn, username, ip)
        conn.commit()
        log.info("sign-in failed", extra={"username": username, "ip": ip})
        return None
    assert row is not None
    if _hasher.check_needs_rehash(row[1]):
        conn.execute("UPDATE users SET password_hash = %s WHERE user_id = %s", (hash_password(password), row[0]))
    conn.execute("DELETE FROM login_failures WHERE scope = 'user' AND subject = %s", (username.lower(),))
    return int(row[0])


def issue_token(conn: psycopg.Connection, user_id: int, kind: str = "session") -> tuple[str, str]:
    """A new random token for the user: returns (token, csrf_token). Only the token's hash is stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    ttl = SESSION_TTL if kind == "session" else BEARER_TTL
    conn.execute(
        "INSERT INTO auth_tokens (token_sha256, user_id, kind, csrf_token, expires_at) "
        "VALUES (%s, %s, %s, %s, now() + %s)",
        (token_sha256(token), user_id, kind, csrf, ttl),
    )
    # the user's dead tokens (expired, or revoked over a day ago) go, so the table does not grow forever
    conn.execute(
        "DELETE FROM auth_tokens WHERE user_id = %s AND (expires_at < now() OR revoked_at < now() - interval '1 day')",
        (user_id,),
    )
    return token, csrf


def revoke_token(conn: psycopg.Connection, token: str) -> None:
    conn.execute("UPDATE auth_tokens SET revoked_at = now() WHERE token_sha256 = %s", (token_sha256(token),))
    forget_token(token)


def set_session_cookie(response: Any, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


# ----------------------------------------------------------------------------- demo accounts


def seed_demo_users(conn: psycopg.Connection) -> dict[str, int]:
    """Demo accounts (docs/users.md): ``admin``; one manager per cooperative (username = cooperative_id);
    one grower account per grower (username = grower_id, e.g. ``G-00001``); one buyer account per buyer
    in trading's ``buyers`` table (username = buyer_id).

    Passwords are the published ``DEMO_PASSWORDS`` for the role. Every account of a role shares one
    Argon2id hash of that published password (hashing 1,546 passwords one by one would take minutes;
    a shared published password gains nothing from distinct salts). Idempotent: existing usernames
    are left alone. Returns accounts created per role.
    """
    hashes = {role: hash_password(pw) for role, pw in DEMO_PASSWORDS.items()}
    created: dict[str, int] = {}

    def bulk(role: str, rows: list[tuple[str, str, str | None, str | None, str | None]]) -> None:
        n = 0
        with conn.cursor() as cur:
            for username, display, grower_id, buyer_id, coop in rows:
                cur.execute(
                    """INSERT INTO users (username, display_name, password_hash, role, grower_id, buyer_id,
                                          cooperative_id)
                       VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (username) DO NOTHING""",
                    (username, display, hashes[role], role, grower_id, buyer_id, coop),
                )
                n += cur.rowcount
        created[role] = n

    bulk("admin", [("admin", "系统管理员", None, None, None)])
    coops = conn.execute("SELECT cooperative_id, name FROM cooperatives ORDER BY cooperative_id").fetchall()
    bulk("manager", [(c, f"{name} 管理员", None, None, c) for c, name in coops])
    with conn.cursor() as cur:
        # growers in one statement: 1,546 rows
        cur.execute(
            """INSERT INTO users (username, display_name, password_hash, role, grower_id)
               SELECT g.grower_id, g.name, %s, 'grower', g.grower_id FROM growers g
               ON CONFLICT (username) DO NOTHING""",
            (hashes["grower"],),
        )
        created["grower"] = cur.rowcount
    ids = [r[0] for r in conn.execute("SELECT buyer_id FROM buyers ORDER BY buyer_id").fetchall()]
    bulk("buyer", [(b, b, None, b, None) for b in ids])
    log.info("demo users seeded", extra={"users_created": created})
    return created
