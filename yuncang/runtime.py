"""The running product: resolved services, pool, and the components to start."""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from yuncang.db import make_pool
from yuncang.embedded import EmbeddedBroker, EmbeddedPostgres, service_password
from yuncang.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    mqtt_url: str
    pool: ConnectionPool
    embedded: bool
    #: '3.1.1' for the embedded amqtt broker (it has no MQTT 5), else 'auto' (clients probe for v5)
    mqtt_protocol: str = "auto"
    #: demo speed-up: simulated seconds per wall-clock second (components may read it)
    time_scale: float = 1.0
    extras: dict[str, Any] = field(default_factory=dict)


class Services(ExitStack):
    """Resolve database and broker: the configured URLs, or embedded services that this stack stops."""

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings
        self.database_url = ""
        self.mqtt_url = ""
        self.embedded_db: EmbeddedPostgres | None = None
        self.embedded_broker: EmbeddedBroker | None = None

    def __enter__(self) -> Services:
        super().__enter__()
        s = self.settings
        try:
            if s.database_url:
                self.database_url = s.database_url
            else:
                self.embedded_db = self.enter_context(EmbeddedPostgres(s.data_dir / "pg"))
                self.database_url = self.embedded_db.url
            if s.mqtt_url:
                self.mqtt_url = s.mqtt_url
            else:
                auth_dir = s.data_dir / "broker"
                self.embedded_broker = self.enter_context(
                    EmbeddedBroker(auth_dir=auth_dir, service_password=service_password(auth_dir)))
                self.mqtt_url = self.embedded_broker.url
        except BaseException:
            self.close()
            raise
        return self


Component = Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, None]]


def discover_components() -> list[tuple[str, Component]]:
    """``run`` functions of the modules in :mod:`yuncang.components`, by their ``ORDER``."""
    import yuncang.components as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"yuncang.components.{info.name}")
        if hasattr(mod, "run"):
            found.append((getattr(mod, "ORDER", 50), info.name, mod.run))
    return [(name, fn) for _, name, fn in sorted(found)]


def open_pool(settings: Settings, url: str) -> ConnectionPool:
    return make_pool(url, min_size=settings.pool_min_size, max_size=settings.pool_max_size)
