"""A short in-process cache for the hottest reads, with single-flight fills and HTTP validators.

Sensor data arrives every 5 minutes, so an orchard's conditions or chart may be served from memory
for a few seconds (``ttl_s``, setting ``YUNCANG_API_CACHE_TTL_S``, default 5 s): a reader sees data at
most ``ttl_s`` seconds older than the database. Entries are per process (each uvicorn worker has its
own), bounded in number, and dropped when they expire; a miss is filled once even when many requests
for the same key arrive together (the others wait for that fill: no stampede on the database), and a
value near the end of its life is refreshed in the background while it is still being served.

The cache holds *response bodies only*. Callers check access on every request before they ask the
cache (see :mod:`yuncang.api.orchards`), so a cached body is never served to someone who may not see
it. Responses carry a strong ``ETag`` (a hash of the body), ``Cache-Control: private, max-age=<s left>``
and ``Vary: Accept-Encoding, Authorization, Cookie``; a request whose ``If-None-Match`` matches gets
``304`` with no body. Long bodies are compressed once per fill and sent gzip-coded to clients that accept
it (browsers do), with their own ETag.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import random
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

V = TypeVar("V")
log = logging.getLogger(__name__)


class TtlCache(Generic[V]):
    """Values by key for ``ttl_s`` seconds (monotonic clock); at most ``max_entries`` (oldest dropped).

    ``await get(key, fill)`` returns ``(age_s, value)``: the held value while it is younger than ``ttl_s``,
    else the result of the blocking ``fill()``, run in a worker thread once per key however many requests
    wait for it. A value's age counts from the moment its fill *started*, so no value is served more than
    ``ttl_s`` seconds after the database was read for it. Refresh-ahead: the first request that finds a
    value older than ``refresh_at`` × ``ttl_s`` (plus a random share of the rest, so entries filled
    together do not refresh together) still gets it at once and starts one background fill (at most
    ``max_background`` at a time, so refreshes never crowd out requests), so under steady traffic no
    request waits for the database. A fill that raises is not cached: the error
    reaches every waiter and the next request tries again (a failed background refresh is dropped and the
    old value expires as usual). ``ttl_s <= 0`` disables caching (every call fills)."""

    def __init__(self, ttl_s: float, max_entries: int = 4096, refresh_at: float = 0.6, max_background: int = 4):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.refresh_at = refresh_at
        self.max_background = max_background
        #: key -> (fill start, age at which to refresh ahead, value)
        self._values: dict[Hashable, tuple[float, float, V]] = {}
        self._filling: dict[Hashable, asyncio.Future[V]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, fill: Callable[[], V]) -> tuple[float, V]:
        """(age in s, value): from memory when fresh, else from ``fill`` (run in a worker thread)."""
        hit = self._values.get(key)
        if hit is not None:
            age = time.monotonic() - hit[0]
            if age < self.ttl_s:
                self.hits += 1
                if age >= hit[1] and key not in self._filling and len(self._background) < self.max_background:
                    task = asyncio.create_task(self._fill(key, fill))
                    self._background.add(task)
                    task.add_done_callback(self._background_done)
                return age, hit[2]
            del self._values[key]
        pending = self._filling.get(key)
        while pending is not None:
            try:
                value = await asyncio.shield(pending)
                self.hits += 1
                return 0.0, value
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request itself was cancelled
                pending = self._filling.get(key)  # the filling request went away: fill (or wait) anew
        self.misses += 1
        return 0.0, await self._fill(key, fill)

    async def _fill(self, key: Hashable, fill: Callable[[], V]) -> V:
        fut: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._filling[key] = fut
        started = time.monotonic()
        try:
            value = await run_in_threadpool(fill)
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved here, so a fill nobody else waited for logs no "never retrieved"
            raise
        finally:
            if self._filling.get(key) is fut:
                del self._filling[key]
        fut.set_result(value)
        if self.ttl_s > 0:
            if len(self._values) >= self.max_entries and key not in self._values:
                self._evict()
            # each entry refreshes at its own random point in [refresh_at, (1 + refresh_at) / 2] x ttl, so
            # entries filled together (a cold start) do not all refresh in the same instant
            due = self.ttl_s * (self.refresh_at + random.random() * (1 - self.refresh_at) / 2)
            self._values[key] = (started, due, value)
        return value

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("background cache refresh failed", exc_info=task.exception())

    def _evict(self) -> None:
        now = time.monotonic()
        for k in [k for k, (t, _, _) in self._values.items() if now - t >= self.ttl_s]:
            del self._values[k]
        while len(self._values) >= self.max_entries:  # still full of fresh entries: drop the oldest
            del self._values[next(iter(self._values))]

    def clear(self) -> None:
        self._values.clear()


#: Bodies at least this long (bytes) are also kept gzip-compressed for clients that accept it.
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class Body:
    """A ready JSON body, its strong entity tag, and (for long bodies) its gzip coding with its own tag."""

    data: bytes
    etag: str
    gz: bytes | None = None
    gz_etag: str = ""

    @classmethod
    def of(cls, data: bytes) -> Body:
        tag = hashlib.blake2b(data, digest_size=12).hexdigest()
        if len(data) < GZIP_MIN_BYTES:
            return cls(data, f'"{tag}"')
        # level 5: a 7-day, 3-metric chart (~57 KB) shrinks ~8x in ~1 ms, once per fill
        return cls(data, f'"{tag}"', gzip.compress(data, compresslevel=5, mtime=0), f'"{tag}-gz"')


def etag_matches(if_none_match: str, *etags: str) -> bool:
    """RFC 9110 §13.1.2: ``*`` or any listed tag equal to one of ``etags`` by weak comparison."""
    v = if_none_match.strip()
    if v == "*":
        return True
    return any(t.strip().removeprefix("W/") in etags for t in v.split(","))


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (listed, or ``*``, without ``q=0``)."""
    if not accept_encoding:
        return False
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.replace(" ", "")
            try:
                return not q.startswith("q=") or float(q[2:]) > 0
            except ValueError:
                return False
    return False


def cached_json(request: Request, body: Body, age_s: float, ttl_s: float) -> Response:
    """200 with the body (gzip-coded when the client accepts it and the body is long), or 304 when the
    request's ``If-None-Match`` names its ETag; both carry the validators and how many more seconds the
    body may be reused (``max-age``)."""
    gz = body.gz is not None and accepts_gzip(request.headers.get("accept-encoding"))
    headers = {
        "ETag": body.gz_etag if gz else body.etag,
        "Cache-Control": f"private, max-age={max(0, int(ttl_s - age_s))}",
        "Vary": "Accept-Encoding, Authorization, Cookie",
    }
    inm = request.headers.get("if-none-match")
    if inm is not None and etag_matches(inm, body.etag, body.gz_etag or body.etag):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
        return Response(body.gz, media_type="application/json", headers=headers)
    return Response(body.data, media_type="application/json", headers=headers)


#: OpenAPI documentation of the validator headers and the 304 answer, for the cached endpoints.
CACHE_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "strong entity tag of the body; send it back in If-None-Match",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "private, max-age = seconds the body may still be reused",
        "schema": {"type": "string"},
    },
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "If-None-Match named the current ETag: not modified, no body", "headers": CACHE_HEADERS}
}
