"""The web app in several worker processes sharing one listening socket (``yuncang serve --workers N``).

One Python process serves HTTP on one core at a time (the GIL); with N worker processes the app uses
N cores. The parent binds the socket and keeps running the background components (ingest, scheduler,
simulator) exactly once; each worker is a fresh interpreter (``spawn``) with its own connection pool
(``pool_max_size`` connections) and its own short response cache (``api_cache_ttl_s``). The kernel
spreads incoming connections over the workers. Stopping: SIGTERM to each worker (uvicorn finishes the
requests in flight), then SIGKILL after ``grace_s``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket
from typing import Any

log = logging.getLogger(__name__)


def default_workers(configured: int) -> int:
    """``configured`` when positive, else one per CPU core."""
    return configured if configured > 0 else (os.cpu_count() or 1)


def _worker(settings_dump: dict[str, Any], database_url: str, mqtt_url: str | None, sock: socket.socket) -> None:
    """A worker process: its own pool and app, serving on the inherited socket until SIGTERM/SIGINT."""
    import uvicorn

    from yuncang.app import create_app
    from yuncang.db import make_pool
    from yuncang.logs import setup_logging
    from yuncang.settings import Settings

    settings = Settings(**settings_dump)
    setup_logging(settings.log_level)
    pool = make_pool(database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size)
    try:
        app = create_app(settings, pool, mqtt_url=mqtt_url)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                proxy_headers=False)  # X-Forwarded-For: yuncang.web.client_address
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        pool.close()


class WebWorkers:
    """``count`` worker processes serving the app on ``host:port``."""

    def __init__(self, settings: Any, database_url: str, mqtt_url: str | None, *, host: str, port: int, count: int):
        import uvicorn

        self.count = count
        self.sock = uvicorn.Config(app="yuncang.app:create_app", host=host, port=port).bind_socket()
        ctx = multiprocessing.get_context("spawn")
        dump = settings.model_dump()
        self.procs = [
            ctx.Process(target=_worker, args=(dump, database_url, mqtt_url, self.sock), name=f"yuncang-web-{i}")
            for i in range(count)
        ]

    def start(self) -> None:
        for p in self.procs:
            p.start()
        log.info("web workers started", extra={"workers": self.count, "pids": [p.pid for p in self.procs]})

    async def wait_any_exit(self, poll_s: float = 0.5) -> None:
        """Returns when a worker has exited (a crash, or a signal sent to the whole process group)."""
        while all(p.is_alive() for p in self.procs):
            await asyncio.sleep(poll_s)
        dead = [(p.name, p.exitcode) for p in self.procs if not p.is_alive()]
        log.warning("web worker exited", extra={"workers": dead})

    def stop(self, grace_s: float = 15.0) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(grace_s)
            if p.is_alive():
                p.kill()
                p.join(5)
        self.sock.close()
