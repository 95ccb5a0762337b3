"""Jinja2 rendering with the string catalogue bound to the request's language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dashboard.i18n import lang_of, t

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    lang = lang_of(request)
    html = _env.get_template(template).render(lang=lang, t=lambda k: t(k, lang), request=request, **ctx)
    resp = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") == lang:
        resp.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return resp
