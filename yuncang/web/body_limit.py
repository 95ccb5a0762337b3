"""Request bodies are bounded before anything parses them (pure ASGI middleware): 413 instead of reading
a 200 MiB sign-in request into memory.

A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked or lying body is
counted as it streams and refused as soon as it passes the limit. Sign-in routes, which anyone may call
without an account, get a much smaller limit than the rest.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException

#: path -> largest body, bytes: sign-in takes a username and a password
SMALL_BODY_PATHS = {"/api/v1/auth/token": 4096, "/login": 4096, "/logout": 4096}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (an HTTPException, so FastAPI's body
    parsing lets it through as the 413 it is)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body too large (at most {limit} bytes)")


class BodyLimit:
    """Answer 413 to a request whose body is over ``max_bytes`` (or the path's own, smaller limit)."""

    def __init__(self, app: Any, max_bytes: int = 1 << 20, per_path: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = SMALL_BODY_PATHS if per_path is None else per_path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.max_bytes)
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False  # the server answers a malformed length itself
            if too_big:
                await _refuse(send, limit)
                return
        seen = 0
        started = False

        async def receive_() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_, send_)
        except BodyTooLarge:
            if not started:
                await _refuse(send, limit)


async def _refuse(send: Any, limit: int) -> None:
    body = orjson.dumps({"detail": f"request body too large (at most {limit} bytes)"})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
