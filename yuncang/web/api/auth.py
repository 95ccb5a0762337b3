"""Sign-in for API clients (bearer tokens) and for the browser login form (session cookie)."""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, field_validator

from yuncang.auth import (
    BEARER_TTL,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginThrottled,
    Principal,
    authenticate,
    issue_token,
    revoke_token,
    set_session_cookie,
)
from yuncang.web.common import AUTH_ERRORS, Message, reject_nul
from yuncang.web.deps import CurrentUser, check_csrf, client_ip, optional_principal

router = APIRouter(tags=["auth"], dependencies=[Depends(reject_nul)])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)

    @field_validator("username", "password")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in_s: int
    role: str
    username: str


class Me(BaseModel):
    user_id: int
    username: str
    display_name: str
    role: str
    grower_id: str | None
    buyer_id: str | None
    cooperative_id: str | None
    home: str


def _me(p: Principal) -> Me:
    return Me(
        user_id=p.user_id,
        username=p.username,
        display_name=p.display_name,
        role=p.role,
        grower_id=p.grower_id,
        buyer_id=p.buyer_id,
        cooperative_id=p.cooperative_id,
        home=p.home,
    )


@router.post(
    "/api/v1/auth/token",
    response_model=TokenOut,
    responses={401: {"model": Message}, 422: {"model": Message}, 429: {"model": Message}},
)
def token(request: Request, body: Credentials) -> TokenOut:
    """Exchange username and password for a bearer token (``Authorization: Bearer <token>``)."""
    with request.app.state.yc.pool.connection() as conn:
        try:
            uid = authenticate(conn, body.username, body.password, ip=client_ip(request))
        except LoginThrottled as exc:
            raise HTTPException(
                status_code=429, detail=str(exc), headers={"Retry-After": str(exc.retry_after_s)}
            ) from None
        if uid is None:
            raise HTTPException(status_code=401, detail="wrong username or password")
        tok, _ = issue_token(conn, uid, "bearer")
        role = conn.execute("SELECT role, username FROM users WHERE user_id = %s", (uid,)).fetchone()
    assert role is not None
    return TokenOut(token=tok, expires_in_s=int(BEARER_TTL.total_seconds()), role=role[0], username=role[1])


@router.post("/api/v1/auth/logout", status_code=204, responses=AUTH_ERRORS)
def api_logout(request: Request, p: CurrentUser) -> Response:
    """Revoke the token (or session) this request was made with."""
    check_csrf(request, p)
    raw = (
        request.headers.get("authorization", "")[7:].strip()
        if p.via == "bearer"
        else request.cookies.get(SESSION_COOKIE, "")
    )
    with request.app.state.yc.pool.connection() as conn:
        revoke_token(conn, raw)
    return Response(status_code=204)


@router.get("/api/v1/me", response_model=Me, responses=AUTH_ERRORS)
async def me(p: CurrentUser) -> Me:
    """Who the request is signed in as, with the links that scope what they see."""
    return _me(p)


def _safe_next(nxt: str | None) -> str | None:
    if not nxt:
        return None
    u = urlsplit(nxt)
    if u.scheme or u.netloc or not nxt.startswith("/") or nxt.startswith("//"):
        return None
    return nxt


@router.post("/login", include_in_schema=False)
def login_form(
    request: Request,
    username: str = Form(default="", max_length=64),
    password: str = Form(default="", max_length=256),
    csrf_token: str = Form(default="", max_length=200),
    next: str = Form(default="", max_length=300),
) -> Any:
    """The sign-in form's POST: double-submit CSRF check, throttling, then a session cookie."""
    from yuncang.web.pages.login import render_login

    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        return render_login(request, error="csrf", status_code=403)
    if not username or not password:
        return render_login(request, error="missing", status_code=422, username=username)
    with request.app.state.yc.pool.connection() as conn:
        try:
            uid = authenticate(conn, username, password, ip=client_ip(request))
        except LoginThrottled as exc:
            return render_login(
                request, error="throttled", status_code=429, username=username, retry_after_s=exc.retry_after_s
            )
        if uid is None:
            return render_login(request, error="wrong", status_code=401, username=username)
        tok, _ = issue_token(conn, uid, "session")
        role = conn.execute("SELECT role FROM users WHERE user_id = %s", (uid,)).fetchone()
    assert role is not None
    home = {"grower": "/grower", "buyer": "/buyer"}.get(role[0], "/manager")
    resp = RedirectResponse(_safe_next(next) or home, status_code=303)
    set_session_cookie(resp, request, tok)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return resp


@router.post("/logout", include_in_schema=False)
def logout_form(request: Request, csrf_token: str = Form(default="", max_length=200)) -> Any:
    p = optional_principal(request)
    if p is not None:
        check_csrf(request, p, csrf_token)
        with request.app.state.yc.pool.connection() as conn:
            revoke_token(conn, request.cookies.get(SESSION_COOKIE, ""))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
