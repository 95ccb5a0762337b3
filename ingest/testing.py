"""Helpers for tests and benchmarks of ingest: wire-format payload builders and a flow-controlled publisher.

Payloads follow docs/wire-format.md. Nothing here is used by the service itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from ingest.service import MqttTarget

Sample = Mapping[str, Any]


def native_topic(orchard_id: str, device_id: str, prefix: str = "") -> str:
    return f"{prefix}orchards/{orchard_id}/{device_id}/up"


def native_payload(device_id: str, samples: Iterable[Sample], seq: int = 0, sent_at: int | None = None) -> bytes:
    samples = list(samples)
    if sent_at is None:
        sent_at = int(max((s.get("t", 0) for s in samples), default=0))
    return json.dumps({"v": 1, "gw": device_id, "seq": seq, "sent_at": sent_at, "samples": samples},
                      separators=(",", ":")).encode()


def chirpstack_topic(dev_eui: str, application_id: str = "1", prefix: str = "") -> str:
    return f"{prefix}application/{application_id}/device/{dev_eui}/event/up"


def chirpstack_payload(device_id: str, dev_eui: str, when: datetime, obj: Mapping[str, Any] | None,
                       rssi: int = -100, f_cnt: int = 0) -> bytes:
    return json.dumps({
        "deduplicationId": f"00000000-0000-0000-0000-{f_cnt:012d}",
        "time": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "deviceInfo": {"tenantId": "t", "tenantName": "yuncang", "applicationId": "1", "applicationName": "orchards",
                       "deviceProfileId": "p", "deviceProfileName": "YC-GW1", "deviceName": device_id,
                       "devEui": dev_eui, "tags": {}},
        "devAddr": "01020304", "adr": True, "dr": 5, "fCnt": f_cnt, "fPort": 2, "confirmed": False,
        "data": "", "object": obj,
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": f_cnt, "rssi": rssi, "snr": 7.5}],
        "txInfo": {"frequency": 470300000},
    }).encode()


def thingsboard_topic(prefix: str = "") -> str:
    return f"{prefix}v1/gateway/telemetry"


def thingsboard_payload(by_device: Mapping[str, Iterable[tuple[int, Mapping[str, Any]]]]) -> bytes:
    """``{device: [(ts_ms, values), ...]}`` as ThingsBoard gateway telemetry."""
    return json.dumps({d: [{"ts": ts, "values": dict(v)} for ts, v in items] for d, items in by_device.items()}
                      ).encode()


async def publish_all(mqtt_url: str, messages: Iterable[tuple[str, bytes]], *, connections: int = 1,
                      inflight: int = 200, client_prefix: str = "yc-pub") -> int:
    """Publish QoS 1 messages over ``connections`` clients, at most ``inflight`` unacknowledged per client.

    Every publish waits for its PUBACK (the broker has taken the message), so nothing is lost on the
    way in; returns the number of messages published.
    """
    t = MqttTarget.parse(mqtt_url)
    it = iter(messages)
    count = 0

    async def worker(k: int) -> None:
        nonlocal count
        async with aiomqtt.Client(t.host, t.port, username=t.username, password=t.password,
                                  identifier=f"{client_prefix}-{k}", max_inflight_messages=inflight,
                                  timeout=60) as client:
            client.pending_calls_threshold = inflight + 1
            sem = asyncio.Semaphore(inflight)
            tasks: set[asyncio.Task[None]] = set()

            async def one(topic: str, payload: bytes) -> None:
                try:
                    await client.publish(topic, payload, qos=1)
                finally:
                    sem.release()

            while True:
                await sem.acquire()
                nxt = next(it, None)
                if nxt is None:
                    sem.release()
                    break
                task = asyncio.create_task(one(*nxt))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                count += 1
            if tasks:
                await asyncio.gather(*tasks)

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return count


async def publish_reliably(mqtt_url: str, messages: Iterable[tuple[str, bytes]], *, chunk: int = 50,
                           pause_s: float = 0.0, client_id: str = "yc-pub-reliable",
                           reconnect_timeout_s: float = 60.0) -> int:
    """Publish QoS 1 messages, surviving broker restarts: a chunk whose PUBACKs did not all arrive is
    re-published in full after reconnecting (duplicates are harmless to ingest). Returns publishes made."""
    t = MqttTarget.parse(mqtt_url)
    msgs = list(messages)
    sent = 0
    i = 0
    deadline = None
    while i < len(msgs):
        try:
            async with aiomqtt.Client(t.host, t.port, username=t.username, password=t.password,
                                      identifier=client_id, timeout=10) as client:
                client.pending_calls_threshold = chunk + 1
                deadline = None
                while i < len(msgs):
                    part = msgs[i:i + chunk]
                    await asyncio.gather(*(client.publish(tp, pl, qos=1) for tp, pl in part))
                    sent += len(part)
                    i += len(part)
                    if pause_s:
                        await asyncio.sleep(pause_s)
        except aiomqtt.MqttError:
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + reconnect_timeout_s
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)
    return sent
