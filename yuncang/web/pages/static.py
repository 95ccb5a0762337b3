"""Static files, the web-app manifest and the service worker (no CDN, no network at run time).

``/static/plotly-basic.min.js`` is plotly.js's *basic* partial bundle (scatter, bar, pie; npm package
``plotly.js-basic-dist-min``, vendored beside this module with its MIT licence): 395 KB gzip instead of
the full bundle's 1.4 MB, which is what lets a grower's first visit stay under 500 KB on a mountain
network. Files are gzip-compressed once at start-up and sent compressed to clients that accept it,
with a content hash in their ETag and ``immutable`` caching (pages reference them with ``?v=<hash>``).
``/static/plotly.min.js`` (the full bundle, from the installed ``plotly`` package) stays available.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).resolve().parent.parent / "static"
_PLOTLY = resources.files("plotly").joinpath("package_data/plotly.min.js")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gz: bytes
    media_type: str
    version: str  #: first 12 hex of the body's SHA-256


def _asset(name: str, media_type: str) -> Asset:
    body = (_HERE / name).read_bytes()
    return Asset(body, gzip.compress(body, 9, mtime=0), media_type, hashlib.sha256(body).hexdigest()[:12])


ASSETS: dict[str, Asset] = {
    "plotly-basic.min.js": _asset("plotly-basic.min.js", "application/javascript"),
    "app.js": _asset("app.js", "application/javascript"),
    "order_form.js": _asset("order_form.js", "application/javascript"),
    "icon.svg": _asset("icon.svg", "image/svg+xml"),
}


def asset_url(name: str) -> str:
    """The URL of a static asset with its content version (so it may be cached for a year)."""
    return f"/static/{name}?v={ASSETS[name].version}"


def _send(request: Request, a: Asset, cache: str) -> Response:
    etag = f'"{a.version}"'
    headers = {"Cache-Control": cache, "ETag": etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(a.gz, media_type=a.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(a.body, media_type=a.media_type, headers=headers)


@router.get("/static/plotly.min.js")
def plotly_js() -> Response:
    return FileResponse(
        str(_PLOTLY), media_type="application/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


_PLOTS_JS = resources.files("yuncang.web").joinpath("static/plots.js")


@router.get("/static/plots.js")
def plots_js() -> Response:
    """The pages' one script (draws every chart whose data is embedded as JSON): a file, so the CSP can
    forbid inline scripts."""
    return FileResponse(
        str(_PLOTS_JS), media_type="application/javascript", headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/static/{name}")
def static_file(request: Request, name: str) -> Response:
    a = ASSETS.get(name)
    if a is None:
        return Response(status_code=404)
    return _send(request, a, "public, max-age=31536000, immutable")


@router.get("/sw.js")
def service_worker(request: Request) -> Response:
    """The service worker (scope ``/``): never cached long, so a new version takes over on the next visit."""
    return _send(request, SW, "no-cache")


@router.get("/manifest.webmanifest")
def manifest(request: Request) -> Response:
    return _send(request, MANIFEST, "public, max-age=86400")


def _built(body: str, media_type: str) -> Asset:
    raw = body.encode()
    return Asset(raw, gzip.compress(raw, 9, mtime=0), media_type, hashlib.sha256(raw).hexdigest()[:12])


# the shell the service worker keeps: versioned assets (a new version is a new cache)
_SHELL = [asset_url(n) for n in ("plotly-basic.min.js", "app.js", "icon.svg")]
SW = _built((_HERE / "sw.js").read_text("utf-8").replace("__SHELL__", repr(_SHELL).replace("'", '"'))
            .replace("__VERSION__", hashlib.sha256(repr(_SHELL).encode()).hexdigest()[:12]),
            "application/javascript")
MANIFEST = _built(
    '{"name": "巫山脆李云仓", "short_name": "脆李云仓", "lang": "zh-CN", "start_url": "/grower",'
    ' "scope": "/", "display": "standalone", "background_color": "#faf7f9", "theme_color": "#6b2d5c",'
    f' "icons": [{{"src": "{asset_url("icon.svg")}", "sizes": "any", "type": "image/svg+xml", "purpose": "any"}}]}}',
    "application/manifest+json",
)
