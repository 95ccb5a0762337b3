"""Publish simulated gateway messages to an MQTT broker (aiomqtt, QoS 1).

Two ways to run:

- :func:`publish_messages` sends a finite stream as fast as the broker acknowledges it (a window of
  un-acknowledged QoS 1 publishes in flight), e.g. a replayed day.
- :func:`run_fleet` runs the fleet on a simulated clock that starts in the past and runs
  ``time_scale`` times faster than the wall clock until it has caught up with now, then in real time.
  It never publishes a message before its simulated send time, and never from the future (ingest
  rejects readings more than 10 minutes ahead).

Protocol: ``mqtt5://`` (or ``?protocol=5``) forces MQTT 5, ``mqtt311://`` (or ``?protocol=4``)
forces 3.1.1; plain ``mqtt://`` tries MQTT 5 and falls back to 3.1.1 (the embedded amqtt broker
speaks only 3.1.1 and needs a username, which the embedded URL carries).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiomqtt

from sim_sensors.replay import Ledger, Message, Replayer

log = logging.getLogger(__name__)
#: aiomqtt warns "There are N pending publish calls" whenever more than 10 publishes are in flight,
#: which is exactly how a windowed publisher works: give it a logger of its own that keeps quiet.
_client_log = logging.getLogger(__name__ + ".client")
_client_log.setLevel(logging.ERROR)


@dataclass
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    protocol: str            #: '5', '3.1.1' or 'auto'


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Split ``mqtt[5|311]://user:password@host:port[?protocol=5|4]``."""
    u = urlsplit(url)
    if u.scheme not in ("mqtt", "mqtt5", "mqtt311", "tcp"):
        raise ValueError(f"unsupported MQTT URL scheme {u.scheme!r} (use mqtt://, mqtt5:// or mqtt311://)")
    q = parse_qs(u.query)
    proto = {"mqtt5": "5", "mqtt311": "3.1.1"}.get(u.scheme, "auto")
    if "protocol" in q:
        proto = "5" if q["protocol"][0] == "5" else "3.1.1"
    return BrokerAddress(u.hostname or "127.0.0.1", u.port or 1883,
                         unquote(u.username) if u.username else None,
                         unquote(u.password) if u.password else None, proto)


def make_client(addr: BrokerAddress, protocol: str, *, identifier: str | None = None, window: int = 256,
                **kw: Any) -> aiomqtt.Client:
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    return aiomqtt.Client(addr.host, addr.port, username=addr.username, password=addr.password,
                          identifier=identifier, protocol=version,
                          max_inflight_messages=window, timeout=30, logger=_client_log, **kw)


#: protocol that worked per (host, port), so only the first connection probes MQTT 5
_KNOWN_PROTOCOL: dict[tuple[str, int], str] = {}
#: an MQTT 3.1.1-only broker (amqtt) does not answer an MQTT 5 CONNECT: give up on the probe quickly
PROBE_TIMEOUT_S = 3.0


async def connect(url: str, *, identifier: str | None = None,
                  window: int = 256) -> tuple[aiomqtt.Client, str]:
    """A connected client (caller must ``await client.__aexit__(None, None, None)``) and its protocol."""
    addr = parse_mqtt_url(url)
    known = _KNOWN_PROTOCOL.get((addr.host, addr.port))
    tries = ["5", "3.1.1"] if addr.protocol == "auto" else [addr.protocol]
    if addr.protocol == "auto" and known:
        tries = [known]
    last: Exception | None = None
    for proto in tries:
        client = make_client(addr, proto, identifier=identifier, window=window)
        timeout = PROBE_TIMEOUT_S if (proto == "5" and len(tries) > 1) else 15.0
        try:
            await asyncio.wait_for(client.__aenter__(), timeout=timeout)
            _KNOWN_PROTOCOL[(addr.host, addr.port)] = proto
            return client, proto
        except (TimeoutError, aiomqtt.MqttError, OSError) as exc:
            last = exc
            log.info("mqtt connect failed", extra={"protocol": proto, "error": str(exc) or type(exc).__name__})
    raise aiomqtt.MqttError(f"cannot connect to {addr.host}:{addr.port}: {last}")


@dataclass
class PublishStats:
    messages: int = 0
    readings: int = 0
    bytes: int = 0
    seconds: float = 0.0
    protocol: str = ""

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


async def threaded(messages: Iterable[Message], chunk: int = 256) -> AsyncIterator[Message]:
    """Iterate a (CPU-bound) message generator in a worker thread, ``chunk`` messages at a time, so the
    event loop (web, ingest in the demo) stays responsive while days are being generated."""
    it: Iterator[Message] = iter(messages)
    lock = threading.Lock()

    def take() -> list[Message]:
        with lock:
            return list(islice(it, chunk))

    while True:
        batch = await asyncio.to_thread(take)
        if not batch:
            return
        for m in batch:
            yield m


