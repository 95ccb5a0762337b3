"""Security headers on every response (pure ASGI middleware; OWASP Secure Headers Project).

* ``Content-Security-Policy``: scripts and everything else only from this site (the pages' one script is
  ``/static/plots.js``; chart data travels as ``application/json`` script elements), inline styles
  allowed (Plotly styles its SVG inline), ``frame-ancestors 'none'`` so no other site can frame a page
  and trick a click (clickjacking); ``X-Frame-Options: DENY`` says the same to older browsers.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (a trace code in a URL never
  leaves the site), ``Permissions-Policy`` (no camera, microphone, geolocation),
  ``Cross-Origin-Opener-Policy: same-origin``.
* ``Strict-Transport-Security`` only when the site is served over HTTPS (``YUNCANG_PUBLIC_URL`` starts
  with ``https://``): the setting, not a guess from request headers, decides.
* The interactive API docs (``/docs``, ``/redoc``) load Swagger UI / ReDoc from their CDN with an inline
  bootstrap script; they get a policy that allows exactly that.
"""

from __future__ import annotations

from typing import Any

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
HSTS = b"max-age=31536000; includeSubDomains"
_DOCS = ("/docs", "/redoc")


class SecurityHeaders:
    """Add the headers above to every HTTP response (``https``: also HSTS)."""

    def __init__(self, app: Any, https: bool = False):
        self.app = app
        common = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                  (b"referrer-policy", b"same-origin"),
                  (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                  (b"cross-origin-opener-policy", b"same-origin")]
        if https:
            common.append((b"strict-transport-security", HSTS))
        self.headers = [(b"content-security-policy", CSP.encode()), *common]
        self.docs_headers = [(b"content-security-policy", DOCS_CSP.encode()), *common]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs_headers if scope.get("path", "").startswith(_DOCS) else self.headers

        async def send_(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()), *((k, v) for k, v in extra if k not in have)]
            await send(message)

        await self.app(scope, receive, send_)
