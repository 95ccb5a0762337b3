"""ingest.paho_speedups makes paho's Properties cheaper without changing what it does: the same
script run against unpatched and patched paho (separate interpreters) must print the same bytes,
JSON and errors for every property type and packet type used."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SCRIPT = r'''
import json, sys
from paho.mqtt.packettypes import PacketTypes as P
from paho.mqtt.properties import Properties
if sys.argv[1] == "patched":
    from ingest import paho_speedups
    assert paho_speedups.install() and paho_speedups.install()  # idempotent

CASES = [
    (P.PUBLISH, {}),
    (P.PUBLISH, {"PayloadFormatIndicator": 1, "MessageExpiryInterval": 3600, "ContentType": "application/json",
                 "ResponseTopic": "r/t", "CorrelationData": b"\x00\x01", "TopicAlias": 7,
                 "UserProperty": [("a", "1"), ("b", "2")]}),
    (P.CONNECT, {"SessionExpiryInterval": 604800, "ReceiveMaximum": 4000, "MaximumPacketSize": 1 << 20,
                 "TopicAliasMaximum": 10, "RequestResponseInformation": 1, "RequestProblemInformation": 0,
                 "AuthenticationMethod": "m", "AuthenticationData": b"d"}),
    (P.CONNACK, {"ReceiveMaximum": 20, "MaximumQoS": 1, "RetainAvailable": 1, "AssignedClientIdentifier": "x",
                 "ReasonString": "ok", "ServerKeepAlive": 30, "SharedSubscriptionAvailable": 1,
                 "WildcardSubscriptionAvailable": 1, "SubscriptionIdentifierAvailable": 0}),
    (P.SUBSCRIBE, {"SubscriptionIdentifier": 5, "UserProperty": ("k", "v")}),
    (P.DISCONNECT, {"SessionExpiryInterval": 0, "ReasonString": "bye", "ServerReference": "s"}),
    (P.PUBACK, {"ReasonString": "fine"}),
    (P.WILLMESSAGE, {"WillDelayInterval": 5, "PayloadFormatIndicator": 0}),
    # refused: property not allowed for the packet type, out-of-range value, unknown name
    (P.PUBLISH, {"SessionExpiryInterval": 1}),
    (P.CONNECT, {"ReceiveMaximum": 0}),
    (P.PUBLISH, {"NoSuchProperty": 1}),
]
out = []
for pt, props in CASES:
    p = Properties(pt)
    rec = {"empty_before": p.isEmpty()}
    try:
        for k, v in props.items():
            setattr(p, k, v)
    except Exception as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"
    packed = p.pack()
    rec.update(packed=packed.hex(), json={k: (v.hex() if isinstance(v, bytes) else v) for k, v in p.json().items()},
               str=str(p), empty=p.isEmpty())
    q = Properties(pt)
    q.unpack(packed)
    rec["round_trip"] = q.pack().hex()
    q.clear()
    rec["cleared"] = [q.isEmpty(), q.pack().hex(), str(q)]
    q.unpack(packed)  # unpack into a used object clears it first
    rec["reused"] = q.pack().hex()
    out.append(rec)
print(json.dumps(out, sort_keys=True, default=list))
'''


def _run(mode: str) -> list[dict[str, object]]:
    r = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def test_patched_properties_behave_exactly_like_pahos_own() -> None:
    plain, patched = _run("plain"), _run("patched")
    assert patched == plain
    assert any("error" in r for r in plain)               # the refusals were exercised
    assert any(len(str(r["packed"])) > 40 for r in plain)  # and real property blocks


def test_patched_constructor_shares_the_tables() -> None:
    # what makes it cheaper (the saving itself is measured by bench ingest, not here): an instance
    # holds only its packet type, the lookup tables exist once
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from ingest import paho_speedups

    assert paho_speedups.install()
    p = Properties(PacketTypes.PUBLISH)
    assert set(vars(p)) == {"packetType"}
    assert Properties(PacketTypes.CONNECT).names is p.names


# ------------------------------------------------------------------------------ buffered socket reads

def _pair() -> tuple[Any, Any]:
    import socket

    from ingest.paho_speedups import BufferedSocket

    a, b = socket.socketpair()
    return a, BufferedSocket.adopt(b)


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=40),
       reads=st.lists(st.integers(min_value=1, max_value=70_000), min_size=1, max_size=60))
def test_buffered_socket_returns_the_stream_unchanged(chunks: list[bytes], reads: list[int]) -> None:
    # property: whatever the sender's chunks and the reader's sizes, recv(n) gives at most n bytes, the bytes
    # come in order, nothing is lost or repeated, pending() is what is held, and end of stream reads b""
    a, b = _pair()
    try:
        sent = b"".join(chunks)
        for c in chunks:
            a.sendall(c)
        a.shutdown(1)  # end of stream after the data
        got = bytearray()
        k = 0
        while True:
            n = reads[k % len(reads)]
            k += 1
            held = b.pending()
            data = b.recv(n)
            assert len(data) <= n
            assert held == 0 or len(data) == min(n, held)  # held bytes are served first, from memory
            if not data:
                break
            got += data
            assert b.pending() >= 0
        assert bytes(got) == sent
        assert b.pending() == 0 and b.recv(10) == b""
    finally:
        a.close()
        b.close()


def test_buffered_socket_nonblocking_and_flags() -> None:
    a, b = _pair()
    try:
        b.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing held, nothing in the kernel: as a plain socket
            b.recv(1)
        a.sendall(b"abcdef")
        assert b.recv(2) == b"ab" and b.pending() == 4
        with pytest.raises(ValueError):  # a flagged read would skip the held bytes
            b.recv(1, socket.MSG_PEEK)
        assert b.recv(100) == b"cdef" and b.pending() == 0
        with pytest.raises(BlockingIOError):
            b.recv(1)
        a.sendall(b"xyz")
        assert b.recv(1, socket.MSG_PEEK) == b"x"  # no bytes held: flags go to the kernel
        assert b.recv(3) == b"xyz"
    finally:
        a.close()
        b.close()


def test_paho_hands_out_buffered_sockets_and_aiomqtt_receives_every_message(mqtt_url: str, prefix: str) -> None:
    # through the real broker: messages of every size, many packets per kernel read and packets split across
    # reads (bodies up to 150 kB cross the 64 KiB chunk), all arrive exactly once, in order, intact
    import asyncio

    import aiomqtt

    from ingest import paho_speedups
    from ingest.paho_speedups import BufferedSocket
    from ingest.service import MqttTarget

    assert paho_speedups.install() and paho_speedups.install()
    t = MqttTarget.parse(mqtt_url)
    sizes = [0, 1, 2, 126, 127, 128, 16_383, 16_384, 65_535, 65_536, 150_000] + [37 * k % 900 for k in range(1500)]
    payloads = [(str(i).encode() + b":" + bytes([i % 251]) * n) for i, n in enumerate(sizes)]

    async def go() -> list[bytes]:
        kw = {"hostname": t.host, "port": t.port, "username": t.username, "password": t.password}
        async with aiomqtt.Client(**kw) as sub:  # type: ignore[arg-type]
            assert isinstance(sub._client._sock, BufferedSocket)
            await sub.subscribe(f"{prefix}buf", qos=1)
            async with aiomqtt.Client(**kw) as pub:  # type: ignore[arg-type]
                for p in payloads:
                    await pub.publish(f"{prefix}buf", p, qos=1)
            got: list[bytes] = []
            async with asyncio.timeout(60):
                async for m in sub.messages:
                    got.append(bytes(m.payload))  # type: ignore[arg-type]
                    if len(got) == len(payloads):
                        break
            return got

    assert asyncio.run(go()) == payloads
