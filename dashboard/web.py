"""Helpers the pages share: who is signing in, Plotly figures as JSON, and the trading module when present."""

from __future__ import annotations

import json
from urllib.parse import quote

import plotly.graph_objects as go
from fastapi import Request
from fastapi.responses import RedirectResponse
from plotly.utils import PlotlyJSONEncoder

from dashboard.access import Principal, optional_principal


def page_user(request: Request, *roles: str) -> Principal | RedirectResponse:
    """The signed-in user if their role may open this page; else a redirect (to sign-in or their home)."""
    p = optional_principal(request)
    if p is None:
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(nxt)}", status_code=303)
    if roles and p.role not in roles:
        return RedirectResponse(p.home, status_code=303)
    return p


def fig_json(fig: go.Figure) -> str:
    """A Plotly figure serialised for ``Plotly.newPlot`` (safe to embed in a <script> block)."""
    fig.update_layout(
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        height=300,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder).replace("</", "<\\/")
