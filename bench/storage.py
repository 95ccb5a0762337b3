"""``python -m bench storage``: narrow or wide raw rows — the measurement behind ingest's choice.

Writes the same readings (``--devices`` gateways x 10 metrics x one day at 5-minute intervals, in the
order ingest receives them: hour blocks of 12 samples per gateway) with psycopg binary COPY into scratch
tables of each shape, in a scratch database on ``YUNCANG_DATABASE_URL``'s server (else an embedded
PostgreSQL):

* ``narrow_heap``      (device_id, metric, time, value), no index: the physical limit of the narrow shape;
* ``narrow_pk``        the same with PRIMARY KEY (device_id, metric, time) — what idempotent inserts need;
* ``narrow_pk_trigger`` the same, partitioned by day, with the rollup-marking statement trigger
  (ingest's former ``readings``);
* ``wide_heap``        (device_id, time, one column per metric), no index;
* ``wide_pk``          the same with PRIMARY KEY (device_id, time);
* ``wide_pk_trigger``  the same, partitioned by day, with the trigger (ingest's ``samples``).

Reports readings (values) per second for each, medians of ``--runs`` (the machine is noisy), and the
ratio of the indexed wide table to the indexed narrow one. Every run checks that the table holds exactly
the values written (both shapes store the same readings).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import statistics
import time
from typing import Any

import psycopg

from registry.metrics import METRICS

COLS = list(METRICS)
_NARROW = "device_id text COLLATE \"C\" NOT NULL, metric text COLLATE \"C\" NOT NULL, time timestamptz NOT NULL, " \
          "value float8 NOT NULL"
_WIDE = "device_id text COLLATE \"C\" NOT NULL, time timestamptz NOT NULL, " + ", ".join(f"{c} float8" for c in COLS)
_MARK = """
CREATE TABLE bench_dirty (device_id text, hour timestamptz, PRIMARY KEY (device_id, hour));
CREATE FUNCTION bench_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO bench_dirty SELECT DISTINCT device_id, date_trunc('hour', time, 'UTC') FROM new_rows
  ON CONFLICT DO NOTHING; RETURN NULL; END $$;
"""


def shapes(day: dt.datetime) -> dict[str, tuple[str, str]]:
    """name -> (DDL creating table ``t``, 'narrow' | 'wide')."""
    part = (f" PARTITION BY RANGE (time); CREATE TABLE t_day PARTITION OF t FOR VALUES FROM ('{day:%Y-%m-%d}') "
            f"TO ('{day + dt.timedelta(days=1):%Y-%m-%d}'); CREATE TRIGGER t_mark AFTER INSERT ON t "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_mark()")
    return {
        "narrow_heap": (f"CREATE TABLE t ({_NARROW})", "narrow"),
        "narrow_pk": (f"CREATE TABLE t ({_NARROW}, PRIMARY KEY (device_id, metric, time))", "narrow"),
        "narrow_pk_trigger": (f"CREATE TABLE t ({_NARROW}, PRIMARY KEY (device_id, metric, time)){part}", "narrow"),
        "wide_heap": (f"CREATE TABLE t ({_WIDE})", "wide"),
        "wide_pk": (f"CREATE TABLE t ({_WIDE}, PRIMARY KEY (device_id, time))", "wide"),
        "wide_pk_trigger": (f"CREATE TABLE t ({_WIDE}, PRIMARY KEY (device_id, time)){part}", "wide"),
    }


def make_rows(devices: int, day: dt.datetime, seed: int = 7) -> tuple[list[tuple[Any, ...]], list[list[Any]]]:
    """The same readings as narrow tuples and as wide rows, in ingest's arrival order."""
    rnd = random.Random(seed)
    times = [day + dt.timedelta(minutes=5 * i) for i in range(288)]
    narrow: list[tuple[Any, ...]] = []
    wide: list[list[Any]] = []
    for block in range(0, 288, 12):
        for d in range(devices):
            dev = f"gw-{d:05d}"
            for t in times[block:block + 12]:
                vals = [round(rnd.uniform(0, 30), 2) for _ in COLS]
                wide.append([dev, t, *vals])
                narrow.extend((dev, m, t, v) for m, v in zip(COLS, vals, strict=True))
    return narrow, wide


def copy_seconds(conn: psycopg.Connection, rows: list[Any], kind: str) -> float:
    cols = "device_id, metric, time, value" if kind == "narrow" else "device_id, time, " + ", ".join(COLS)
    types = (["text", "text", "timestamptz", "float8"] if kind == "narrow"
             else ["text", "timestamptz"] + ["float8"] * len(COLS))
    t0 = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur, cur.copy(f"COPY t ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(types)
        for r in rows:
            cp.write_row(r)
    return time.perf_counter() - t0


def run(a: argparse.Namespace) -> dict[str, Any]:
    from bench.ingest import Env

    env = Env()
    url = env.new_database()
    day = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    narrow, wide = make_rows(a.devices, day)
    readings = len(narrow)
    out: dict[str, Any] = {}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_MARK)
            for name, (ddl, kind) in shapes(day).items():
                secs = []
                for _ in range(a.runs):
                    conn.execute("DROP TABLE IF EXISTS t CASCADE")
                    conn.execute("TRUNCATE bench_dirty")
                    conn.execute(ddl)
                    secs.append(copy_seconds(conn, narrow if kind == "narrow" else wide, kind))
                    stored = conn.execute("SELECT count(*) FROM t" if kind == "narrow" else
                                          "SELECT sum(num_nonnulls(" + ", ".join(COLS) + ")) FROM t").fetchone()
                    if not stored or int(stored[0]) != readings:
                        raise AssertionError(f"{name}: {stored} values stored, {readings} written")
                med = statistics.median(secs)
                out[name] = {"readings_per_s": round(readings / med), "rows_per_s":
                             round((readings if kind == "narrow" else len(wide)) / med),
                             "runs_s": [round(s, 3) for s in secs]}
            conn.execute("DROP TABLE IF EXISTS t CASCADE")
    finally:
        env.drop_database(url)
        env.close()
    return {
        "benchmark": "storage", "devices": a.devices, "readings": readings, "wide_rows": len(wide),
        "runs": a.runs, "load_avg_1m": round(os.getloadavg()[0], 2), "shapes": out,
        "wide_over_narrow_indexed": round(out["wide_pk_trigger"]["readings_per_s"]
                                          / out["narrow_pk_trigger"]["readings_per_s"], 2),
        "narrow_indexed_over_heap": round(out["narrow_pk_trigger"]["readings_per_s"]
                                          / out["narrow_heap"]["readings_per_s"], 3),
        "wide_indexed_over_heap": round(out["wide_pk_trigger"]["readings_per_s"]
                                        / out["wide_heap"]["readings_per_s"], 3),
        "run_id": secrets.token_hex(3),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench storage", description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=350, help="gateways (x 2,880 readings each)")
    p.add_argument("--runs", type=int, default=3)
    return p


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(run(parser().parse_args(argv))))
    return 0
