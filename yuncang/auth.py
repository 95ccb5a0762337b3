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

from yuncang import login_throttle as throttle
from yuncang.login_throttle import DEVICE_COOKIE, DEVICE_TTL
from yuncang.login_throttle import LoginThrottled as LoginThrottled  # re-exported: sign-in raises it
from yuncang.password_policy import WeakPassword as WeakPassword  # re-exported: create_user raises it
from yuncang.password_policy import check_new_password, normalise, too_long
from yuncang.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("grower", "buyer", "manager", "admin")
SESSION_COOKIE = "yc_session"
LOGIN_CSRF_COOKIE = "yc_login_csrf"
SESSION_TTL = timedelta(days=7)  #: browser session lifetime
BEARER_TTL = timedelta(days=30)  #: API token lifetime

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


def forget_user(user_id: int) -> None:
    """Drop every cached token of a user from this process's lookup cache (after revoking them all)."""
    for key in [k for k, (_, p) in _CACHE.items() if p is not None and p.user_id == user_id]:
        _CACHE.pop(key, None)




def hash_password(password: str) -> str:
    """Argon2id hash of the password in its normalised form (:func:`yuncang.password_policy.normalise`)."""
    return _hasher.hash(normalise(password))


def _verify(stored_hash: str, password: str) -> bool:
    """Whether the password matches; also tries the password as typed when NFC changes it (accounts
    whose password was hashed before passwords were normalised)."""
    for candidate in dict.fromkeys((normalise(password), password)):
        try:
            if _hasher.verify(stored_hash, candidate):
                return True
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            continue
    return False


class UserExists(ValueError):
    """``create_user`` refuses to overwrite an existing account unless told to (``replace=True``)."""


class NoSuchUser(LookupError):
    """No account with that username."""


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
    replace: bool = False,
) -> int:
    """Insert a user; returns its user_id.

    An existing username raises :class:`UserExists` unless ``replace`` is true: then its password, role
    and links are overwritten and every session and token it had is revoked (whoever held them must sign
    in again with the new password).
    """
    if role not in ROLES:
        raise ValueError(f"role {role!r} not in {ROLES}")
    if password_hash is None:
        check_new_password(password, user_inputs=(username, display_name), refused=DEMO_PASSWORDS.values())
    ph = password_hash or hash_password(password)
    row = conn.execute(
        """INSERT INTO users (username, display_name, password_hash, role, grower_id, buyer_id, cooperative_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (username) DO NOTHING
           RETURNING user_id""",
        (username, display_name, ph, role, grower_id, buyer_id, cooperative_id),
    ).fetchone()
    if row is not None:
        return int(row[0])
    if not replace:
        raise UserExists(f"user {username!r} already exists (use `yuncang users passwd` to change its password)")
    row = conn.execute(
        """UPDATE users SET display_name = %s, password_hash = %s, role = %s, grower_id = %s, buyer_id = %s,
                            cooperative_id = %s
           WHERE username = %s RETURNING user_id""",
        (display_name, ph, role, grower_id, buyer_id, cooperative_id, username),
    ).fetchone()
    assert row is not None
    revoke_user_tokens(conn, int(row[0]))
    return int(row[0])


def _user_id(conn: psycopg.Connection, username: str) -> int:
    row = conn.execute("SELECT user_id FROM users WHERE lower(username) = lower(%s)", (username,)).fetchone()
    if row is None:
        raise NoSuchUser(f"no user {username!r}")
    return int(row[0])


def revoke_user_tokens(conn: psycopg.Connection, user_id: int) -> int:
    """End every live session and bearer token of the user; returns how many were live.

    Other web processes may serve a token from their lookup cache for up to
    :data:`dashboard.access.CACHE_TTL_S` seconds more; this process forgets them at once.
    """
    cur = conn.execute(
        "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL AND expires_at > now()",
        (user_id,),
    )
    forget_user(user_id)
    return cur.rowcount


def set_password(conn: psycopg.Connection, username: str, password: str) -> int:
    """Change a user's password and end all their sessions and tokens; returns the sessions ended."""
    check_new_password(password, user_inputs=(username,), refused=DEMO_PASSWORDS.values())
    uid = _user_id(conn, username)
    conn.execute("UPDATE users SET password_hash = %s WHERE user_id = %s", (hash_password(password), uid))
    return revoke_user_tokens(conn, uid)


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool = True) -> int:
    """Disable (or enable again) an account; disabling ends all its sessions and tokens.
    Returns the sessions ended."""
    uid = _user_id(conn, username)
    conn.execute("UPDATE users SET disabled = %s WHERE user_id = %s", (disabled, uid))
    return revoke_user_tokens(conn, uid) if disabled else 0


def revoke_sessions(conn: psycopg.Connection, username: str) -> int:
    """Sign a user out everywhere (a lost phone): every session and token ends; returns how many."""
    return revoke_user_tokens(conn, _user_id(conn, username))


def authenticate(conn: psycopg.Connection, username: str, password: str, *, ip: str,
                 device: str | None = None) -> int | None:
    """user_id when the password matches an enabled account, else None (the failure is counted).
    See :func:`authenticate_client` (this drops the device cookie it may issue)."""
    return authenticate_client(conn, username, password, ip=ip, device=device)[0]


def authenticate_client(conn: psycopg.Connection, username: str, password: str, *, ip: str,
                        device: str | None = None) -> tuple[int | None, str | None]:
    """(user_id or None, a new device cookie for the caller to set or None).

    ``device`` is the client's ``yc_device`` cookie. Raises :class:`LoginThrottled` before checking the
    password when this client must wait (:mod:`yuncang.login_throttle`: a known-good device is never
    held back by what others do to the account). Commits the failure record itself so that it counts
    even if the caller rolls back.
    """
    device_key = throttle.known_device(conn, username, device)
    throttle.check(conn, username, ip, device_key)
    row = None if too_long(password) else conn.execute(  # too long: no account can have it
        "SELECT user_id, password_hash, disabled FROM users WHERE lower(username) = lower(%s)", (username,)
    ).fetchone()
    ok = False
    if row is None:
        try:  # same work as a real check, so timing does not reveal which usernames exist
            _hasher.verify(_DUMMY_HASH, password[:256])
        except VerificationError:
            pass
    else:
        ok = _verify(row[1], password) and not row[2]
    if not ok:
        throttle.record_failure(conn, username, ip, device_key)
        conn.commit()
        log.info("sign-in failed", extra={"username": username, "ip": ip, "known_device": device_key is not None})
        return None, None
    assert row is not None
    if _hasher.check_needs_rehash(row[1]):
        conn.execute("UPDATE users SET password_hash = %s WHERE user_id = %s", (hash_password(password), row[0]))
    new_device = throttle.record_success(conn, int(row[0]), username, ip, device_key, device)
    return int(row[0]), new_device


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


def serves_https(settings: Settings) -> bool:
    """Whether browsers reach the site over HTTPS (from ``public_url``, never guessed from headers)."""
    return settings.public_url.lower().startswith("https://")


def cookies_secure(request: Request) -> bool:
    """Cookies get ``Secure`` when the configured public address is https:// (``YUNCANG_PUBLIC_URL``)."""
    return serves_https(request.app.state.yc.settings)


def set_device_cookie(response: Any, request: Request, device: str | None) -> None:
    """Remember this browser as a known-good client of the account (only when a new one was issued)."""
    if device:
        response.set_cookie(DEVICE_COOKIE, device, max_age=int(DEVICE_TTL.total_seconds()), httponly=True,
                            samesite="strict", secure=cookies_secure(request), path="/")


def set_session_cookie(response: Any, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request),
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
