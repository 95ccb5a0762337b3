"""Demo component: the 1,546 simulated orchard gateways publishing to the product's broker.

The simulated clock starts ``YUNCANG_SIM_BACKFILL_DAYS`` (default 7) days ago at local midnight and
runs ``time_scale`` times faster than the wall clock (``Runtime.time_scale`` when set above 1, else
``YUNCANG_SIM_TIME_SCALE``, default 3600: one simulated hour per second) until it reaches now; then it
runs in real time, every gateway sending one 5-minute sample per message.

Gentle on CPU (the demo shares 2 cores with ingest and web): while catching up, the sample interval
is coarsened so that the fleet stays under ``YUNCANG_SIM_READINGS_PER_S`` readings per wall second
(default 4,000) and each gateway sends one message per simulated day; generation runs in a worker
thread in small chunks. ``YUNCANG_SIM_ENABLED=0`` switches the component off;
``YUNCANG_SIM_ORCHARDS`` limits the fleet; ``YUNCANG_SIM_FORMAT`` picks the wire format
(native | chirpstack | thingsboard); ``YUNCANG_SIM_FAULTS`` = realistic | none.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from typing import Any

from yuncang.runtime import Runtime

ORDER = 90          #: after ingest has subscribed
log = logging.getLogger("yuncang.simulator")

#: sample intervals that divide a day, s
_INTERVALS = (300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400)


def catch_up_interval(gateways: int, time_scale: float, readings_per_s: float, metrics: int = 10) -> int:
    """Smallest sample interval (s, dividing a day) keeping a fleet at ``time_scale`` under the budget."""
    need = gateways * metrics * time_scale / max(readings_per_s, 1.0)
    for iv in _INTERVALS:
        if iv >= need:
            return iv
    return _INTERVALS[-1]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"YUNCANG_SIM_{name}", default)


def _devices(rt: Runtime, limit: int | None) -> list[dict[str, Any]]:
    from yuncang.commands.simulate import load_devices

    with rt.pool.connection() as conn:
        return load_devices(conn, limit)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    if _env("ENABLED", "1") in ("0", "false", "no"):
        log.info("simulator disabled (YUNCANG_SIM_ENABLED=0)")
        return
    from sim_sensors.faults import FaultConfig
    from sim_sensors.fleet import make_fleet
    from sim_sensors.publisher import run_fleet
    from sim_sensors.replay import Ledger, Replayer

    scale = rt.time_scale if rt.time_scale > 1 else float(_env("TIME_SCALE", "3600"))
    backfill = int(_env("BACKFILL_DAYS", "7"))
    budget = float(_env("READINGS_PER_S", "4000"))
    fmt = _env("FORMAT", "native")
    limit = int(_env("ORCHARDS", "0")) or None
    faults = FaultConfig.none() if _env("FAULTS", "realistic") == "none" else FaultConfig()
    seed = int(_env("SEED", "0"))

    devices = await asyncio.to_thread(_devices, rt, limit)
    if not devices:
        log.warning("simulator: no devices in the registry; nothing to simulate")
        return
    fleet = await asyncio.to_thread(make_fleet, devices, seed)
    coarse = catch_up_interval(fleet.n, scale, budget)
    prefix = rt.settings.mqtt_topic_prefix
    catch_up = Replayer(fleet, fmt=fmt, interval_s=coarse, samples_per_message=86400 // coarse, faults=faults,
                        seed=seed, topic_prefix=prefix)
    # today's hours before the switch to real time: same coarse interval, one sample per message
    today = Replayer(fleet, fmt=fmt, interval_s=coarse, samples_per_message=1, faults=faults, seed=seed,
                     topic_prefix=prefix)
    live = Replayer(fleet, fmt=fmt, interval_s=300, samples_per_message=1, faults=faults, seed=seed,
                    topic_prefix=prefix)
    start = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date() - dt.timedelta(days=backfill)
    ledger = Ledger()
    log.info("simulator starting", extra={"gateways": fleet.n, "format": fmt, "time_scale": scale,
                                          "start": start.isoformat(), "catch_up_interval_s": coarse})
    await asyncio.sleep(2.0)            # let ingest subscribe first
    backoff = 1.0
    while not stop.is_set():
        try:
            url = rt.mqtt_url + ("?protocol=4" if rt.mqtt_protocol == "3.1.1" and "?" not in rt.mqtt_url else "")
            stats = await run_fleet(catch_up, url, start=start, time_scale=scale, stop=stop,
                                    live=live, today=today, ledger=ledger, window=32)
            log.info("simulator stopped",
                     extra={"messages": stats.messages, "readings": ledger.readings_sent})
            return
        except Exception as exc:   # broker restart: reconnect with backoff, resume from today
            log.warning("simulator lost the broker; retrying", extra={"error": str(exc), "retry_s": backoff})
            try:
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, 30.0)
            start = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
