"""Traceability over HTTP: lot genealogy steps, recall both ways, EPCIS 2.0 events, labels, complaints.

* ``POST /api/v1/genealogy/{harvest,receive,grade,pack,store,merge,ship}`` — warehouse staff record a step
  (managers of the orchard's cooperative, admins); mass balance and stock are checked in
  ``trading.genealogy`` (409/422 with the reason); ``idempotency_key`` makes a retry one step.
* ``GET /api/v1/genealogy/recall`` (orchard + date range -> shipments and buyers) and
  ``GET /api/v1/genealogy/objects/{id}/origins`` (-> every contributing orchard): managers and admins.
* ``GET /api/v1/epcis/events`` — the EPCIS 2.0 query interface subset a buyer's system polls:
  ``GE_eventTime``, ``LT_eventTime``, ``MATCH_anyEPC``, ``MATCH_anyEPCClass`` (GS1 Digital Link URIs);
  answers an ``EPCISQueryDocument`` (``application/ld+json``, header ``GS1-EPCIS-Version: 2.0.0``).
  Buyers see the genealogy of what they received and only their own shipments; managers and admins all.
* ``GET /api/v1/genealogy/labels.pdf?id=...`` — an A4 label sheet with a QR code per lot/unit.
* ``GET /api/v1/genealogy/complaints`` — consumers' complaints (managers, admins).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from trading import consumer, epcis, genealogy, labels
from trading.gs1 import Gs1Config
from yuncang.auth import Principal
from yuncang.web.api.trading import TRADING_ERRORS
from yuncang.web.common import reject_nul
from yuncang.web.deps import Conn, CurrentUser, check_csrf, require_roles

router = APIRouter(tags=["traceability"], dependencies=[Depends(reject_nul)], responses=TRADING_ERRORS)

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_KG = Annotated[Decimal, Field(gt=0, le=10_000_000, max_digits=12, decimal_places=3)]
_KEY = Field(default=None, min_length=1, max_length=200)


def gs1_config(request: Request) -> Gs1Config:
    """The GS1 settings: company prefix and the resolver base URL (this server unless configured)."""
    s = request.app.state.yc.settings
    return Gs1Config(company_prefix=s.gs1_company_prefix,
                     resolver=s.gs1_resolver or f"http://{s.http_host}:{s.http_port}")


Gs1 = Annotated[Gs1Config, Depends(gs1_config)]


class Loss(BaseModel):
    kg: _KG
    reason: str = Field(min_length=1, max_length=200)


class HarvestIn(BaseModel):
    orchard_id: str = Field(pattern=_ID)
    harvested_on: date
    kg: _KG
    at: datetime | None = None
    idempotency_key: str | None = _KEY


class ObjectsIn(BaseModel):
    object_ids: list[Annotated[str, Field(pattern=_ID)]] = Field(min_length=1, max_length=500)
    site_id: str | None = Field(default=None, pattern=_ID)
    cold_room_id: str | None = Field(default=None, pattern=_ID)
    at: datetime | None = None
    idempotency_key: str | None = _KEY


class GradeIn(BaseModel):
    inputs: dict[Annotated[str, Field(pattern=_ID)], _KG] = Field(min_length=1, max_length=200)
    outputs_kg_by_grade: dict[Annotated[str, Field(pattern=r"^(XL|L|M)$")], _KG] = Field(min_length=1, max_length=3)
    losses: list[Loss] = Field(default_factory=list, max_length=20)
    site_id: str = Field(pattern=_ID)
    at: datetime | None = None
    idempotency_key: str | None = _KEY


class PackIn(BaseModel):
    children: dict[Annotated[str, Field(pattern=_ID)], _KG] = Field(min_length=1, max_length=200)
    site_id: str = Field(pattern=_ID)
    at: datetime | None = None
    idempotency_key: str | None = _KEY


class MergeIn(BaseModel):
    inputs: dict[Annotated[str, Field(pattern=_ID)], _KG] = Field(min_length=1, max_length=500)
    losses: list[Loss] = Field(default_factory=list, max_length=20)
    site_id: str = Field(pattern=_ID)
    at: datetime | None = None
    idempotency_key: str | None = _KEY


class ShipIn(BaseModel):
    items: dict[Annotated[str, Field(pattern=_ID)], _KG] = Field(min_length=1, max_length=500)
    buyer_id: str = Field(pattern=_ID)
    order_id: str | None = Field(default=None, pattern=_ID)
    destination: str = Field(min_length=1, max_length=200)
    site_id: str = Field(pattern=_ID)
    at: datetime | None = None
    idempotency_key: str | None = _KEY


def _staff(request: Request, p: Principal) -> None:
    require_roles(p, "manager", "admin")
    check_csrf(request, p)


def _own_objects(conn: Any, p: Principal, ids: list[str]) -> None:
    """A manager records steps only on lots whose every orchard is in their cooperative."""
    if p.role == "admin":
        return
    for oid in ids:
        try:
            origins = genealogy.trace_back(conn, oid)
        except genealogy.NotFound:
            continue                     # the step itself answers 404
        orchards = [o["orchard_id"] for o in origins]
        rows = conn.execute("SELECT DISTINCT cooperative_id FROM orchards WHERE orchard_id = ANY(%s)",
                            (orchards,)).fetchall()
        if any(r[0] != p.cooperative_id for r in rows):
            raise HTTPException(status_code=403, detail=f"{oid} holds fruit of another cooperative's orchards")


def _step(res: genealogy.StepResult) -> JSONResponse:
    return JSONResponse({"event_id": res.event_id, "created": res.created, "replayed": res.replayed},
                        status_code=200 if res.replayed else 201)


@router.post("/api/v1/genealogy/harvest", status_code=201)
def post_harvest(request: Request, body: HarvestIn, p: CurrentUser, conn: Conn, cfg: Gs1) -> Any:
    """Record a harvest lot (an orchard's picking of one day, kg)."""
    _staff(request, p)
    if p.role == "manager":
        row = conn.execute("SELECT cooperative_id FROM orchards WHERE orchard_id = %s", (body.orchard_id,)).fetchone()
        if row is not None and row[0] != p.cooperative_id:
            raise HTTPException(status_code=403, detail="that orchard belongs to another cooperative")
    return _step(genealogy.harvest(conn, orchard_id=body.orchard_id, harvested_on=body.harvested_on, kg=body.kg,
                                   cfg=cfg, at=body.at, idempotency_key=body.idempotency_key))


@router.post("/api/v1/genealogy/receive", status_code=201)
def post_receive(request: Request, body: ObjectsIn, p: CurrentUser, conn: Conn) -> Any:
    """Objects arrive at a warehouse site."""
    _staff(request, p)
    if not body.site_id:
        raise HTTPException(status_code=422, detail="site_id is required")
    _own_objects(conn, p, body.object_ids)
    return _step(genealogy.receive(conn, object_ids=body.object_ids, site_id=body.site_id, at=body.at,
                                   idempotency_key=body.idempotency_key))


@router.post("/api/v1/genealogy/store", status_code=201)
def post_store(request: Request, body: ObjectsIn, p: CurrentUser, conn: Conn) -> Any:
    """Objects enter a cold room."""
    _staff(request, p)
    if not body.cold_room_id:
        raise HTTPException(status_code=422, detail="cold_room_id is required")
    _own_objects(conn, p, body.object_ids)
    return _step(genealogy.store(conn, object_ids=body.object_ids, cold_room_id=body.cold_room_id, at=body.at,
                                 idempotency_key=body.idempotency_key))


@router.post("/api/v1/genealogy/grade", status_code=201)
def post_grade(request: Request, body: GradeIn, p: CurrentUser, conn: Conn, cfg: Gs1) -> Any:
    """Grade harvest lots: kg in = kg out per grade + losses (each with a reason)."""
    _staff(request, p)
    _own_objects(conn, p, list(body.inputs))
    return _step(genealogy.grade(conn, inputs=body.inputs, outputs_kg_by_grade=body.outputs_kg_by_grade,
                                 losses=[(x.kg, x.reason) for x in body.losses], site_id=body.site_id, cfg=cfg,
                                 at=body.at, idempotency_key=body.idempotency_key))


@router.post("/api/v1/genealogy/pack", status_code=201)
def post_pack(request: Request, body: PackIn, p: CurrentUser, conn: Conn, cfg: Gs1) -> Any:
    """Pack graded lots of one grade into a unit with its own SSCC."""
    _staff(request, p)
    _own_objects(conn, p, list(body.children))
    return _step(genealogy.pack(conn, children=body.children, site_id=body.site_id, cfg=cfg, at=body.at,
                                idempotency_key=body.idempotency_key))


@router.post("/api/v1/genealogy/merge", status_code=201)
def post_merge(request: Request, body: MergeIn, p: CurrentUser, conn: Conn, cfg: Gs1) -> Any:
    """Merge lots or units of one grade (several family orchards) into one shipment lot."""
    _staff(request, p)
    _own_objects(conn, p, list(body.inputs))
    return _step(genealogy.merge(conn, inputs=body.inputs, losses=[(x.kg, x.reason) for x in body.losses],
                                 site_id=body.site_id, cfg=cfg, at=body.at, idempotency_key=body.idempotency_key))


@router.post("/api/v1/genealogy/ship", status_code=201)
def post_ship(request: Request, body: ShipIn, p: CurrentUser, conn: Conn) -> Any:
    """Ship lots or units to a buyer (optionally against an order)."""
    _staff(request, p)
    _own_objects(conn, p, list(body.items))
    return _step(genealogy.ship(conn, items=body.items, buyer_id=body.buyer_id, order_id=body.order_id,
                                destination=body.destination, site_id=body.site_id, at=body.at,
                                idempotency_key=body.idempotency_key))


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        out.append({k: (float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, date | datetime)
                        else v) for k, v in r.items()})
    return out


