"""``yuncang scheduler``: run the periodic jobs (only one process acts at a time); ``--once JOB`` runs one now."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from yuncang.settings import Settings


def _run(a: argparse.Namespace, s: Settings) -> int:
    from yuncang.jobs import default_jobs
    from yuncang.migrations import migrate
    from yuncang.runtime import Runtime, Services, open_pool
    from yuncang.scheduler import Leadership, run_job

    with Services(s) as svc:
        migrate(svc.database_url)
        pool = open_pool(s, svc.database_url)
        try:
            if a.once:
                specs = {j.name: j for j in default_jobs()}
                if a.once not in specs:
                    print(f"no job {a.once!r}; jobs: {', '.join(specs)}")
                    return 2
                leader = Leadership(svc.database_url)
                try:
                    run_id = run_job(pool, specs[a.once], leader)
                finally:
                    leader.release()
                print(f"job run {run_id}" if run_id else "another scheduler holds leadership; not run")
                return 0 if run_id else 1
            from yuncang.components.scheduler import run

            rt = Runtime(settings=s, database_url=svc.database_url, mqtt_url=svc.mqtt_url, pool=pool,
                         embedded=svc.embedded_db is not None)

            async def main() -> None:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await run(rt, stop)

            asyncio.run(main())
        finally:
            pool.close()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("scheduler", help="run the periodic jobs (leader-elected across processes)")
    p.add_argument("--once", metavar="JOB", help="run one job now and exit")
    p.set_defaults(func=_run)