async def publish_messages(messages: Iterable[Message] | AsyncIterable[Message], url: str, *,
                           window: int = 256, qos: int = 1, identifier: str | None = None,
                           pace: Callable[[Message], Any] | None = None,
                           stop: asyncio.Event | None = None) -> PublishStats:
    """Publish every message (QoS 1 by default) keeping up to ``window`` un-acknowledged in flight.

    ``pace``: optional coroutine function awaited before each message (used to follow a clock).
    Returns when every publish is acknowledged (or ``stop`` is set).
    """
    client, proto = await connect(url, identifier=identifier, window=window)
    stats = PublishStats(protocol=proto)
    sem = asyncio.Semaphore(window)
    failures: list[BaseException] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(m: Message) -> None:
        try:
            await client.publish(m.topic, m.payload, qos=qos)
        finally:
            sem.release()

    def done(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())  # type: ignore[arg-type]

    async def send(m: Message) -> None:
        if pace is not None:
            await pace(m)
        await sem.acquire()
        if failures:
            raise failures[0]
        task = asyncio.create_task(one(m))
        pending.add(task)
        task.add_done_callback(done)
        stats.messages += 1
        stats.readings += m.readings
        stats.bytes += len(m.payload)
        if stats.messages % 64 == 0:
            await asyncio.sleep(0)        # let acknowledgements in while the generator is busy

    t0 = time.perf_counter()
    try:
        if isinstance(messages, AsyncIterable):
            async for m in messages:
                if stop is not None and stop.is_set():
                    break
                await send(m)
        else:
            for m in messages:
                if stop is not None and stop.is_set():
                    break
                await send(m)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if failures:
            raise failures[0]
    finally:
        stats.seconds = time.perf_counter() - t0
        await client.__aexit__(None, None, None)
    return stats


class SimClock:
    """Simulated time: starts at ``start`` (Unix s) and runs ``scale`` x wall time, never past now."""

    def __init__(self, start: float, scale: float):
        self.start = start
        self.scale = max(scale, 1.0)
        self.wall0 = time.time()

    def now(self) -> float:
        wall = time.time()
        return min(self.start + (wall - self.wall0) * self.scale, wall)

    def wall_delay(self, sim_t: float) -> float:
        """Wall seconds until the simulated clock reaches ``sim_t``: both the accelerated clock and the
        wall clock must have passed it."""
        when_accelerated = self.wall0 + (sim_t - self.start) / self.scale
        return max(0.0, max(when_accelerated, sim_t) - time.time())


LOCAL = dt.timezone(dt.timedelta(hours=8))


async def run_fleet(catch_up: Replayer, url: str, *, start: dt.date, time_scale: float, stop: asyncio.Event,
                    live: Replayer | None = None, ledger: Ledger | None = None, window: int = 64,
                    identifier: str | None = None, begin: float | None = None,
                    today: Replayer | None = None) -> PublishStats:
    """Run the fleet from local midnight of ``start`` on a :class:`SimClock` until ``stop`` is set.

    Days before today come from ``catch_up`` (e.g. a coarse interval, so catching up stays gentle).
    From today on, ``live`` (default: ``catch_up``) takes over: today's messages sent before the
    moment the simulator reaches today come from ``today`` (default ``catch_up``; give one that sends
    each sample soon after measuring, so the hours before the switch are not held back until the
    evening), later ones from ``live``.
    ``begin`` (Unix s, default local midnight of ``start``): messages due earlier are skipped (e.g.
    ``begin=time.time()`` runs live from now on).
    """
    midnight = dt.datetime(start.year, start.month, start.day, tzinfo=LOCAL).timestamp()
    t0 = max(midnight, begin) if begin is not None else midnight
    clock = SimClock(t0, time_scale)
    led = ledger if ledger is not None else Ledger()
    live_rep = live or catch_up
    today_rep = today

    async def pace(m: Message) -> None:
        while not stop.is_set():
            delay = clock.wall_delay(m.sent_at)
            if delay <= 0:
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=min(delay, 1.0))
            except TimeoutError:
                pass

    def messages() -> Iterable[Message]:
        day = start
        while not stop.is_set():
            today = dt.datetime.now(LOCAL).date()
            if day < today or live_rep is catch_up:
                parts: list[tuple[Iterable[Message], float, float]] = [
                    (catch_up.day(day), t0, float("inf"))]
            else:
                cut = time.time()
                log.info("simulator reached today; switching to the live interval",
                         extra={"day": day.isoformat(), "interval_s": live_rep.interval_s})
                parts = [((today_rep or catch_up).day(day), t0, cut)] if day == today else []
                parts.append((live_rep.day(day), cut, float("inf")))
            for stream, lo, hi in parts:
                for m in stream:
                    if not (lo <= m.sent_at < hi):
                        continue
                    led.add(m)
                    yield m
                    if stop.is_set():
                        return
            day = day + dt.timedelta(days=1)

    return await publish_messages(threaded(messages(), chunk=128), url, window=window, identifier=identifier,
                                  pace=pace, stop=stop)
