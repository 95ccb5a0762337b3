"""The one place domain errors become HTTP: every :class:`registry.errors.DomainError` (NotFound 404,
Conflict 409, Invalid 422, Forbidden 403) answers ``{"detail": {"error", "message", "message_zh",
"detail"}}``; malformed requests answer 422 with the field errors; anything unexpected is logged and
answers 503 (never a stack trace)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from registry.errors import DomainError

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content={"detail": exc.to_dict()})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": errs, "message": "invalid request"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(status_code=503, content={"message": "service temporarily unavailable"})
