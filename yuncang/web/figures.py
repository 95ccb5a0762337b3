"""Plotly figures as JSON for the pages (``Plotly.newPlot`` in the browser)."""

from __future__ import annotations

import json

import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder


def fig_json(fig: go.Figure) -> str:
    """A Plotly figure serialised for ``Plotly.newPlot`` (safe to embed in a <script> block)."""
    fig.update_layout(
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        height=300,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder).replace("</", "<\\/")
