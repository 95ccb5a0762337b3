"""The one place that touches paho-mqtt's private parts, to make receiving a PUBLISH cheap.

Two patches, each installed by :func:`install` (idempotent) and each a no-op when paho's layout is not the
one it was written against (paho then simply stays slower):

1. ``Properties``: cheap to create (it is created for every PUBLISH received), below.
2. Buffered socket reads (:func:`install_buffered_reads`): paho reads every packet with three or more
   ``recv`` system calls (one byte of command, one byte per remaining-length byte, then the body), and
   its ``loop_read`` reads one packet per readiness callback, so each message also costs one turn of
   the asyncio loop (epoll, the reader callback, waking the consumer). A plain TCP socket is replaced by
   :class:`BufferedSocket`, which takes up to :data:`READ_CHUNK_BYTES` from the kernel in one call and
   serves paho's small reads from memory, and reports what it holds through ``pending()`` -- the hook
   that paho's own ``_loop`` and aiomqtt's reader callback already use for TLS sockets (which buffer
   decrypted records the same way), so both keep calling ``loop_read`` until the buffer is empty.

Patch 1 in detail: make paho-mqtt's MQTT v5 ``Properties`` cheap to create.

paho-mqtt 2.x builds three constant lookup tables (property types, names and identifiers: a list and
two dicts of 27 entries, 40 list lookups) in ``Properties.__init__``, and ``clear()`` (called by every
``unpack``) probes every one of the 27 names with ``hasattr``. For a PUBLISH without properties that is
about 8 µs of the ingest event loop's CPU per message, ~0.3 CPU-s per replayed county-day and more with
one reading per message (measured with ``python -m timeit``; py-spy showed ``Properties.__init__`` as
the largest single frame of the MQTT side).

:func:`install` builds the tables once, moves them to the class (paho only ever reads them) and
replaces ``__init__``, ``clear`` and ``isEmpty`` with versions that touch only the instance's own
attributes, which are exactly ``packetType`` plus the properties that were set. Every other method
(``pack``, ``unpack``, ``json``, ``__setattr__`` with its checks) is paho's own. It patches nothing when
paho's layout is not the one this was written against (then paho simply stays slower);
``tests/test_ingest_paho_speedups.py`` compares packed bytes, ``json()`` and errors with the
unpatched class.
"""

from __future__ import annotations

import socket
from typing import Any

_TABLES = ("types", "names", "properties")

#: bytes taken from the kernel in one ``recv`` (a few hundred PUBLISH packets of a typical uplink)
READ_CHUNK_BYTES = 64 * 1024


def install() -> bool:
    """Install both patches (idempotent); returns whether both are in place."""
    props = install_fast_properties()
    reads = install_buffered_reads()
    return props and reads


class BufferedSocket(socket.socket):
    """A stream socket whose ``recv`` reads up to :data:`READ_CHUNK_BYTES` at once and serves smaller reads
    from memory; ``pending()`` is the number of bytes held (as ``ssl.SSLSocket.pending``).

    Semantics of ``recv(n)`` are a plain socket's: at most ``n`` bytes, ``b""`` at end of stream,
    ``BlockingIOError`` (non-blocking) or a timeout only when nothing is held and the kernel has nothing.
    Reads with ``flags`` bypass the buffer (and are refused while it holds data, which would reorder bytes).
    """

    __slots__ = ("_yc_buf", "_yc_pos")

    @classmethod
    def adopt(cls, sock: socket.socket) -> BufferedSocket:
        """Take over ``sock``'s file descriptor (``sock`` is detached, the connection is not touched)."""
        timeout = sock.gettimeout()
        b = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        b.settimeout(timeout)
        return b

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._yc_buf: bytes | None = None
        self._yc_pos = 0

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        buf = self._yc_buf
        if flags:
            if buf is not None:
                raise ValueError("recv with flags while buffered bytes are pending")
            return super().recv(bufsize, flags)
        if buf is None:
            data = super().recv(READ_CHUNK_BYTES)
            if len(data) <= bufsize:
                return data
            buf, pos = data, 0
        else:
            pos = self._yc_pos
        end = pos + bufsize
        if end >= len(buf):
            self._yc_buf = None
            return buf[pos:] if pos else buf
        self._yc_buf, self._yc_pos = buf, end
        return buf[pos:end]

    def pending(self) -> int:
        buf = self._yc_buf
        return 0 if buf is None else len(buf) - self._yc_pos


def install_buffered_reads() -> bool:
    """Make paho's ``Client._create_socket`` hand out :class:`BufferedSocket` for plain TCP and Unix
    connections (TLS and websocket connections are left as paho makes them)."""
    from paho.mqtt.client import Client

    current = getattr(Client, "_create_socket", None)
    if current is None:
        return False
    if getattr(current, "_yuncang_buffered", False):
        return True

    def _create_socket(self: Any) -> Any:
        sock = current(self)
        return BufferedSocket.adopt(sock) if type(sock) is socket.socket else sock

    _create_socket._yuncang_buffered = True  # type: ignore[attr-defined]
    Client._create_socket = _create_socket  # type: ignore[method-assign]
    return True


def install_fast_properties() -> bool:
    """Patch ``paho.mqtt.properties.Properties`` in place (idempotent); returns whether it is patched."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if getattr(Properties, "_yuncang_fast", False):
        return True
    probe = Properties(PacketTypes.PUBLISH)
    if set(vars(probe)) != {"packetType", *_TABLES}:
        return False  # not the layout this was written against
    for name in _TABLES:
        setattr(Properties, name, vars(probe)[name])

    def __init__(self: Any, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)

    def clear(self: Any) -> None:
        d = vars(self)
        for k in [k for k in d if k != "packetType"]:
            del d[k]

    def isEmpty(self: Any) -> bool:
        return not any(k != "packetType" for k in vars(self))

    Properties.__init__ = __init__  # type: ignore[method-assign]
    Properties.clear = clear  # type: ignore[method-assign]
    Properties.isEmpty = isEmpty  # type: ignore[method-assign]
    Properties._yuncang_fast = True  # type: ignore[attr-defined]
    return True
