"""Shared API pieces: the page envelope every list returns, and the error-response docs."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items`` plus the ``total`` matching, with the ``limit``/``offset`` used."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Message(BaseModel):
    detail: Any


def limit_q(default: int = 50, le: int = 500) -> Any:
    return Query(default=default, ge=1, le=le, description=f"page size (1-{le})")


def offset_q() -> Any:
    return Query(default=0, ge=0, le=10_000_000, description="rows to skip")


#: Responses every signed-in endpoint can give besides 200.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "not signed in"},
    403: {"model": Message, "description": "signed in, but not allowed"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "no such thing"}}
