"""``python -m bench sim``: how fast the simulator generates and encodes a day of the whole fleet.

Replays one day (1,546 gateways x 288 five-minute samples x 10 readings, about 4.45 million readings
plus faults) in each wire format, batched (12 samples per message) and one sample per message, and
reports generation rates, bytes and peak RSS. The goal is that the simulator is never the bottleneck
of the ingest benchmark: at least 5x ingest's targets (100,000 readings/s batched, 3,000 messages/s
single), in bounded memory. ``--publish URL`` also publishes the batched native day to a broker.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import statistics
import time
from typing import Any

from registry.seed import SeedParams, generate
from sim_sensors.faults import FaultConfig
from sim_sensors.replay import replay_day

GOALS = {"batched_readings_per_s_min": 500_000, "single_messages_per_s_min": 15_000, "peak_rss_mb_max": 300}


def _devices(n: int) -> list[dict[str, Any]]:
    reg = generate(SeedParams())
    orch = {o["orchard_id"]: o for o in reg.orchards}
    return [dict(d, elevation_m=orch[d["orchard_id"]]["elevation_m"], lat=orch[d["orchard_id"]]["lat"],
                 lon=orch[d["orchard_id"]]["lon"]) for d in reg.devices[:n]]


def run_once(devices: list[dict[str, Any]], fmt: str, spm: int, day: dt.date) -> dict[str, float]:
    t0 = time.perf_counter()
    msgs, ledger = replay_day(devices, day, fmt=fmt, samples_per_message=spm, faults=FaultConfig(), seed=1)
    size = 0
    for m in msgs:
        size += len(m.payload)
    s = time.perf_counter() - t0
    return {"seconds": s, "messages": ledger.messages, "readings": ledger.readings_sent, "mb": size / 1e6,
            "expected_stored": ledger.expected_stored}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sim")
    ap.add_argument("--gateways", type=int, default=1546)
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; medians are reported")
    ap.add_argument("--publish", default=None, help="mqtt:// URL: also publish the batched native day")
    a = ap.parse_args(argv or [])
    devices = _devices(a.gateways)
    day = dt.date(2026, 7, 20)
    cases = [("native", 12), ("chirpstack", 12), ("thingsboard", 12), ("native", 1), ("chirpstack", 1)]
    out: dict[str, Any] = {"gateways": len(devices), "samples_per_day": 288}
    for fmt, spm in cases:
        runs = [run_once(devices, fmt, spm, day) for _ in range(a.repeat)]
        sec = statistics.median(r["seconds"] for r in runs)
        key = f"{fmt}_{'batched' if spm > 1 else 'single'}"
        out[f"{key}_seconds"] = round(sec, 2)
        out[f"{key}_readings_per_s"] = round(runs[0]["readings"] / sec)
        out[f"{key}_messages_per_s"] = round(runs[0]["messages"] / sec)
        out[f"{key}_messages"] = runs[0]["messages"]
        out[f"{key}_payload_mb"] = round(runs[0]["mb"], 1)
        out[f"{key}_readings_sent"] = runs[0]["readings"]
    if a.publish:
        from sim_sensors.publisher import publish_messages, threaded

        msgs, _ = replay_day(devices, day, samples_per_message=12, faults=FaultConfig(), seed=1,
                             topic_prefix="bench-sim/")
        stats = asyncio.run(publish_messages(threaded(msgs), a.publish))
        out["publish_native_batched_messages_per_s"] = round(stats.messages_per_s)
        out["publish_native_batched_readings_per_s"] = round(stats.readings / stats.seconds)
        out["publish_mqtt_protocol"] = stats.protocol
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    batched = min(out[f"{f}_batched_readings_per_s"] for f in ("native", "chirpstack", "thingsboard"))
    single = min(out["native_single_messages_per_s"], out["chirpstack_single_messages_per_s"])
    out["goals"] = GOALS
    out["meets_goals"] = bool(batched >= GOALS["batched_readings_per_s_min"]
                              and single >= GOALS["single_messages_per_s_min"]
                              and out["peak_rss_mb"] <= GOALS["peak_rss_mb_max"])
    print(json.dumps(out))
    return 0