@router.get("/api/v1/genealogy/recall")
def recall(p: CurrentUser, conn: Conn, orchard_id: str = Query(pattern=_ID), date_from: date = Query(),
           date_to: date = Query()) -> Any:
    """Every shipment and buyer that received fruit of the orchard harvested in the date range (召回)."""
    require_roles(p, "manager", "admin")
    if p.role == "manager":
        row = conn.execute("SELECT cooperative_id FROM orchards WHERE orchard_id = %s", (orchard_id,)).fetchone()
        if row is None or row[0] != p.cooperative_id:
            raise HTTPException(status_code=404, detail=f"no orchard {orchard_id!r} in your cooperative")
    rows = genealogy.recall(conn, orchard_id=orchard_id, date_from=date_from, date_to=date_to)
    return {"orchard_id": orchard_id, "from": date_from, "to": date_to, "shipments": _jsonable(rows),
            "buyers": sorted({r["buyer_id"] for r in rows})}


@router.get("/api/v1/genealogy/objects/{object_id}/origins")
def origins(object_id: str, p: CurrentUser, conn: Conn) -> Any:
    """Every harvest lot and orchard that went into a lot or unit (trace back)."""
    require_roles(p, "manager", "admin")
    rows = genealogy.trace_back(conn, object_id)
    if p.role == "manager":
        coops = {r[0] for r in conn.execute("SELECT cooperative_id FROM orchards WHERE orchard_id = ANY(%s)",
                                            ([r["orchard_id"] for r in rows],)).fetchall()}
        if p.cooperative_id not in coops:
            raise HTTPException(status_code=404, detail=f"no lot {object_id!r} of your cooperative")
    return {"object_id": object_id, "origins": _jsonable(rows)}


