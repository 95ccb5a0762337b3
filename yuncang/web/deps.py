"""Typed dependencies every route declares in its signature (full-stack-fastapi-template's
``api/deps.py`` habit): ``CurrentUser``, ``OptionalUser``, ``Scope``, ``Conn`` and ``State``.

Reading the signed-in user from a request (session cookie or ``Authorization: Bearer``) and the CSRF
check live here; who the token belongs to is :mod:`yuncang.auth`, what they may see is the pure rules
of :mod:`yuncang.web.access`. A refusal becomes 401 (not signed in), 403 (not allowed) or 404.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from registry.read import OrchardScope, orchard_owners
from yuncang.auth import SESSION_COOKIE, Principal, cached_principal, principal_for_token, token_sha256
from yuncang.web.access import may_see_orchard, orchard_scope


def state(request: Request) -> Any:
    """The app's :class:`yuncang.app.AppState` (settings, pool, caches)."""
    return request.app.state.yc


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
    """The signed-in user, or None (never raises; blocking on a cache miss: call from a thread)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    found = _token_from(request)
    p = None
    if found and 0 < len(found[0]) <= 200:
        known, cached = cached_principal(token_sha256(found[0]), found[1], time.monotonic())
        if known:
            p = cached
        else:
            with request.app.state.yc.pool.connection() as conn:
                p = principal_for_token(conn, found[0], found[1])
    request.state.principal = p
    return p


async def require_user(request: Request) -> Principal:
    """401 without a valid session cookie or bearer token.

    Async so that a cached token costs no thread hop; a cache miss looks the token up in a worker thread.
    """
    p: Principal | None
    if hasattr(request.state, "principal"):
        p = request.state.principal
    else:
        found = _token_from(request)
        known, p = (False, None)
        if found and len(found[0]) <= 200:
            known, p = cached_principal(token_sha256(found[0]), found[1], time.monotonic())
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


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A pooled connection for the request: committed when the route returns, rolled back if it raises."""
    with request.app.state.yc.pool.connection() as conn:
        yield conn


CurrentUser = Annotated[Principal, Depends(require_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
Conn = Annotated[psycopg.Connection, Depends(get_conn)]
State = Annotated[Any, Depends(state)]


def current_scope(p: CurrentUser) -> OrchardScope:
    return orchard_scope(p)


Scope = Annotated[OrchardScope, Depends(current_scope)]


# ----------------------------------------------------------------------------- refusals as HTTP


def require_roles(p: Principal, *roles: str) -> None:
    """403 unless ``p`` has one of ``roles``."""
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


def check_orchard(p: Principal, orchard_id: str, grower_id: str, cooperative_id: str | None) -> None:
    """403 unless ``p`` may see the orchard with these owners."""
    if not may_see_orchard(p, grower_id, cooperative_id):
        raise HTTPException(status_code=403, detail=f"orchard {orchard_id!r} is not yours to see")


def require_orchard(conn: psycopg.Connection, p: Principal, orchard_id: str) -> dict[str, Any]:
    """The orchard's owners when ``p`` may see it: 404 if there is none, 403 if it is not theirs."""
    owners = orchard_owners(conn, orchard_id)
    if owners is None:
        raise HTTPException(status_code=404, detail=f"no orchard {orchard_id!r}")
    check_orchard(p, orchard_id, owners[0], owners[1])
    return {"orchard_id": orchard_id, "grower_id": owners[0], "cooperative_id": owners[1]}


def page_user(request: Request, *roles: str) -> Principal | RedirectResponse:
    """For pages: the signed-in user if their role may open this page; else a redirect (to sign-in or
    their home)."""
    p = optional_principal(request)
    if p is None:
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(nxt)}", status_code=303)
    if roles and p.role not in roles:
        return RedirectResponse(p.home, status_code=303)
    return p
