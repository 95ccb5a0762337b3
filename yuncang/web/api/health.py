"""Health: database, broker and the storage path in use."""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from yuncang.schema import describe, storage_path

router = APIRouter()


def _db_status(request: Request) -> dict[str, Any]:
    pool = request.app.state.yc.pool
    try:
        with pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
            path = storage_path(conn)
            orchards = conn.execute("SELECT count(*) FROM orchards").fetchone()[0]
        return {"ok": True, "storage_path": path, "storage": describe(path), "orchards": orchards}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _broker_status(url: str | None) -> dict[str, Any]:
    if not url:
        return {"ok": False, "error": "no broker configured"}
    u = urlsplit(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 1883), timeout=1.0):
            return {"ok": True, "host": u.hostname, "port": u.port or 1883}
    except OSError as exc:
        return {"ok": False, "error": str(exc)}


@router.get("/api/v1/health", tags=["health"])
@router.get("/health", include_in_schema=False)
async def health(request: Request) -> JSONResponse:
    """Database reachability, storage path (TimescaleDB or plain PostgreSQL) and broker reachability."""
    db = await asyncio.to_thread(_db_status, request)
    broker = await asyncio.to_thread(_broker_status, request.app.state.yc.mqtt_url)
    ok = db["ok"] and broker["ok"]
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "database": db, "broker": broker}, status_code=200 if db["ok"] else 503
    )