@router.get("/api/v1/epcis/events", response_class=JSONResponse, responses={200: {
    "description": "an EPCIS 2.0 EPCISQueryDocument",
    "content": {"application/ld+json": {"schema": {"type": "object"}}}}})
def epcis_events(p: CurrentUser, conn: Conn, cfg: Gs1,
                 ge_time: datetime | None = Query(default=None, alias="GE_eventTime"),
                 lt_time: datetime | None = Query(default=None, alias="LT_eventTime"),
                 any_epc: list[str] | None = Query(default=None, alias="MATCH_anyEPC", max_length=50),
                 any_class: list[str] | None = Query(default=None, alias="MATCH_anyEPCClass", max_length=50)) -> Any:
    """EPCIS 2.0 events (SimpleEventQuery subset) as an ``EPCISQueryDocument``."""
    require_roles(p, "buyer", "manager", "admin")
    for t in (ge_time, lt_time):
        if t is not None and t.tzinfo is None:
            raise HTTPException(status_code=422, detail="event times need a timezone (e.g. 2026-07-20T00:00:00Z)")
    visible = genealogy.received_by(conn, p.buyer_id or "") if p.role == "buyer" else None
    match = [*(any_epc or []), *(any_class or [])] or None
    events = epcis.query_events(conn, cfg, ge_time=ge_time, lt_time=lt_time, match_epc=match, visible=visible,
                                viewer=p.buyer_id if p.role == "buyer" else None)
    return JSONResponse(epcis.query_document(events), media_type="application/ld+json",
                        headers={"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"})


@router.get("/api/v1/genealogy/labels.pdf", response_class=Response, responses={200: {
    "description": "an A4 PDF of labels", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def label_sheet(p: CurrentUser, conn: Conn, cfg: Gs1,
                object_id: list[str] = Query(alias="id", min_length=1, max_length=200)) -> Response:
    """An A4 PDF of labels (QR = GS1 Digital Link, with the Chinese trace code), in the order given."""
    require_roles(p, "manager", "admin")
    if p.role == "manager":
        _own_objects(conn, p, object_id)
    pdf = labels.label_sheet(labels.labels_for(conn, cfg, object_id))
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="labels.pdf"'})


@router.get("/api/v1/genealogy/complaints")
def complaints(p: CurrentUser, conn: Conn, status: str | None = Query(default="open", pattern="^(open|answered|closed)$"),
               limit: int = Query(default=100, ge=1, le=500), offset: int = Query(default=0, ge=0, le=1_000_000)) -> Any:
    """Consumers' complaints against lots, newest first (paged)."""
    require_roles(p, "manager", "admin")
    return {"complaints": _jsonable(consumer.list_complaints(conn, status=status, limit=limit, offset=offset))}
