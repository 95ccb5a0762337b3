"""Who is signed in and what they may see (read side of sign-in; shared by the API and the pages).

Sign-in itself (passwords, throttling, issuing tokens) lives in :mod:`yuncang.auth`; this module only
turns a session cookie or bearer token into a :class:`Principal` and scopes queries by role:
a grower sees only their orchards, a manager their cooperative's, an admin everything; a buyer
sees no orchard, only their own orders and the public supply offer.
Only the SHA-256 of a token is stored (table ``auth_tokens``), so a leaked table lets nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

SESSION_COOKIE = "yc_session"


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


def _cached(key: bytes, via: str, now: float) -> tuple[bool, Principal | None]:
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
    found, cached = _cached(key, via, now)
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


# ----------------------------------------------------------------------------- request helpers


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _token_from(request: Request) -> tuple[str, str] | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip(), "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, "session"
    return None


def optional_principal(request: Request) -> Principal | None:
    """The signed-in user, or None (FastAPI dependency; never raises)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    found = _token_from(request)
    p = None
    if found and 0 < len(found[0]) <= 200:
        known, cached = _cached(token_sha256(found[0]), found[1], time.monotonic())
        if known:
            p = cached
        else:
            with request.app.state.yc.pool.connection() as conn:
                p = principal_for_token(conn, found[0], found[1])
    request.state.principal = p
    return p


async def require_user(request: Request) -> Principal:
    """FastAPI dependency: 401 without a valid session cookie or bearer token.

    Async so that a cached token costs no thread hop; a cache miss looks the token up in a worker thread.
    """
    p: Principal | None
    if hasattr(request.state, "principal"):
        p = request.state.principal
    else:
        found = _token_from(request)
        known, p = (False, None)
        if found and len(found[0]) <= 200:
            known, p = _cached(token_sha256(found[0]), found[1], time.monotonic())
        if known or not found:
            request.state.principal = p
        else:
            p = await run_in_threadpool(optional_principal, request)
    if p is None:
        raise HTTPException(
            status_code=401,
            detail="sign in first (session cookie or Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return p


def require_roles(p: Principal, *roles: str) -> None:
    if p.role not in roles:
        raise HTTPException(
            status_code=403, detail=f"role {p.role!r} may not do this (needs one of {', '.join(roles)})"
        )


def check_csrf(request: Request, p: Principal, submitted: str | None = None) -> None:
    """403 unless a cookie-authenticated request carries its session's CSRF token."""
    if p.via == "bearer":
        return
    got = submitted or request.headers.get("x-csrf-token") or ""
    if not hmac.compare_digest(got.encode(), p.csrf_token.encode()):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


def orchard_scope(p: Principal, alias: str = "o") -> tuple[str, list[Any]]:
    """SQL condition (and params) limiting ``orchards`` rows (``alias``) to what ``p`` may see."""
    if p.role == "admin":
        return "TRUE", []
    if p.role == "manager":
        return f"{alias}.cooperative_id = %s", [p.cooperative_id]
    if p.role == "grower":
        return f"{alias}.grower_id = %s", [p.grower_id]
    return "FALSE", []


def check_orchard(p: Principal, orchard_id: str, grower_id: str, cooperative_id: str | None) -> None:
    """403 unless ``p`` may see the orchard with these owners."""
    allowed = (
        p.role == "admin"
        or (p.role == "manager" and cooperative_id == p.cooperative_id)
        or (p.role == "grower" and grower_id == p.grower_id)
    )
    if not allowed:
        raise HTTPException(status_code=403, detail=f"orchard {orchard_id!r} is not yours to see")


def require_orchard(conn: psycopg.Connection, p: Principal, orchard_id: str) -> dict[str, Any]:
    """The orchard's registry row when ``p`` may see it: 404 if there is none, 403 if it is not theirs."""
    row = conn.execute(
        "SELECT orchard_id, grower_id, cooperative_id FROM orchards WHERE orchard_id = %s", (orchard_id,)
    ).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"no orchard {orchard_id!r}")
    check_orchard(p, orchard_id, row[1], row[2])
    return {"orchard_id": row[0], "grower_id": row[1], "cooperative_id": row[2]}


def forget_token(token: str) -> None:
    """Drop a token from this process's lookup cache (after revoking it)."""
    _CACHE.pop(token_sha256(token), None)


def forget_user(user_id: int) -> None:
    """Drop every cached token of a user from this process's lookup cache (after revoking them all)."""
    for key in [k for k, (_, p) in _CACHE.items() if p is not None and p.user_id == user_id]:
        _CACHE.pop(key, None)
