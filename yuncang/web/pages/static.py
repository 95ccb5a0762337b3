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
