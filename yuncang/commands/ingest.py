"""``yuncang ingest``: run the MQTT ingest service (and ``yuncang ingest refresh`` for the rollups)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from typing import Any

from yuncang.settings import Settings, ingest_profile_options

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="consume gateway MQTT uplinks into the time-series tables")
    p.add_argument("action", nargs="?", choices=["run", "refresh", "retention", "leave"],
                   default="run", help="run the service (default), refresh the rollups once, apply raw-data"
                   " retention, or leave: drain and end the persistent session of --client-id (scaling down)")
    p.add_argument("--client-id", default=None, help="MQTT client id (the persistent session is keyed by it)")
    p.add_argument("--instance", default=None, help="suffix for the default client id when running several")
    p.add_argument("--no-shared", action="store_true", help="plain subscription instead of $share/ingest/...")
    p.add_argument("--processes", type=int, default=1,
                   help="run this many supervised ingest processes on the shared subscription (MQTT v5)")
    p.add_argument("--protocol", choices=["auto", "5", "3.1.1"], default="auto")
    p.add_argument("--session-expiry", type=int, default=7 * 86400, help="MQTT v5 session expiry, s")
    p.add_argument("--receive-maximum", type=int, default=4000, help="unacknowledged messages in flight")
    p.add_argument("--batch-readings", type=int, default=20_000, help="write a batch at this many readings")
    p.add_argument("--batch-age", type=float, default=0.25, help="write a batch at the latest after this, s")
    p.add_argument("--refresh-every", type=float, default=60.0, help="rollup refresh period, s (0: never)")
    p.add_argument("--leave-idle", type=float, default=5.0,
                   help="leave: stop after this many seconds without a queued message, s")
    p.add_argument("--for", dest="seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-migrate", action="store_true", help="do not apply pending migrations first")
    p.set_defaults(func=_cmd)


def _cmd(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from ingest import rollups
    from ingest.service import IngestConfig, IngestService, instance_client_id
    from ingest.storage import apply_retention
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    with Services(s) as svc:
        if not a.no_migrate:
            migrate(svc.database_url)
        if a.action == "refresh":
            with psycopg.connect(svc.database_url) as conn:
                r = rollups.refresh(conn)
            print(f"rollups refreshed: {r.hours} hour bucket(s), {r.days} day bucket(s) in {r.seconds:.2f} s")
            return 0
        if a.action == "retention":
            with psycopg.connect(svc.database_url) as conn:
                n = apply_retention(conn)
                conn.commit()
            print(f"dropped {n} raw partition(s)/chunk(s) older than the retention window")
            return 0
        if a.action == "leave" and not a.client_id:
            print("yuncang ingest leave: name the instance's session with --client-id", file=sys.stderr)
            return 2
        if a.processes > 1 and a.action == "run":
            return _run_processes(a, svc)
        cfg = IngestConfig(
            database_url=svc.database_url, mqtt_url=svc.mqtt_url, topic_prefix=s.mqtt_topic_prefix,
            client_id=a.client_id or instance_client_id(a.instance),
            shared_group=None if a.no_shared else "ingest", protocol=a.protocol,
            session_expiry_s=a.session_expiry, receive_maximum=a.receive_maximum,
            batch_max_readings=a.batch_readings, batch_max_age_s=a.batch_age, refresh_every_s=a.refresh_every,
            leave=a.action == "leave", leave_idle_s=a.leave_idle, **ingest_profile_options(s))

        # what is loaded by now (modules, settings) lives as long as the process: keep it out of every
        # full collection, whose cost would otherwise grow with it (bench ingest: ~0.4 CPU-s per county-day)
        gc.freeze()

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            if a.seconds is not None:
                loop.call_later(a.seconds, stop.set)
            await IngestService(cfg).run(stop)

        asyncio.run(main())
    return 0


def _run_processes(a: argparse.Namespace, svc: Any) -> int:
    """``--processes N``: N children on the shared subscription, supervised (:mod:`yuncang.ingest_processes`)."""
    from ingest.service import instance_client_id
    from yuncang.ingest_processes import IngestProcesses, child_args

    if a.no_shared or a.protocol == "3.1.1" or svc.embedded_broker is not None:
        print("yuncang ingest: --processes needs the MQTT v5 shared subscription (not --no-shared, not"
              " --protocol 3.1.1, not the embedded 3.1.1 broker); otherwise every process would receive"
              " every message", file=sys.stderr)
        return 2
    passthrough = ["--protocol", "5", "--session-expiry", str(a.session_expiry),
                   "--receive-maximum", str(a.receive_maximum), "--batch-readings", str(a.batch_readings),
                   "--batch-age", str(a.batch_age)]
    if a.seconds is not None:
        passthrough += ["--for", str(a.seconds)]
    # the children use the services this parent resolved (configured or embedded)
    sup = IngestProcesses(child_args(a.client_id or instance_client_id(a.instance), a.processes, passthrough,
                                     refresh_every_s=a.refresh_every),
                          env={"YUNCANG_DATABASE_URL": svc.database_url, "YUNCANG_MQTT_URL": svc.mqtt_url})
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sup.stop.set())
    return sup.run()
