"""The ingest service as a ``yuncang demo`` component (after the broker and DB are up, before consumers)."""

from __future__ import annotations

import asyncio
import hashlib

from ingest.service import IngestConfig, IngestService, instance_client_id
from yuncang.runtime import Runtime
from yuncang.settings import ingest_profile_options

ORDER = 20


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    # one persistent session per deployment: two demos on one host (other data dirs or topic prefixes)
    # must not take over each other's session on a shared broker
    where = f"{rt.settings.data_dir.resolve()}|{rt.settings.mqtt_topic_prefix}|{rt.database_url}"
    instance = "demo-" + hashlib.sha1(where.encode()).hexdigest()[:8]
    cfg = IngestConfig(database_url=rt.database_url, mqtt_url=rt.mqtt_url,
                       topic_prefix=rt.settings.mqtt_topic_prefix, client_id=instance_client_id(instance),
                       protocol=rt.mqtt_protocol, **ingest_profile_options(rt.settings),
                       # the demo compresses time: refresh the rollups often so pages move
                       refresh_every_s=15.0 if rt.time_scale > 1 else 60.0)
    svc = IngestService(cfg)
    rt.extras["ingest"] = svc
    await svc.run(stop)
