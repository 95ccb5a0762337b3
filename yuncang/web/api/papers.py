"""Papers over HTTP (``/api/v1/papers``): delivery notes and buyer statements as PDF or XLSX.

* ``GET /papers/sales/{sale_id}.{pdf|xlsx}`` — a spot sale's delivery note: its buyer, the site's hall
  staff, managers, admins;
* ``GET /papers/shipments/{shipment_id}.{pdf|xlsx}`` — a forward shipment's delivery note: the
  order's buyer, managers, admins;
* ``GET /papers/statements/{buyer_id}.{pdf|xlsx}?date_from=&date_to=`` — a buyer's statement for a
  period (Asia/Shanghai days): the buyer themself, managers, admins.

A missing CJK font is a 503 with the reason (``trading.papers.FontMissing``).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from trading import papers, spot
from yuncang.web.api.trading import TRADING_ERRORS, _call
from yuncang.web.common import reject_nul
from yuncang.web.deps import CurrentUser

router = APIRouter(prefix="/api/v1/papers", tags=["papers"], dependencies=[Depends(reject_nul)])

_MEDIA = {"pdf": "application/pdf",
          "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_OK: dict[int | str, dict[str, Any]] = {200: {"content": {m: {} for m in _MEDIA.values()},
                                              "description": "the paper"}}


def _render(paper: papers.Paper, fmt: str) -> Response:
    try:
        body = papers.to_pdf(paper) if fmt == "pdf" else papers.to_xlsx(paper)
    except papers.FontMissing as exc:
        raise HTTPException(status_code=exc.http_status, detail=exc.to_dict()) from None
    return Response(body, media_type=_MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{paper.filename}.{fmt}"'})


@router.get("/sales/{sale_id}.{fmt}", response_class=Response, responses={**TRADING_ERRORS, **_OK})
def sale_note(request: Request, p: CurrentUser, sale_id: str, fmt: Literal["pdf", "xlsx"]) -> Any:
    """Delivery note of a spot sale, with every line's lot and trace code."""
    sale = _call(request, spot.get_sale, sale_id)
    if p.role == "buyer":
        if sale.buyer_id != p.buyer_id:
            raise HTTPException(status_code=403, detail="that sale belongs to another buyer")
    elif p.role not in ("manager", "admin") and not _call(request, spot.is_hall_staff, p.username, sale.warehouse_id):
        raise HTTPException(status_code=403, detail="not your sale")
    return _render(_call(request, papers.spot_delivery_note, sale_id), fmt)


@router.get("/shipments/{shipment_id}.{fmt}", response_class=Response, responses={**TRADING_ERRORS, **_OK})
def shipment_note(request: Request, p: CurrentUser, shipment_id: int, fmt: Literal["pdf", "xlsx"]) -> Any:
    """Delivery note of a forward-order shipment."""
    if not 1 <= shipment_id <= 2**62:
        raise HTTPException(status_code=404, detail="no such shipment")
    paper = _call(request, papers.shipment_delivery_note, shipment_id)
    if p.role == "buyer":
        owner = _call(request, lambda c: c.execute(
            "SELECT o.buyer_id FROM shipments s JOIN orders o USING (order_id) WHERE s.shipment_id = %s",
            (shipment_id,)).fetchone())
        if owner is None or owner[0] != p.buyer_id:
            raise HTTPException(status_code=403, detail="that shipment belongs to another buyer")
    elif p.role not in ("manager", "admin"):
        raise HTTPException(status_code=403, detail="buyers, managers and admins only")
    return _render(paper, fmt)


@router.get("/statements/{buyer_id}.{fmt}", response_class=Response, responses={**TRADING_ERRORS, **_OK})
def statement(request: Request, p: CurrentUser, buyer_id: str, fmt: Literal["pdf", "xlsx"],
              date_from: date = Query(description="first day (Asia/Shanghai)"),
              date_to: date = Query(description="last day (Asia/Shanghai), inclusive")) -> Any:
    """A buyer's statement for a period: every delivered spot line and forward shipment, with totals."""
    if p.role == "buyer" and p.buyer_id != buyer_id:
        raise HTTPException(status_code=403, detail="only your own statement")
    if p.role not in ("buyer", "manager", "admin"):
        raise HTTPException(status_code=403, detail="buyers, managers and admins only")
    return _render(_call(request, papers.buyer_statement, buyer_id, date_from, date_to), fmt)
