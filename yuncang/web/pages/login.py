"""Sign-in page (the POST is handled by ``yuncang.web.api.auth``)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from yuncang.auth import LOGIN_CSRF_COOKIE
from yuncang.web.deps import optional_principal
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)


def render_login(
    request: Request,
    *,
    error: str | None = None,
    status_code: int = 200,
    username: str = "",
    retry_after_s: int = 0,
    next_url: str | None = None,
) -> HTMLResponse:
    """The form, with a fresh double-submit CSRF token in a cookie and a hidden field."""
    token = secrets.token_urlsafe(24)
    nxt = next_url if next_url is not None else request.query_params.get("next", "")
    resp = render(
        request,
        "login.html",
        status_code=status_code,
        error=error,
        username=username,
        retry_after_s=retry_after_s,
        csrf_token=token,
        next_url=nxt,
    )
    resp.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = Query(default="", max_length=300)) -> Any:
    p = optional_principal(request)
    if p is not None and not next:
        return RedirectResponse(p.home, status_code=303)
    return render_login(request, next_url=next)
