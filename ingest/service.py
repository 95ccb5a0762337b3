"""The ingest service: MQTT (QoS 1, persistent session, manual acknowledgement) -> decode -> validate ->
batched binary COPY -> commit -> acknowledge.

Delivery guarantee: a message is acknowledged (PUBACK) only after the transaction holding its readings,
dead letters and health counters has committed, so killing the process at any moment loses nothing: the
broker redelivers every unacknowledged message of the persistent session, and ``ON CONFLICT DO NOTHING``
(readings) and the ``(msg_key, item)`` key (dead letters) make the redelivery idempotent.

MQTT: version 5 when the broker speaks it (``clean_start=False`` + a session expiry interval, a
Receive Maximum that bounds the unacknowledged messages held in memory, and a shared subscription
``$share/<group>/<filter>`` so several ingest processes split the load); otherwise MQTT 3.1.1 with
``clean_session=False`` (amqtt, the embedded broker, which keeps sessions only for named users).
Acknowledgements from a connection that has since dropped are never sent on the new one (packet ids
are reused); the broker redelivers those messages instead.

Broker restarts: ingest reconnects with backoff (0.2 s doubling to 2 s: it runs beside the broker, and
every second it is not subscribed may cost messages, see below) and always re-subscribes.
Mosquitto 2.0 (checked with 2.0.11) restores a plain persistent subscription and the messages queued
for it from its persistence file, but NOT a shared subscription: messages gateways publish between the
broker coming back and ingest re-subscribing are dropped by the broker. A single ingest process that
must survive broker restarts without any gap should run with ``--no-shared``; with several processes
(shared group) the gap is the reconnect time, at most ~2 s after the broker accepts connections again.

Back-pressure: at most ``max_pending_batches`` batches wait for the database; beyond that the consumer
stops taking messages, so the broker stops sending once the Receive Maximum of unacknowledged messages
is reached. When the database is down the current batch is retried with backoff, never dropped.
A batch the database refuses for another reason is split and written message by message; a message
that still fails is dead-lettered (``storage_error``) so one bad message never stops the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest import metrics as M
from ingest import paho_speedups, rollups
from ingest.batch import Batch, Pending
from ingest.decode import TOPIC_FILTERS, TTS_TOPICS, decode_message, topic_filters
from ingest.model import Decoded
from ingest.profiles import Catalogue
from ingest.validate import DeviceCache, Validator
from ingest.writer import LOAD_COUNTERS, BatchWriter
from registry.broker_accounts import TB_GATEWAY_MOUNT

log = logging.getLogger(__name__)


def default_client_id() -> str:
    """A stable client id per host (the persistent session is keyed by it)."""
    return f"yuncang-ingest-{socket.gethostname()}"


@dataclass
class IngestConfig:
    database_url: str
    mqtt_url: str
    topic_prefix: str = ""
    client_id: str = field(default_factory=default_client_id)
    #: shared-subscription group on MQTT v5 brokers (None: plain subscription)
    shared_group: str | None = "ingest"
    #: "auto" (v5, falling back to 3.1.1), "5" or "3.1.1"
    protocol: str = "auto"
    #: MQTT v5 session expiry, s: how long the broker keeps queueing for a disconnected ingest
    session_expiry_s: int = 7 * 86400
    #: MQTT v5 Receive Maximum: unacknowledged messages the broker may send before waiting for acks
    receive_maximum: int = 4000
    batch_max_readings: int = 20_000
    batch_max_messages: int = 1500
    batch_max_age_s: float = 0.25       #: a batch is written at the latest this long after its first message
    idle_flush_s: float = 0.02          #: ... or when no message came for this long
    max_pending_batches: int = 2
    refresh_every_s: float = 60.0       #: rollup refresh period, s (0: leave it to a scheduler)
    device_reload_s: float = 60.0       #: registry device cache reload period, s
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 2.0
    db_retry_max_s: float = 10.0
    #: remember this many recent messages (128-bit digests) to drop identical re-sends early (0: off)
    resend_cache: int = 50_000
    #: leave the shared group for good (scaling down): resume the session, unsubscribe instead of
    #: subscribing, store what the broker had queued for it, stop after ``leave_idle_s`` without a
    #: message, then end the session at the broker (see :meth:`IngestService.run`)
    leave: bool = False
    leave_idle_s: float = 5.0
    #: operator's device profile directory (``*.toml``, added to the built-in catalogue; None: built-ins only)
    profiles_dir: str | None = None
    #: The Things Stack uplink topic filters (without prefix)
    tts_topics: tuple[str, ...] = TTS_TOPICS
    #: namespace of the ThingsBoard gateways' listener mount points (``<prefix><this><account>/``)
    tb_gateway_mount: str = TB_GATEWAY_MOUNT
    #: an unmapped key of a device is dead-lettered at most once per this many seconds (it is counted on
    #: every message in device_unmapped_keys regardless)
    unmapped_dead_letter_s: float = 3600.0


@dataclass
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        u = urlsplit(url)
        if u.scheme not in ("mqtt", "tcp", ""):
            raise ValueError(f"unsupported MQTT URL scheme {u.scheme!r} (use mqtt://user:password@host:port)")
        return cls(u.hostname or "127.0.0.1", u.port or 1883,
                   unquote(u.username) if u.username else None, unquote(u.password) if u.password else None)


@dataclass
class Stats:
    """Totals since start (also exported as Prometheus counters)."""

    messages: int = 0
    readings: int = 0           #: accepted readings committed (duplicates included)
    stored: int = 0             #: new rows
    rejects: int = 0
    batches: int = 0
    acked: int = 0
    not_acked_stale: int = 0    #: committed but left for redelivery (their connection had dropped)
    db_retries: int = 0
    reconnects: int = 0
    resent_skipped: int = 0     #: readings of identical re-sent messages skipped before the database


class IngestService:
    def __init__(self, cfg: IngestConfig):
        paho_speedups.install()
        self.cfg = cfg
        self.target = MqttTarget.parse(cfg.mqtt_url)
        self.prefix = cfg.topic_prefix
        self.writer = BatchWriter(cfg.database_url)
        self.validator = Validator(DeviceCache(), profiles=Catalogue.load(cfg.profiles_dir))
        self._unmapped_dead: dict[tuple[str, str], float] = {}  #: (device, key) -> when last dead-lettered
        self.stats = Stats()
        self.protocol: str | None = None if cfg.protocol == "auto" else cfg.protocol
        self._gen = 0
        self._client: aiomqtt.Client | None = None
        self._batch = Batch()
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=max(1, cfg.max_pending_batches))
        self._buffered = 0
        self._seen: dict[bytes, None] = {}
        self.ready = asyncio.Event()   #: set once subscribed (tests wait for it)

    # ----------------------------------------------------------------------------------------- running

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then write what is buffered, acknowledge it and disconnect."""
        await self._load_devices()
        writer = asyncio.create_task(self._writer_loop(), name="ingest-writer")
        extras = [asyncio.create_task(self._periodic(stop), name="ingest-periodic")]
        if self.cfg.leave:
            extras.append(asyncio.create_task(self._stop_when_idle(stop), name="ingest-leave"))
        try:
            await self._consume_forever(stop, writer)
        finally:
            if not writer.done():
                await self._flush()
                await self._queue.put(None)
                with contextlib.suppress(Exception):
                    await writer
            for t in extras:
                t.cancel()
            await asyncio.gather(*extras, return_exceptions=True)
            if self._client is not None:
                with contextlib.suppress(Exception):
                    await self._client.__aexit__(None, None, None)
            await asyncio.to_thread(self.writer.close)
            log.info("ingest stopped", extra={"messages": self.stats.messages, "readings": self.stats.readings,
                                              "stored": self.stats.stored, "rejects": self.stats.rejects})
        if self.cfg.leave and self._buffered == 0:
            await self._end_session()

    async def _stop_when_idle(self, stop: asyncio.Event) -> None:
        """``leave``: set ``stop`` once subscribed-off and nothing arrived or waited for ``leave_idle_s``."""
        await self.ready.wait()
        last, since = -1, time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.25)
            seen = self.stats.messages + self._buffered
            if seen != last or self._buffered:
                last, since = seen, time.monotonic()
            elif time.monotonic() - since >= self.cfg.leave_idle_s:
                log.info("ingest session drained", extra={"client_id": self.cfg.client_id,
                                                          "messages": self.stats.messages})
                stop.set()

    async def _end_session(self) -> None:
        """Connect once with a clean start (the broker discards the session it kept for this client id)
        and session expiry 0 (nothing is kept after this disconnect)."""
        t, v5 = self.target, self.protocol == "5"
        if v5:
            client = aiomqtt.Client(t.host, t.port, username=t.username, password=t.password,
                                    identifier=self.cfg.client_id, timeout=10, clean_start=True,
                                    protocol=aiomqtt.ProtocolVersion.V5)
        else:
            client = aiomqtt.Client(t.host, t.port, username=t.username, password=t.password,
                                    identifier=self.cfg.client_id, timeout=10, clean_session=True,
                                    protocol=aiomqtt.ProtocolVersion.V311)
        async with client:
            pass
        log.info("ingest session ended", extra={"client_id": self.cfg.client_id})

    async def _load_devices(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._reload_devices()
                log.info("device cache loaded", extra={"devices": len(self.validator.devices)})
                return
            except psycopg.OperationalError as exc:
                log.warning("database not reachable; retrying", extra={"error": str(exc)[:200]})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.db_retry_max_s)

    def _read_devices(self) -> tuple[DeviceCache, list[tuple[str, str, float, float]]]:
        with psycopg.connect(self.cfg.database_url, connect_timeout=10) as conn:
            devices = DeviceCache.load(conn)
            counters = conn.execute(LOAD_COUNTERS).fetchall()
        return devices, counters

    async def _reload_devices(self) -> None:
        """Registry devices and persisted counter baselines (read in a thread, merged on the loop)."""
        devices, counters = await asyncio.to_thread(self._read_devices)
        self.validator.devices = devices
        self.validator.counters.merge(counters)

    async def _periodic(self, stop: asyncio.Event) -> None:
        last_refresh = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(1.0)
            now = time.monotonic()
            try:
                if now - self.validator.devices.loaded_at >= self.cfg.device_reload_s:
                    await self._reload_devices()
                if self.cfg.refresh_every_s and now - last_refresh >= self.cfg.refresh_every_s:
                    last_refresh = now
                    await asyncio.to_thread(self._refresh)
            except psycopg.Error as exc:
                log.warning("periodic ingest task failed", extra={"error": str(exc)[:300]})

    def _refresh(self) -> None:
        with psycopg.connect(self.cfg.database_url, connect_timeout=10) as conn:
            rollups.refresh(conn)

    # ---------------------------------------------------------------------------------------- MQTT side

    def _make_client(self, protocol: str) -> aiomqtt.Client:
        t = self.target
        username = t.username
        if protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = int(self.cfg.session_expiry_s)
            props.ReceiveMaximum = max(1, min(65535, int(self.cfg.receive_maximum)))
            client = aiomqtt.Client(t.host, t.port, username=username, password=t.password,
                                    identifier=self.cfg.client_id, protocol=aiomqtt.ProtocolVersion.V5,
                                    clean_start=False, properties=props, keepalive=30, timeout=10)
        else:
            client = aiomqtt.Client(t.host, t.port, username=username, password=t.password,
                                    identifier=self.cfg.client_id, protocol=aiomqtt.ProtocolVersion.V311,
                                    clean_session=False, keepalive=30, timeout=10)
        # aiomqtt 2.x has no manual-ack switch yet (empicano/aiomqtt#345): use paho's (paho-mqtt >= 2.0)
        client._client.manual_ack_set(True)
        return client

    def filters(self, protocol: str) -> list[str]:
        fs = [self.prefix + f for f in topic_filters(self.cfg.tts_topics, self.cfg.tb_gateway_mount)]
        if protocol == "5" and self.cfg.shared_group:
            fs = [f"$share/{self.cfg.shared_group}/{f}" for f in fs]
        return fs

    async def _connect(self) -> aiomqtt.Client:
        order = [self.protocol] if self.protocol else ["5", "3.1.1"]
        err: Exception | None = None
        for proto in order:
            assert proto is not None
            client = self._make_client(proto)
            try:
                await client.__aenter__()
            except aiomqtt.MqttError as exc:
                err = exc
                continue
            try:
                # always (re)subscribe, even when the session was resumed: Mosquitto 2.0 does not restore
                # shared subscriptions from its persistence file after a restart (re-subscribing to the
                # same filter just replaces the subscription)
                if self.cfg.leave:   # no new messages for this session; the queued ones still come
                    for f in {*self.filters(proto), *(self.prefix + f for f in TOPIC_FILTERS)}:
                        await client.unsubscribe(f)
                else:
                    for f in self.filters(proto):
                        await client.subscribe(f, qos=1)
            except aiomqtt.MqttError as exc:
                err = exc
                with contextlib.suppress(Exception):
                    await client.__aexit__(None, None, None)
                continue
            if self.protocol is None:
                log.info("MQTT protocol chosen", extra={"protocol": proto})
            self.protocol = proto
            return client
        assert err is not None
        raise err

    async def _consume_forever(self, stop: asyncio.Event, writer: asyncio.Task[None]) -> None:
        delay = self.cfg.reconnect_min_s
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if writer.done():
                    writer.result()  # surface a writer crash
                try:
                    self._client = await self._connect()
                except aiomqtt.MqttError as exc:
                    self.stats.reconnects += 1
                    M.RECONNECTS.inc()
                    log.warning("MQTT connect failed; retrying", extra={"error": str(exc)[:200],
                                                                       "retry_s": round(delay, 2)})
                    await asyncio.wait([stopper], timeout=delay)
                    delay = min(delay * 2, self.cfg.reconnect_max_s)
                    continue
                self._gen += 1
                delay = self.cfg.reconnect_min_s
                log.info("ingest leaving" if self.cfg.leave else "ingest subscribed",
                         extra={"broker": f"{self.target.host}:{self.target.port}",
                                "client_id": self.cfg.client_id, "protocol": self.protocol,
                                "filters": self.filters(self.protocol or "5")})
                self.ready.set()
                try:
                    await self._consume(self._client, stop, stopper)
                    await self._drain(writer)  # stopping: commit and acknowledge before disconnecting
                except aiomqtt.MqttError as exc:
                    self.stats.reconnects += 1
                    M.RECONNECTS.inc()
                    log.warning("MQTT connection lost; reconnecting", extra={"error": str(exc)[:200]})
                    # what was received on the dead connection is still written (idempotent) but not acked:
                    # its packet ids mean nothing on the next connection, and the broker will redeliver
                    await self._flush()
                finally:
                    client, self._client = self._client, None
                    if client is not None:
                        with contextlib.suppress(Exception):
                            await client.__aexit__(None, None, None)
                if not stop.is_set():
                    await asyncio.wait([stopper], timeout=delay)
        finally:
            stopper.cancel()

    async def _consume(self, client: aiomqtt.Client, stop: asyncio.Event, stopper: asyncio.Future[Any]) -> None:
        q: asyncio.Queue[aiomqtt.Message] = client._queue
        disconnected = client._disconnected
        cfg = self.cfg
        while not stop.is_set():
            # drain what is already here without creating a task per message
            got = False
            while not q.empty():
                m = q.get_nowait()
                got = True
                await self._accept(m)
            if disconnected.done():
                exc = disconnected.exception()
                raise exc if isinstance(exc, aiomqtt.MqttError) else aiomqtt.MqttError(f"disconnected: {exc}")
            b = self._batch
            if b.pending:
                age = time.monotonic() - b.started
                if age >= cfg.batch_max_age_s or not got:
                    wait = 0.0 if age >= cfg.batch_max_age_s else min(cfg.idle_flush_s, cfg.batch_max_age_s - age)
                else:
                    continue
                if wait <= 0:
                    await self._flush()
                    continue
            else:
                wait = 1.0
            getter: asyncio.Future[Any] = asyncio.ensure_future(q.get())
            waiting: set[asyncio.Future[Any]] = {getter, disconnected, stopper}
            done, _ = await asyncio.wait(waiting, timeout=wait,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await self._accept(getter.result())
            else:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
                if getter.done() and not getter.cancelled():  # it got a message just as we gave up waiting
                    await self._accept(getter.result())
                elif not done and self._batch.pending:  # idle: write what we have
                    await self._flush()

    async def _accept(self, m: aiomqtt.Message) -> None:
        payload = m.payload if isinstance(m.payload, bytes | bytearray) else str(m.payload).encode()
        p = Pending(m.topic.value, bytes(payload), time.time(), self._gen, m.mid, m.qos)
        dec = self.decode(p.topic, p.payload)
        if dec.n_readings and self.cfg.resend_cache:
            # an identical message seen recently (a gateway re-send, a broker redelivery): its readings are
            # stored or about to be; skipping them spares the database a batch full of conflicts
            key = hashlib.blake2b(p.topic.encode() + b"\x00" + p.payload, digest_size=16).digest()
            seen = self._seen
            if key in seen:
                self.stats.resent_skipped += dec.n_readings
                M.DUPLICATES.inc(dec.n_readings)
                dec.clear_readings()
            else:
                seen[key] = None
                if len(seen) > self.cfg.resend_cache:
                    del seen[next(iter(seen))]
        b = self._batch
        n_rows, n_readings, n_dead = len(b.rows), b.n_readings, len(b.dead)
        try:
            b.add(p, dec)
        except Exception as exc:  # a bug must not stop the stream: keep the raw message as a dead letter
            log.exception("could not batch a message; dead-lettering it", extra={"topic": p.topic})
            b.pending[:] = [q for q in b.pending if q is not p]
            del b.rows[n_rows:]
            b.n_readings = n_readings
            del b.dead[n_dead:]
            failed = Decoded(fmt=dec.fmt)
            failed.reject("decoder_error", f"{type(exc).__name__}: {exc}"[:500])
            b.add(p, failed)
        self._buffered += 1
        M.QUEUE_DEPTH.set(self._buffered)
        if b.n_readings >= self.cfg.batch_max_readings or len(b.pending) >= self.cfg.batch_max_messages:
            await self._flush()

    def decode(self, topic: str, payload: bytes) -> Decoded:
        dec = decode_message(topic, payload, self.validator, self.prefix, self.cfg.tts_topics,
                             self.cfg.tb_gateway_mount)
        if dec.unmapped:
            self._dead_letter_unmapped(dec)
        return dec

    def _dead_letter_unmapped(self, dec: Decoded) -> None:
        """Dead-letter each unmapped key of ``dec`` at most once per ``unmapped_dead_letter_s`` and device."""
        now = time.monotonic()
        last = self._unmapped_dead
        for (dev, key), (n, sample) in dec.unmapped.items():
            t = last.get((dev, key))
            if t is not None and now - t < self.cfg.unmapped_dead_letter_s:
                continue
            last[(dev, key)] = now
            prof = self.validator.profile_id(dev)
            dec.reject("unmapped_key", f"{key} = {sample} ({n}x): profile {prof} neither maps nor ignores this key;"
                       " counted in device_unmapped_keys, dead-lettered at most once per"
                       f" {self.cfg.unmapped_dead_letter_s:g} s", dev)
        if len(last) > 100_000:
            last.clear()

    async def _flush(self) -> None:
        b = self._batch
        if not b.pending:
            return
        self._batch = Batch()
        await self._queue.put(b)  # blocks when max_pending_batches are waiting: back-pressure

    async def _drain(self, writer: asyncio.Task[None]) -> None:
        await self._flush()
        await self._queue.put(None)
        await writer

    # ------------------------------------------------------------------------------------ database side

    async def _writer_loop(self) -> None:
        while True:
            b = await self._queue.get()
            if b is None:
                return
            await self._write_with_retry(b)
            self._ack(b)

    async def _write_with_retry(self, b: Batch) -> None:
        delay = 0.1
        while True:
            t0 = time.perf_counter()
            try:
                inserted = await asyncio.to_thread(self.writer.write, b)
            except (psycopg.OperationalError, psycopg.errors.DeadlockDetected,
                    psycopg.errors.SerializationFailure) as exc:
                # database down / restarting / connection lost: keep the batch and retry, never drop it
                self.stats.db_retries += 1
                M.DB_RETRIES.inc()
                log.warning("batch write failed; retrying", extra={"error": str(exc)[:300], "retry_s": delay,
                                                                   "messages": len(b), "readings": b.n_readings})
                await asyncio.to_thread(self.writer.close)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.db_retry_max_s)
                continue
            except psycopg.Error as exc:
                log.error("batch refused by the database; writing its messages one by one",
                          extra={"error": str(exc)[:300], "messages": len(b)})
                await asyncio.to_thread(self.writer.close)
                await self._write_one_by_one(b)
                return
            except Exception:  # a bug: say so loudly, keep the batch, try again (never drop, never ack)
                self.stats.db_retries += 1
                log.exception("batch write crashed; retrying", extra={"messages": len(b), "retry_s": delay})
                await asyncio.to_thread(self.writer.close)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.db_retry_max_s)
                continue
            self._account(b, inserted, time.perf_counter() - t0)
            return

    async def _write_one_by_one(self, b: Batch) -> None:
        for p in b.pending:
            single = Batch()
            single.add(p, self.decode(p.topic, p.payload))
            try:
                await self._write_with_retry_simple(single)
            except psycopg.Error as exc:
                log.error("message refused by the database; dead-lettered", extra={"topic": p.topic,
                                                                                  "error": str(exc)[:300]})
                self._seen.pop(hashlib.blake2b(p.topic.encode() + b"\x00" + p.payload, digest_size=16).digest(),
                               None)
                dead = Batch()
                d = Decoded()
                d.reject("storage_error", f"database refused the message: {exc}"[:500])
                dead.add(p, d)
                await self._write_with_retry_simple(dead)
                single = dead
            self._account(single, 0, 0.0)

    async def _write_with_retry_simple(self, b: Batch) -> None:
        delay = 0.1
        while True:
            try:
                await asyncio.to_thread(self.writer.write, b)
                return
            except psycopg.OperationalError:
                await asyncio.to_thread(self.writer.close)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.db_retry_max_s)

    def _account(self, b: Batch, inserted: int, seconds: float) -> None:
        s = self.stats
        s.batches += 1
        s.messages += len(b)
        s.readings += b.n_readings
        s.stored += inserted
        s.rejects += len(b.dead)
        for fmt, n in b.formats.items():
            M.MESSAGES.labels(fmt).inc(n)
        for reason, n in b.reasons.items():
            M.REJECTS.labels(reason).inc(n)
        M.READINGS.inc(b.n_readings)
        M.READINGS_NEW.inc(inserted)
        M.DUPLICATES.inc(max(0, b.n_readings - inserted))
        if seconds:
            M.BATCH_SECONDS.observe(seconds)
            M.BATCH_READINGS.observe(b.n_readings)

    def _ack(self, b: Batch) -> None:
        client = self._client
        paho = client._client if client is not None else None
        for p in b.pending:
            if p.qos == 0:
                continue
            if paho is not None and p.gen == self._gen and client is not None and not client._disconnected.done():
                paho.ack(p.mid, p.qos)
                self.stats.acked += 1
            else:
                self.stats.not_acked_stale += 1
        self._buffered -= len(b)
        M.QUEUE_DEPTH.set(self._buffered)


async def run_ingest(cfg: IngestConfig, stop: asyncio.Event) -> IngestService:
    svc = IngestService(cfg)
    await svc.run(stop)
    return svc


def instance_client_id(instance: str | None = None) -> str:
    """Client id for one of several ingest processes on a host (``--instance``), or the host default."""
    base = default_client_id()
    return f"{base}-{instance}" if instance else base


