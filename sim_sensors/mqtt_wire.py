"""A minimal MQTT 3.1.1 QoS 1 publisher for replaying recorded gateway traffic at full speed.

Written from the OASIS MQTT 3.1.1 standard (2014), sections 2 (fixed header, Remaining Length
encoding), 3.1 CONNECT, 3.2 CONNACK, 3.3 PUBLISH, 3.4 PUBACK and 3.14 DISCONNECT — not from any client
library, and not from ingest.

Why it exists: a replayed day is 37,000 messages that 1,546 gateways would send from their own CPUs.
Published through aiomqtt/paho, the simulated gateways cost ~70 µs of CPU per message on the same
2 cores as the system under test (~2.7 CPU-s per replayed day). Here every PUBLISH packet, packet
identifier included, is encoded *before* the clock starts (:meth:`PublishConnection.packet`), so
publishing costs one buffered socket write per message and reading PUBACKs costs a few bytes each.

Delivery is QoS 1: a message counts as published when the broker's PUBACK for its packet identifier
arrived. Packet identifiers run 1..65535 per connection and are reused only after their PUBACK (the
window of un-acknowledged packets is capped below 65,535).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Sequence

#: packet type nibbles (MQTT 3.1.1 table 2.1), shifted into the fixed header's first byte
CONNECT, CONNACK, PUBLISH, PUBACK, DISCONNECT = 0x10, 0x20, 0x30, 0x40, 0xE0
MAX_REMAINING_LENGTH = 268_435_455   #: 4 bytes of Remaining Length (section 2.2.3)
MAX_INFLIGHT = 65_535                #: packet identifiers are 16-bit and non-zero (section 2.3.1)


class MqttProtocolError(RuntimeError):
    """The broker sent something a QoS 1 publisher does not expect, or refused the connection."""


def remaining_length(n: int) -> bytes:
    """The variable-length Remaining Length field (section 2.2.3): 7 bits per byte, low bits first,
    the high bit set on every byte but the last."""
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {n} outside 0..{MAX_REMAINING_LENGTH}")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def decode_remaining_length(buf: bytes | bytearray, start: int = 1) -> tuple[int, int] | None:
    """(value, index after the field) of the Remaining Length at ``buf[start:]``, or None when the
    field is still incomplete. Raises MqttProtocolError on a field longer than 4 bytes."""
    value, shift = 0, 0
    for i in range(start, min(len(buf), start + 4)):
        value |= (buf[i] & 0x7F) << shift
        if not buf[i] & 0x80:
            return value, i + 1
        shift += 7
    if len(buf) >= start + 4:
        raise MqttProtocolError("malformed Remaining Length")
    return None


def utf8_string(s: str) -> bytes:
    """A UTF-8 encoded string with its 2-byte big-endian length prefix (section 1.5.3)."""
    b = s.encode("utf-8")
    if len(b) > 65_535:
        raise ValueError("string longer than 65,535 bytes")
    return struct.pack("!H", len(b)) + b


def encode_connect(client_id: str, *, username: str | None = None, password: str | None = None,
                   keepalive_s: int = 60, clean_session: bool = True) -> bytes:
    """CONNECT (section 3.1): protocol name "MQTT", level 4, flags, keep alive (s), then the payload
    fields client id, user name, password in that order."""
    flags = 0x02 if clean_session else 0x00
    payload = utf8_string(client_id)
    if username is not None:
        flags |= 0x80
        payload += utf8_string(username)
        if password is not None:
            flags |= 0x40
            payload += utf8_string(password)
    variable = utf8_string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive_s)
    body = variable + payload
    return bytes([CONNECT]) + remaining_length(len(body)) + body


def encode_publish(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH with QoS 1, no DUP, no RETAIN (section 3.3): topic name, packet identifier, payload."""
    if not 1 <= packet_id <= 65_535:
        raise ValueError("packet identifier must be 1..65535")
    head = utf8_string(topic) + struct.pack("!H", packet_id)
    return bytes([PUBLISH | 0x02]) + remaining_length(len(head) + len(payload)) + head + payload


