"""``yuncang simulate``: run the orchard gateways against the configured broker, replay a day, or write
historical seasons into the database.

Examples::

    yuncang simulate --orchards 100 --speed 3600 --start 2026-11-16     # catch up a week at 1 h/s, then live
    yuncang simulate --replay-day 2026-11-20 --format chirpstack        # one day, as fast as the broker acks
    yuncang simulate --write-history 2021-2025                          # past seasons for back-testing
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import signal
import sys
from typing import Any

from yuncang.settings import Settings

log = logging.getLogger("yuncang.simulate")


def load_devices(conn: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """Active registry devices joined with their orchard's site, in device order."""
    sql = ("SELECT d.device_id, d.orchard_id, d.dev_eui, o.elevation_m, o.lat, o.lon "
           "FROM devices d JOIN orchards o USING (orchard_id) WHERE d.active ORDER BY d.device_id")
    rows = conn.execute(sql + (" LIMIT %s" if limit else ""), (limit,) if limit else ()).fetchall()
    cols = ("device_id", "orchard_id", "dev_eui", "elevation_m", "lat", "lon")
    return [dict(zip(cols, r, strict=True)) for r in rows]


def load_orchards(conn: Any, limit: int | None = None) -> list[dict[str, Any]]:
    sql = ("SELECT orchard_id, area_mu, elevation_m, lat, lon, planting_year, tree_count FROM orchards "
           "ORDER BY orchard_id")
    rows = conn.execute(sql + (" LIMIT %s" if limit else ""), (limit,) if limit else ()).fetchall()
    cols = ("orchard_id", "area_mu", "elevation_m", "lat", "lon", "planting_year", "tree_count")
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _seasons(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run simulated orchard gateways (live, accelerated, or replay a day)")
    p.add_argument("--orchards", type=int, default=None, help="number of gateways (default: all devices)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per wall second while catching up from --start (default 1)")
    p.add_argument("--format", choices=("native", "chirpstack", "thingsboard"), default="native")
    p.add_argument("--replay-day", type=dt.date.fromisoformat, default=None,
                   help="publish this local day as fast as the broker acknowledges, print the ledger, exit")
    p.add_argument("--start", type=dt.date.fromisoformat, default=None,
                   help="first simulated day of a live run (default today); the clock never passes now")
    p.add_argument("--interval", type=int, default=300, help="seconds between samples (default 300)")
    p.add_argument("--samples-per-message", type=int, default=None,
                   help="samples per uplink (default 12 for --replay-day, 1 live)")
    p.add_argument("--devices-per-message", type=int, default=1, help="ThingsBoard: devices per message")
    p.add_argument("--faults", choices=("realistic", "none"), default="realistic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--for", dest="seconds", type=float, default=None, help="stop a live run after N seconds")
    p.add_argument("--write-history", metavar="SEASONS", default=None,
                   help="write past seasons (e.g. 2021-2025) to yield_history and readings_daily, then exit")
    p.set_defaults(func=_run)


def _run(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from sim_sensors.faults import FaultConfig
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    with Services(s) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            if a.write_history:
                return _write_history(conn, a)
            devices = load_devices(conn, a.orchards)
        if not devices:
            print("no devices in the registry: run `yuncang seed` first", file=sys.stderr)
            return 2
        faults = FaultConfig() if a.faults == "realistic" else FaultConfig.none()
        prefix = s.mqtt_topic_prefix
        if a.replay_day:
            return asyncio.run(_replay(devices, a, faults, prefix, svc.mqtt_url))
        return asyncio.run(_live(devices, a, faults, prefix, svc.mqtt_url))


def _write_history(conn: Any, a: argparse.Namespace) -> int:
    from sim_sensors.history import generate_history, write_history

    seasons = _seasons(a.write_history)
    orchards = load_orchards(conn, a.orchards)
    h = generate_history(orchards, seasons, seed=a.seed)
    write_history(conn, h, observations=True)
    conn.commit()
    totals = {s: round(float(h.yield_kg[s].sum()) / 1000.0, 1) for s in seasons}
    print(json.dumps({"orchards": len(orchards), "seasons": seasons, "scenarios": h.scenarios,
                      "harvest_t": totals}))
    return 0


async def _replay(devices: list[dict[str, Any]], a: argparse.Namespace, faults: Any, prefix: str,
                  url: str) -> int:
    from sim_sensors.publisher import publish_messages, threaded
    from sim_sensors.replay import replay_day

    msgs, ledger = replay_day(devices, a.replay_day, fmt=a.format, interval_s=a.interval,
                              samples_per_message=a.samples_per_message or 12, faults=faults, seed=a.seed,
                              topic_prefix=prefix, devices_per_message=a.devices_per_message)
    stats = await publish_messages(threaded(msgs), url)
    print(json.dumps({"day": a.replay_day.isoformat(), "format": a.format, "gateways": len(devices),
                      "messages": ledger.messages, "readings_sent": ledger.readings_sent,
                      "duplicate_readings": ledger.duplicate_readings,
                      "invalid_readings": ledger.invalid_readings, "expected_stored": ledger.expected_stored,
                      "seconds": round(stats.seconds, 2), "messages_per_s": round(stats.messages_per_s),
                      "mqtt_protocol": stats.protocol}))
    return 0


async def _live(devices: list[dict[str, Any]], a: argparse.Namespace, faults: Any, prefix: str,
                url: str) -> int:
    from sim_sensors.fleet import make_fleet
    from sim_sensors.publisher import run_fleet
    from sim_sensors.replay import Ledger, Replayer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if a.seconds is not None:
        loop.call_later(a.seconds, stop.set)
    fleet = make_fleet(devices, a.seed)
    spm = a.samples_per_message or 1
    rate = fleet.n * max(a.speed, 1.0) / (a.interval * spm)
    if a.start and rate > 3000:
        log.warning("catching up needs more messages per second than one MQTT client sends (~3,000-5,000); "
                    "raise --interval or --samples-per-message, or lower --speed",
                    extra={"messages_per_s_needed": round(rate)})
    rep = Replayer(fleet, fmt=a.format, interval_s=a.interval, samples_per_message=spm,
                   faults=faults, seed=a.seed, topic_prefix=prefix, devices_per_message=a.devices_per_message)
    ledger = Ledger()
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    start = a.start or now.date()
    log.info("simulator running", extra={"gateways": fleet.n, "format": a.format, "start": start.isoformat(),
                                         "speed": a.speed})
    stats = await run_fleet(rep, url, start=start, time_scale=a.speed, stop=stop, ledger=ledger,
                            begin=None if a.start else now.timestamp())
    print(json.dumps({"messages": ledger.messages, "readings_sent": ledger.readings_sent,
                      "expected_stored": ledger.expected_stored, "seconds": round(stats.seconds, 1)}))
    return 0
