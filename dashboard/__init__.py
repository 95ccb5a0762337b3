"""Web pages (zh-CN first, English available) with Plotly figures."""
