"""Helpers for tests of the simulator's publishing: a plain subscriber that collects what arrives.

Nothing here is used by the simulator itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt

from sim_sensors.publisher import parse_mqtt_url


@contextlib.asynccontextmanager
async def collector(mqtt_url: str, topic: str) -> AsyncIterator[list[tuple[str, bytes]]]:
    """A plain aiomqtt subscriber (QoS 1) collecting (topic, payload) on ``topic`` in the background."""
    addr = parse_mqtt_url(mqtt_url)
    got: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(addr.host, addr.port, username=addr.username, password=addr.password) as c:
        await c.subscribe(topic, qos=1)

        async def pump() -> None:
            async for m in c.messages:
                got.append((str(m.topic), bytes(m.payload)))

        task = asyncio.create_task(pump())
        try:
            yield got
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_for(got: list[Any], n: int, timeout: float = 30.0) -> None:
    """Wait until ``got`` holds ``n`` items or ``timeout`` s have passed, then 0.3 s more."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(got) < n and loop.time() < end:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)          # nothing extra should trickle in
