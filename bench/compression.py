"""``python -m bench compression``: TimescaleDB compression of the raw samples, measured, per layout.

Needs TimescaleDB (``YUNCANG_DATABASE_URL`` on a server that has it; refuses to run otherwise: there
is nothing to measure on plain PostgreSQL). In a scratch database migrated and seeded with
``--orchards`` orchards it renders ``--days`` consecutive local days of every gateway with the
simulator (``sim_sensors.replay.replay_day``, native format, 5-minute samples, the simulator's
faults), decodes and validates them with ingest's own code and keeps the wide sample rows ingest
would store. Then, for each candidate layout, a scratch hypertable shaped like ``samples`` (same
columns and primary key) receives the same rows by binary COPY, and ``compress_chunk`` compresses
every chunk (run explicitly, never by the background scheduler). Figures per layout:

* ``before_bytes`` / ``after_bytes``: ``chunk_compression_stats`` total bytes (heap + indexes + TOAST)
  before and after; ``ratio`` = before / after;
* ``bytes_per_value_after``: compressed bytes per stored reading (value);
* ``per_metric``: compressed bytes per value of each metric column (``pg_column_size`` of the column
  in the compressed chunks), against 8 bytes per value uncompressed;
* ``compress_s``: seconds ``compress_chunk`` took for all chunks;
* the layout's rows read back equal the rows written (count of values).

Layouts: the segment-by column, the order-by and the chunking (1-day chunks, 7-day chunks, or 1-day
chunks rolled up into 7-day compressed chunks by ``compress_chunk_time_interval``). The layout the
product uses is ``PRODUCT_LAYOUT``; the goal holds its ratio to the figure docs/scaling.md states.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from ingest.model import COLUMNS


@dataclass(frozen=True)
class Layout:
    name: str
    chunk: str                     #: chunk_time_interval
    segmentby: str                 #: '' = none
    orderby: str
    compress_interval: str = ""    #: compress_chunk_time_interval ('' = one compressed chunk per chunk)
    value_type: str = "float8"     #: metric column type (float4: what single precision would save; not used)


LAYOUTS: tuple[Layout, ...] = (
    Layout("dev_timedesc_1d", "1 day", "device_id", "time DESC"),             # before issue 12
    Layout("dev_timeasc_1d", "1 day", "device_id", "time"),
    Layout("nosegment_dev_time_1d", "1 day", "", "device_id, time"),
    Layout("dev_timedesc_7d", "7 days", "device_id", "time DESC"),
    Layout("dev_timedesc_1d_rollup7d", "1 day", "device_id", "time DESC", "7 days"),
    Layout("float4_dev_timedesc_1d_rollup7d", "1 day", "device_id", "time DESC", "7 days", "float4"),
)

#: The layout ``samples`` uses (ingest/sql/007_compression.tsdb.sql), chosen by this benchmark.
PRODUCT_LAYOUT = "dev_timedesc_1d_rollup7d"

#: docs/scaling.md states the product layout's measured ratio as "about 3x" (2.97 measured); hold it.
GOALS = {"product_layout_ratio": 2.8}


def render_rows(devices: list[dict[str, Any]], days: list[dt.date]) -> tuple[list[list[Any]], int]:
    """The wide sample rows (one per device and time) and values ingest stores from the simulated days."""
    from ingest.decode import decode_message
    from ingest.samples import merge
    from ingest.validate import DeviceCache, Validator
    from sim_sensors.faults import FaultConfig
    from sim_sensors.replay import replay_day

    cache = DeviceCache({d["device_id"]: d["orchard_id"] for d in devices},
                        {d["dev_eui"]: d["device_id"] for d in devices if d["dev_eui"]})
    v = Validator(cache)
    prefix = "ycbench-compression/"
    rows: list[list[Any]] = []
    for day in days:
        stream, _ = replay_day(devices, day, fmt="native", interval_s=300, samples_per_message=12,
                               faults=FaultConfig(), seed=20200824 + day.toordinal(), topic_prefix=prefix)
        for m in stream:
            rows.extend(list(r) for r in decode_message(m.topic, m.payload, v, prefix).rows)
    return merge(rows)


def measure(conn: psycopg.Connection, lay: Layout, rows: list[list[Any]], values: int) -> dict[str, Any]:
    from ingest.samples import copy_sql, write_rows

    t = f"bench_{lay.name}"
    conn.execute(f"DROP TABLE IF EXISTS {t}")
    conn.execute(f"CREATE TABLE {t} (LIKE samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)")
    if lay.value_type != "float8":
        conn.execute(f"ALTER TABLE {t} " + ", ".join(f"ALTER COLUMN {m} TYPE {lay.value_type}" for m in COLUMNS))
    conn.execute("SELECT create_hypertable(%s, 'time', chunk_time_interval => %s::interval)", (t, lay.chunk))
    opts = [f"timescaledb.compress_segmentby = '{lay.segmentby}'", f"timescaledb.compress_orderby = '{lay.orderby}'"]
    if lay.compress_interval:
        opts.append(f"timescaledb.compress_chunk_time_interval = '{lay.compress_interval}'")
    conn.execute(f"ALTER TABLE {t} SET (timescaledb.compress, {', '.join(opts)})")
    for i in range(0, len(rows), 5000):
        with conn.cursor() as cur:
            if lay.value_type == "float8":
                write_rows(cur, t, rows[i:i + 5000])
            else:
                with cur.copy(copy_sql(t)) as cp:
                    cp.set_types(["text", "timestamptz"] + [lay.value_type] * len(COLUMNS))
                    for r in rows[i:i + 5000]:
                        cp.write_row(r)
    conn.execute(f"VACUUM ANALYZE {t}")
    raw = conn.execute("SELECT sum(total_bytes) FROM chunks_detailed_size(%s)", (t,)).fetchone()
    t0 = time.perf_counter()
    conn.execute(f"SELECT count(compress_chunk(c)) FROM show_chunks('{t}') c")
    compress_s = time.perf_counter() - t0
    stats = conn.execute("SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes),"
                         " count(*) FILTER (WHERE compression_status = 'Compressed')"
                         " FROM chunk_compression_stats(%s)", (t,)).fetchone()
    assert stats is not None and raw is not None
    before, after, compressed_chunks = int(stats[0]), int(stats[1]), int(stats[2])
    stored = conn.execute(f"SELECT sum(num_nonnulls({', '.join(COLUMNS)})) FROM {t}").fetchone()
    if not stored or int(stored[0]) != values:
        raise AssertionError(f"{lay.name}: {stored} values read back, {values} written")
    per_metric = _per_metric(conn, t, values_by_metric(rows))
    conn.execute(f"DROP TABLE {t}")
    return {"before_bytes": before, "after_bytes": after, "ratio": round(before / after, 2),
            "raw_chunks_bytes": int(raw[0] or 0), "compressed_chunks": compressed_chunks,
            "bytes_per_value_after": round(after / values, 3), "compress_s": round(compress_s, 2),
            "per_metric_bytes_per_value": per_metric}


def values_by_metric(rows: list[list[Any]]) -> dict[str, int]:
    return {m: sum(1 for r in rows if r[2 + i] is not None) for i, m in enumerate(COLUMNS)}


def _per_metric(conn: psycopg.Connection, table: str, counts: dict[str, int]) -> dict[str, float]:
    """Compressed bytes per value of each metric column, over all compressed chunks of ``table``."""
    chunks = conn.execute(
        "SELECT format('%%I.%%I', c2.schema_name, c2.table_name) FROM _timescaledb_catalog.chunk c1"
        " JOIN _timescaledb_catalog.hypertable h ON h.id = c1.hypertable_id"
        " JOIN _timescaledb_catalog.chunk c2 ON c2.id = c1.compressed_chunk_id"
        " WHERE h.table_name = %s", (table,)).fetchall()
    sums = dict.fromkeys(COLUMNS, 0)
    for (ch,) in chunks:
        row = conn.execute("SELECT " + ", ".join(f"coalesce(sum(pg_column_size({m})), 0)" for m in COLUMNS)
                           + f" FROM {ch}").fetchone()
        assert row is not None
        for m, b in zip(COLUMNS, row, strict=True):
            sums[m] += int(b)
    return {m: round(sums[m] / counts[m], 3) if counts[m] else 0.0 for m in COLUMNS}


def run(a: argparse.Namespace) -> dict[str, Any]:
    from bench.ingest import Env, prepare_db
    from yuncang.schema import storage_path
    from yuncang.tsdb_jobs import stop_scheduler

    env = Env()
    url = env.new_database()
    try:
        devices = prepare_db(url, a.orchards)
        with psycopg.connect(url, autocommit=True) as conn:
            if storage_path(conn) != "timescaledb":
                raise SystemExit("bench compression needs TimescaleDB: set YUNCANG_DATABASE_URL to a server with it")
            stop_scheduler(conn)  # nothing but this benchmark compresses
            version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
            today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
            days = [today - dt.timedelta(days=7 + a.days - k) for k in range(a.days)]
            t0 = time.perf_counter()
            rows, values = render_rows(devices, days)
            render_s = time.perf_counter() - t0
            layouts = [lay for lay in LAYOUTS if not a.layouts or lay.name in a.layouts]
            out: dict[str, Any] = {}
            for lay in layouts:
                runs = [measure(conn, lay, rows, values) for _ in range(a.runs)]
                best = runs[0] | {"ratio": statistics.median(r["ratio"] for r in runs),
                                  "compress_s": statistics.median(r["compress_s"] for r in runs)}
                out[lay.name] = best | {"chunk": lay.chunk, "segmentby": lay.segmentby, "orderby": lay.orderby,
                                        "compress_chunk_time_interval": lay.compress_interval or None}
    finally:
        env.drop_database(url)
        env.close()
    product = out.get(PRODUCT_LAYOUT, {}).get("ratio")
    figures = {"product_layout_ratio": product}
    return {
        "benchmark": "compression", "timescaledb": version[0] if version else None, "orchards": a.orchards,
        "gateways": len(devices), "days": a.days, "sample_rows": len(rows), "values": values,
        "render_s": round(render_s, 1), "runs": a.runs, "load_avg_1m": round(os.getloadavg()[0], 2),
        "layouts": out, "product_layout": PRODUCT_LAYOUT, **figures, "goals": GOALS,
        "meets_goals": product is not None and product >= GOALS["product_layout_ratio"],
        "run_id": secrets.token_hex(3),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench compression", description=__doc__.splitlines()[0])
    p.add_argument("--orchards", type=int, default=200, help="orchards (one gateway each) simulated")
    p.add_argument("--days", type=int, default=7, help="consecutive local days simulated")
    p.add_argument("--runs", type=int, default=1, help="repeats per layout (median ratio)")
    p.add_argument("--layouts", nargs="*", default=[], help="only these layouts (default: all)")
    return p


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(run(parser().parse_args(argv))))
    return 0
