"""Public trace page: a consumer scans the code on a box and sees where the plums came from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from yuncang.web import trade
from yuncang.web.deps import optional_principal
from yuncang.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/trace", response_class=HTMLResponse)
def trace_page(request: Request, code: str = Query(default="", max_length=64)) -> Any:
    code = code.strip()
    result: dict[str, Any] | None = None
    status = 200
    if code:
        with request.app.state.yc.pool.connection() as conn:
            try:
                result = trade.plain(trade.resolve_trace(conn, code))
            except trade.TradingError:
                conn.rollback()
                result = None
        if result is None:
            status = 404
    return render(request, "trace.html", status_code=status, user=optional_principal(request), code=code, result=result)