class PublishConnection:
    """One MQTT 3.1.1 connection that publishes pre-encoded QoS 1 packets and counts PUBACKs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self._next_id = 0
        self.sent = 0
        self.acked = 0
        self._outstanding: set[int] = set()
        self._progress = asyncio.Event()
        self._error: BaseException | None = None
        self._acks: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int, client_id: str, *, username: str | None = None,
                   password: str | None = None, timeout_s: float = 15.0) -> PublishConnection:
        """Connect and wait for a CONNACK that accepts the session (return code 0, section 3.2.2.3)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        writer.write(encode_connect(client_id, username=username, password=password))
        head = await asyncio.wait_for(reader.readexactly(4), timeout_s)
        if head[0] != CONNACK or head[1] != 2:
            writer.close()
            raise MqttProtocolError(f"expected CONNACK, got {head.hex()}")
        if head[3] != 0:
            writer.close()
            raise MqttProtocolError(f"connection refused, CONNACK return code {head[3]}")
        conn = cls(reader, writer)
        conn._acks = asyncio.create_task(conn._read_acks())
        return conn

    def packet(self, topic: str, payload: bytes) -> bytes:
        """Encode the next PUBLISH of this connection (packet identifiers in sending order). Packets
        must be sent in the order they were made."""
        self._next_id = self._next_id % 65_535 + 1
        return encode_publish(topic, payload, self._next_id)

    async def _read_acks(self) -> None:
        buf = bytearray()
        try:
            while True:
                chunk = await self.reader.read(65_536)
                if not chunk:
                    raise MqttProtocolError("broker closed the connection")
                buf += chunk
                i, n = 0, len(buf)
                while n - i >= 2:
                    if buf[i] != PUBACK or buf[i + 1] != 2:
                        raise MqttProtocolError(f"unexpected packet {bytes(buf[i:i + 4]).hex()}")
                    if n - i < 4:
                        break
                    pid = (buf[i + 2] << 8) | buf[i + 3]
                    try:
                        self._outstanding.remove(pid)
                    except KeyError:
                        raise MqttProtocolError(f"PUBACK for packet id {pid}, which is not in flight") from None
                    self.acked += 1
                    i += 4
                del buf[:i]
                self._progress.set()
        except BaseException as exc:
            self._error = exc
            self._progress.set()
            raise

    def _check(self) -> None:
        if self._error is not None:
            raise MqttProtocolError(f"publisher connection failed: {self._error}") from self._error

    async def send(self, packets: Sequence[bytes], *, inflight: int = 200,
                   may_send: Callable[[], bool] | None = None, poll_s: float = 0.005) -> None:
        """Send ``packets`` (from :meth:`packet`, in order) with at most ``inflight`` un-acknowledged,
        and, when given, only while ``may_send()`` is true (it is polled every ``poll_s``); returns when
        every packet is acknowledged."""
        inflight = max(1, min(inflight, MAX_INFLIGHT - 1))
        w = self.writer
        for pkt in packets:
            while self.sent - self.acked >= inflight:
                self._check()
                self._progress.clear()
                await self._progress.wait()
            while may_send is not None and not may_send():
                self._check()
                await asyncio.sleep(poll_s)
            self._check()
            # packets were made by packet() in this order: the n-th carries identifier n % 65535 + 1
            self._outstanding.add(self.sent % 65_535 + 1)
            w.write(pkt)
            self.sent += 1
            if w.transport.get_write_buffer_size() > 1 << 20:
                await w.drain()
        await w.drain()
        while self.acked < self.sent:
            self._check()
            self._progress.clear()
            await self._progress.wait()

    async def close(self) -> None:
        """DISCONNECT (section 3.14) and close the socket."""
        if self._acks is not None:
            self._acks.cancel()
        try:
            self.writer.write(bytes([DISCONNECT, 0]))
            await self.writer.drain()
        except OSError:
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass

