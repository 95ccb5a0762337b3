"""Home: the signed-in user's page, or the sign-in page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from yuncang.web.deps import optional_principal

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request) -> RedirectResponse:
    p = optional_principal(request)
    return RedirectResponse(p.home if p else "/login", status_code=303)
