"""The scheduler as a long-running component (``yuncang demo``, ``yuncang scheduler``)."""

from __future__ import annotations

import asyncio
import logging

from yuncang.jobs import default_jobs
from yuncang.runtime import Runtime
from yuncang.scheduler import Leadership, build_scheduler

ORDER = 90
log = logging.getLogger(__name__)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    leader = Leadership(rt.database_url)
    jobs = default_jobs()
    sched = build_scheduler(rt.pool, jobs, leader)
    sched.start()
    log.info("scheduler started", extra={"jobs": [j.name for j in jobs]})
    try:
        await stop.wait()
    finally:
        await asyncio.to_thread(sched.shutdown, True)
        leader.release()
