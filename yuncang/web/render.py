"""Jinja2 rendering with the string catalogue bound to the request's language."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from yuncang.web.i18n import lang_of, t

SHANGHAI = ZoneInfo("Asia/Shanghai")

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def local_time(v: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp shown in Asia/Shanghai (the UI's time zone)."""
    if v is None:
        return "—"
    if isinstance(v, datetime):
        return v.astimezone(SHANGHAI).strftime(fmt)
    return v.isoformat()


def num(v: float | int | None, digits: int = 0) -> str:
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


_env.filters["local"] = local_time
_env.filters["num"] = num


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    lang = lang_of(request)
    html = _env.get_template(template).render(
        lang=lang, t=lambda k: t(k, lang), request=request, path=request.url.path, **ctx
    )
    resp = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") == lang:
        resp.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return resp
