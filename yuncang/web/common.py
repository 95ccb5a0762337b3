"""Shared API pieces: the page envelope every list returns, and the error-response docs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson
from fastapi import HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items`` plus the ``total`` matching, with the ``limit``/``offset`` used."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Message(BaseModel):
    """An error: ``detail`` is a message, or a list of field errors for malformed requests."""

    detail: Any
    message: str | None = None


def limit_q(default: int = 50, le: int = 500) -> Any:
    return Query(default=default, ge=1, le=le, description=f"page size (1-{le})")


def offset_q() -> Any:
    return Query(default=0, ge=0, le=10_000_000, description="rows to skip")


#: Responses every signed-in endpoint can give besides 200.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "not signed in"},
    403: {"model": Message, "description": "signed in, but not allowed"},
    422: {"model": Message, "description": "invalid input; detail says what and where"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "no such thing"}}


async def reject_nul(request: Request) -> None:
    """Router dependency: NUL characters cannot be stored or matched in PostgreSQL text; answer 422.

    Async and on the raw ASGI scope, so the check costs no worker-thread hop and no parsing: a NUL in a
    query string can only arrive percent-encoded (``%00``)."""
    scope = request.scope
    qs = scope.get("query_string", b"")
    if "\x00" in scope["path"] or b"%00" in qs or b"\x00" in qs:
        raise HTTPException(status_code=422, detail="NUL characters are not allowed in paths or parameters")
    if any(b"\x00" in v for _, v in scope["headers"]):
        raise HTTPException(status_code=422, detail="NUL characters are not allowed in headers")


def json_bytes(obj: Any) -> bytes:
    """UTF-8 JSON of plain dicts/lists (orjson): datetimes and dates as ISO 8601 / RFC 3339, Decimals as
    numbers, non-string keys as strings."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)


def fast_json(obj: Any) -> Response:
    """JSON without a second pydantic pass (the hot read paths build plain dicts already shaped like
    their documented models, which stay in the OpenAPI document)."""
    return Response(json_bytes(obj), media_type="application/json")


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return float(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
