"""Static files: plotly.js from the installed ``plotly`` package (no CDN, no network)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)

_PLOTLY = resources.files("plotly").joinpath("package_data/plotly.min.js")


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
