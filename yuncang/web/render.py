"""Jinja2 rendering with the string catalogue bound to the request's language."""

from __future__ import annotations

import gzip
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from yuncang.web import i18n
from yuncang.web.i18n import lang_of, t
from yuncang.web.pages.static import asset_url

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
_env.filters["yuan"] = i18n.yuan
_env.globals["asset"] = asset_url


def _in_lang(fn: Any) -> Any:
    """A filter that is given the page's language: ``{{ o.grade|grade }}``."""

    @pass_context
    def f(ctx: Any, v: Any, *a: Any, **kw: Any) -> Any:
        return fn(v, ctx.get("lang", i18n.DEFAULT_LANG), *a, **kw)

    return f


for _name, _fn in (("grade", i18n.grade), ("state", i18n.state), ("place", i18n.place), ("mass", i18n.mass),
                   ("age", i18n.age), ("notice", i18n.notice_text)):
    _env.filters[_name] = _in_lang(_fn)


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    lang = lang_of(request)
    html = _env.get_template(template).render(
        lang=lang, t=lambda k: t(k, lang), catalogue=i18n.CATALOGUE, request=request, path=request.url.path, **ctx
    )
    body = html.encode()
    if len(body) >= 1024 and "gzip" in request.headers.get("accept-encoding", ""):
        # pages carry their figures' JSON: gzip takes a grower page from ~100 KB to ~15 KB on the wire
        resp = HTMLResponse(gzip.compress(body, 6), status_code=status_code,
                            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    else:
        resp = HTMLResponse(body, status_code=status_code)
    if request.query_params.get("lang") == lang:
        resp.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return resp
