"""The replay publisher's own MQTT 3.1.1 encoding (sim_sensors.mqtt_wire): the standard's examples, a
round-trip property, and delivery of every message, byte for byte, through the real broker."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim_sensors.mqtt_wire import (
    MqttProtocolError,
    PublishConnection,
    decode_remaining_length,
    encode_connect,
    encode_publish,
    remaining_length,
)
from sim_sensors.publisher import parse_mqtt_url
from sim_sensors.testing import collector, wait_for


def test_remaining_length_matches_the_standards_table() -> None:
    # MQTT 3.1.1 table 2.4: the boundaries of 1..4-byte Remaining Length fields
    assert remaining_length(0) == b"\x00"
    assert remaining_length(127) == b"\x7f"
    assert remaining_length(128) == b"\x80\x01"
    assert remaining_length(16_383) == b"\xff\x7f"
    assert remaining_length(16_384) == b"\x80\x80\x01"
    assert remaining_length(2_097_152) == b"\x80\x80\x80\x01"
    assert remaining_length(268_435_455) == b"\xff\xff\xff\x7f"
    with pytest.raises(ValueError):
        remaining_length(268_435_456)
    with pytest.raises(MqttProtocolError):
        decode_remaining_length(b"\x30\xff\xff\xff\xff\x01")


@given(st.integers(0, 268_435_455))
def test_remaining_length_round_trips(n: int) -> None:
    enc = remaining_length(n)
    assert len(enc) == 1 + (n > 127) + (n > 16_383) + (n > 2_097_151)
    assert decode_remaining_length(b"\x30" + enc) == (n, 1 + len(enc))
    assert decode_remaining_length(b"\x30" + enc[:-1]) is None  # incomplete field


@given(st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s), st.binary(max_size=3000),
       st.integers(1, 65_535))
def test_publish_packet_layout(topic: str, payload: bytes, pid: int) -> None:
    pkt = encode_publish(topic, payload, pid)
    assert pkt[0] == 0x32                            # PUBLISH, QoS 1, no DUP, no RETAIN
    rl, i = decode_remaining_length(pkt)             # type: ignore[misc]
    assert rl == len(pkt) - i
    tlen = int.from_bytes(pkt[i:i + 2], "big")
    assert pkt[i + 2:i + 2 + tlen].decode("utf-8") == topic
    assert int.from_bytes(pkt[i + 2 + tlen:i + 4 + tlen], "big") == pid
    assert pkt[i + 4 + tlen:] == payload


def test_connect_packet_matches_the_standard() -> None:
    pkt = encode_connect("gw-1", username="u", password="p", keepalive_s=60)
    # fixed header (remaining length 10 + 12 = 22), "MQTT", level 4, flags (user name, password,
    # clean session), keep alive 60 s
    assert pkt[:12] == b"\x10\x16\x00\x04MQTT\x04\xc2\x00\x3c"
    assert pkt[12:] == b"\x00\x04gw-1\x00\x01u\x00\x01p"
    assert encode_connect("x")[9] == 0x02            # no credentials: clean session only


def test_every_message_arrives_once_through_the_real_broker(mqtt_url: str, prefix: str) -> None:
    addr = parse_mqtt_url(mqtt_url)
    topic = f"{prefix}wire/{secrets.token_hex(3)}"
    # more messages than packet identifiers, so identifiers wrap around while in flight
    sent = [(f"{topic}/{k % 7}", f'{{"k":{k},"pad":"{"x" * (k % 300)}"}}'.encode()) for k in range(70_000)]

    async def main() -> list[tuple[str, bytes]]:
        async with collector(mqtt_url, f"{topic}/#") as got:
            conn = await PublishConnection.open(addr.host, addr.port, f"yc-test-wire-{secrets.token_hex(3)}",
                                                username=addr.username, password=addr.password)
            try:
                packets = [conn.packet(t, p) for t, p in sent]
                # stay at most 500 ahead of the subscriber: a broker queue (Mosquitto's
                # max_queued_messages) must never overflow, or this would test the broker's drops
                await conn.send(packets, inflight=500, may_send=lambda: conn.sent - len(got) < 500)
                assert conn.acked == conn.sent == len(sent)
            finally:
                await conn.close()
            await wait_for(got, len(sent), timeout=120)
            return list(got)

    got = asyncio.run(main())
    assert len(got) == len(sent)
    assert sorted(got) == sorted(sent)


def test_a_refused_connection_says_so() -> None:
    """A CONNACK with a non-zero return code (3.2.2.3; 5 = not authorized) is an error naming the code.
    (The machine's Mosquitto accepts any password, so a loopback peer plays the refusing broker.)"""

    async def main() -> str:
        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1024)
            writer.write(b"\x20\x02\x00\x05")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await PublishConnection.open("127.0.0.1", port, "yc-test", username="u", password="bad")
        except MqttProtocolError as exc:
            return str(exc)
        finally:
            server.close()
        return ""

    assert asyncio.run(main()) == "connection refused, CONNACK return code 5"
