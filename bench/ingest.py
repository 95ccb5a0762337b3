"""``python -m bench ingest``: one simulated day of the whole fleet through the real broker into the database.

Setup: a fresh database (on ``YUNCANG_DATABASE_URL``'s server, else an embedded PostgreSQL) migrated and
seeded with the 1,546-orchard registry; the broker at ``YUNCANG_MQTT_URL`` (else an embedded amqtt
broker); a topic prefix of this run alone.

Phase 1, batched (the realistic load): ``sim_sensors.replay.replay_day`` renders one local day
(Asia/Shanghai, a week ago) of every gateway in the native format, 12 samples (one hour) per message,
with the simulator's realistic faults (offline gateways uploading late, re-sent messages, stuck and
spiking sensors, NaN), about 4.5 million readings. The messages are rendered, and encoded as MQTT
PUBLISH packets (``--publisher raw``, :mod:`sim_sensors.mqtt_wire`), before the clock starts: the
1,546 gateways would send them from their own CPUs, so the replay should take as little as possible of
the 2 cores it shares with the system under test (``--publisher aiomqtt`` publishes through
aiomqtt/paho instead, ~70 µs of CPU per message). They go over ``--connections`` MQTT connections and
are ingested by ``yuncang ingest`` running as **separate process(es)** (as in production; all share the
machine's 2 cores with PostgreSQL and Mosquitto); ``--ingest-processes N`` runs N of them on the shared
subscription, the product's way to add cores. The clock stops when ingest has committed every message.
Flow control: each publish waits for its PUBACK, and the publisher keeps at most ``--window`` messages
ahead of what ingest has committed (read from ``device_health``), because a Mosquitto with its default
``max_queued_messages`` (1000) drops messages for a subscriber that falls behind; the exact row count
below would expose any such loss.

Exact count: rows in ``readings`` must equal ``sent - duplicates - invalid`` of the simulator's ledger,
and dead letters must equal the invalid readings.

Raw COPY baseline: the same readings (decoded again from the same messages, untimed) are written with
psycopg binary COPY into scratch tables without indexes, timing only the COPY: in the stored form (wide
sample rows; ``ratio_to_raw_copy`` = end-to-end / this, reported, no longer a goal) and as narrow rows, one per
reading (``ratio_to_raw_copy_narrow``, the form stored before; reported for comparison). The database's
own ceiling: the same rows COPYed into the real ``samples`` (key, partitions, rollup trigger),
``ratio_to_db_ceiling`` (a goal: >= 0.15). ``--paths timescaledb,postgresql`` measures both storage
paths on the same server in one run (``by_path``, ``timescaledb_over_postgresql_*``). Peak RSS is the
ingest process's ``VmHWM`` (MB, summed over processes). CPU
seconds of phase 1 (from /proc): ingest process(es), their PostgreSQL backends, this publisher process,
and the local Mosquitto when there is exactly one (``cpu_s_broker``, else null). Phase 2 publishes
``--single`` messages with one reading each and reports messages/s. Phase 3 publishes ``--chirpstack``
single ChirpStack v4 uplinks (one per device and minute, rendered before the clock), each decoded through
a vendor device profile (Milesight EM500-SMTC: battery %, soil temperature, moisture % -> m³/m³, EC µS/cm
-> dS/m; 4 readings) and reports ``chirpstack_profile_messages_per_s`` with its exact count. ``--runs``
repeats everything; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

#: Goals (issue 12), held on the storage path production runs (TimescaleDB) on a quiet 2-core machine.
#: The former goal of 0.25 x raw COPY of the stored rows is retired (the database alone reaches only
#: ~0.4 of it); the share of the database's own ceiling for this schema is held instead.
GOALS = {"readings_per_s": 400_000.0, "ratio_to_db_ceiling": 0.15, "peak_rss_mb": 300.0,
         "single_reading_messages_per_s": 8_000.0, "chirpstack_profile_messages_per_s": 8_000.0}

#: device profile the ChirpStack phase maps through (a vendor's keys and units: %, µS/cm, battery %)
CHIRPSTACK_PROFILE = "milesight-em500-smtc"
#: readings each of its uplinks stores (battery %, soil temperature, moisture, EC)
CHIRPSTACK_READINGS = 4


# ------------------------------------------------------------------------------------------ services


class Env:
    """Database server and broker: the configured ones, or embedded ones started here."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        db = os.environ.get("YUNCANG_DATABASE_URL")
        mq = os.environ.get("YUNCANG_MQTT_URL")
        if not db:
            from yuncang.embedded import EmbeddedPostgres

            tmp = Path(tempfile.mkdtemp(prefix="yc-bench-pg-"))
            os.chmod(tmp, 0o777)
            pg = EmbeddedPostgres(tmp / "pg", dbname="postgres")
            db = pg.start()
            self.stack.append(pg)
        if not mq:
            from yuncang.embedded import EmbeddedBroker

            b = EmbeddedBroker()
            b.start()
            self.stack.append(b)
            mq = b.url
        self.admin_url: str = db
        self.mqtt_url: str = mq
        self.real = bool(os.environ.get("YUNCANG_DATABASE_URL")) and bool(os.environ.get("YUNCANG_MQTT_URL"))

    def new_database(self, path: str | None = None) -> str:
        """A new empty database; ``path='postgresql'`` pins the plain storage path even on a server with
        TimescaleDB (the migration runner honours a recorded ``storage_path``), so both paths can be
        measured on the same server in one run."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        name = f"yc_bench_ingest_{secrets.token_hex(3)}"
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        params = conninfo_to_dict(self.admin_url)
        params["dbname"] = name
        url = make_conninfo("", **params)
        if path == "postgresql":
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("CREATE TABLE yuncang_meta (key text PRIMARY KEY, value text NOT NULL)")
                c.execute("INSERT INTO yuncang_meta VALUES ('storage_path', 'postgresql')")
        return url

    def drop_database(self, url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for s in reversed(self.stack):
            s.stop()


def prepare_db(url: str, orchards: int) -> list[dict[str, Any]]:
    from registry.seed import SeedParams, seed
    from yuncang.migrations import migrate

    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams(orchard_count=orchards, total_area_mu=176_000.0 * orchards / 1546))
        # every gateway also stands in for a LoRaWAN soil probe (phase 3); the native topic ignores profiles
        conn.execute("UPDATE devices SET profile = %s", (CHIRPSTACK_PROFILE,))
        rows = conn.execute("SELECT d.device_id, d.orchard_id, d.dev_eui, o.elevation_m, o.lat, o.lon"
                            " FROM devices d JOIN orchards o USING (orchard_id) ORDER BY d.device_id").fetchall()
    cols = ("device_id", "orchard_id", "dev_eui", "elevation_m", "lat", "lon")
    return [dict(zip(cols, r, strict=True)) for r in rows]


class IngestProc:
    """``python -m yuncang ingest`` in a child process; peak RSS from /proc (VmHWM)."""

    def __init__(self, db: str, mqtt: str, prefix: str, extra: list[str]):
        env = {**os.environ, "YUNCANG_DATABASE_URL": db, "YUNCANG_MQTT_URL": mqtt,
               "YUNCANG_MQTT_TOPIC_PREFIX": prefix, "YUNCANG_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
        self.client_id = f"yc-bench-ingest-{secrets.token_hex(3)}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yuncang", "ingest", "--no-migrate", "--client-id", self.client_id,
             "--session-expiry", "60", "--refresh-every", "0", *extra],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.errors: list[str] = []
        self.subscribed = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            text = line.decode(errors="replace").strip()
            if os.environ.get("BENCH_VERBOSE"):
                print("ingest:", text[:300], file=sys.stderr)
            if "ingest subscribed" in text:
                self.subscribed.set()
            if '"level": "info"' in text:
                continue
            if len(self.errors) < 50:
                self.errors.append(text)

    def peak_rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def local_broker_pid(mqtt_url: str) -> int | None:
    """The Mosquitto process serving ``mqtt_url`` when it runs on this machine and is the only one
    (for its CPU time); None otherwise (remote broker, embedded amqtt, several Mosquittos)."""
    from urllib.parse import urlsplit

    if (urlsplit(mqtt_url).hostname or "") not in ("127.0.0.1", "localhost", "::1"):
        return None
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == "mosquitto":
                pids.append(int(d.name))
        except OSError:
            continue
    return pids[0] if len(pids) == 1 else None


def writer_backend_pids(db: str) -> list[int]:
    """The PostgreSQL backends of ingest's connections (same machine), for their CPU time."""
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                            " AND application_name = 'yuncang-ingest'").fetchall()
    return [int(r[0]) for r in rows]


def committed_messages(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT COALESCE(sum(messages), 0) FROM device_health").fetchone()
    conn.commit()
    return int(row[0]) if row else 0


async def wait_subscribed(mqtt_url: str, prefix: str, db: str, device: dict[str, Any], timeout: float = 60) -> None:
    """Publish a probe until ingest has committed it (the subscription is live)."""
    from ingest.testing import native_payload, native_topic, publish_all

    t = int(time.time()) - 3600
    probe = [(native_topic(device["orchard_id"], device["device_id"], prefix),
              native_payload(device["device_id"], [{"t": t}], seq=0))]
    t0 = time.monotonic()
    with psycopg.connect(db) as conn:
        while committed_messages(conn) == 0:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("ingest did not start consuming")
            await publish_all(mqtt_url, probe, client_prefix=f"yc-bench-probe-{secrets.token_hex(2)}")
            await asyncio.sleep(0.5)


async def publish_flow_controlled(mqtt_url: str, msgs: list[tuple[str, bytes]], db: str, base: int,
                                  connections: int, window: int, inflight: int, stall_s: float = 30.0,
                                  publisher: str = "raw", poll_s: float = 0.005) -> tuple[float, float]:
    """Publish everything, never more than ``window`` messages ahead of ingest's commits; returns the
    times (monotonic) when publishing started (connected, packets encoded) and when ingest had
    committed all of them. Ingest's commits are read from ``device_health`` every ``poll_s``.

    ``publisher``: ``raw`` sends PUBLISH packets encoded before the clock starts
    (:mod:`sim_sensors.mqtt_wire`, MQTT 3.1.1), so the simulated gateways take little of the CPU that
    the system under test shares with them; ``aiomqtt`` publishes through aiomqtt/paho (~70 µs of CPU
    per message here), for comparison."""
    import aiomqtt

    from ingest.service import MqttTarget
    from sim_sensors.mqtt_wire import PublishConnection

    t = MqttTarget.parse(mqtt_url)
    total = len(msgs)
    state = {"committed": 0, "next": 0, "stalled": 0}
    done = asyncio.Event()

    def poll() -> None:
        last, last_change = -1, time.monotonic()
        with psycopg.connect(db) as conn:
            while not done.is_set():
                state["committed"] = committed_messages(conn) - base
                if state["committed"] >= total:
                    done.set()
                    return
                if state["committed"] != last:
                    last, last_change = state["committed"], time.monotonic()
                elif time.monotonic() - last_change > stall_s:
                    # nothing committed for stall_s: messages were lost (broker queue overflow) or ingest died
                    state["stalled"] = 1
                    state["next"] = total  # stop publishing
                    done.set()
                    return
                time.sleep(poll_s)

    def may_send() -> bool:
        if state["stalled"]:
            raise RuntimeError(f"ingest stalled at {state['committed']} of {total} messages committed")
        if state["next"] - state["committed"] >= window:
            return False
        state["next"] += 1
        return True

    if publisher == "raw":
        conns = [await PublishConnection.open(t.host, t.port, f"yc-bench-pub-{secrets.token_hex(3)}-{k}",
                                              username=t.username, password=t.password)
                 for k in range(connections)]
        packets = [[conns[k].packet(topic, payload) for topic, payload in msgs[k::connections]]
                   for k in range(connections)]
        t_start = time.monotonic()
        poller = asyncio.create_task(asyncio.to_thread(poll))
        try:
            await asyncio.gather(*(c.send(p, inflight=inflight, may_send=may_send)
                                   for c, p in zip(conns, packets, strict=True)))
        finally:
            for c in conns:
                await c.close()
        await poller
        return t_start, time.monotonic()

    t_start = time.monotonic()
    poller = asyncio.create_task(asyncio.to_thread(poll))

    async def worker(k: int) -> None:
        async with aiomqtt.Client(t.host, t.port, username=t.username, password=t.password,
                                  identifier=f"yc-bench-pub-{secrets.token_hex(3)}-{k}",
                                  max_inflight_messages=inflight, timeout=120) as client:
            client.pending_calls_threshold = inflight + 10
            sem = asyncio.Semaphore(inflight)
            pending: set[asyncio.Task[None]] = set()

            async def one(topic: str, payload: bytes) -> None:
                try:
                    await client.publish(topic, payload, qos=1)
                finally:
                    sem.release()

            while state["next"] < total:
                while state["next"] - state["committed"] >= window:
                    await asyncio.sleep(0.005)
                await sem.acquire()
                i = state["next"]
                if i >= total:
                    sem.release()
                    break
                state["next"] = i + 1
                task = asyncio.create_task(one(*msgs[i]))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)

    await asyncio.gather(*(worker(k) for k in range(connections)))
    await poller
    if state["stalled"]:
        print(f"ingest stalled at {state['committed']} of {total} messages committed", file=sys.stderr)
    return t_start, time.monotonic()


# --------------------------------------------------------------------------------------------- phases


def render_day(devices: list[dict[str, Any]], day: dt.date, prefix: str, faults: bool) -> tuple[list[Any], Any]:
    from sim_sensors.faults import FaultConfig
    from sim_sensors.replay import replay_day

    stream, ledger = replay_day(devices, day, fmt="native", interval_s=300, samples_per_message=12,
                                faults=FaultConfig() if faults else FaultConfig.none(), seed=20200824,
                                topic_prefix=prefix)
    msgs = []
    invalid_distinct = 0  # invalid readings in distinct messages: one dead letter each (re-sends dedupe)
    for m in stream:
        msgs.append((m.topic, m.payload))
        if not m.duplicate:
            invalid_distinct += m.invalid_readings
    ledger.invalid_distinct = invalid_distinct  # type: ignore[attr-defined]
    return msgs, ledger


def single_reading_messages(devices: list[dict[str, Any]], n: int, prefix: str) -> list[tuple[str, bytes]]:
    """``n`` native messages with one reading each, round-robin over the fleet, distinct times."""
    from ingest.testing import native_topic

    start = int(time.time()) // 60 * 60 - 2 * 86400
    out = []
    for k in range(n):
        d = devices[k % len(devices)]
        t = start + (k // len(devices)) * 60
        body = (f'{{"v":1,"gw":"{d["device_id"]}","seq":{k},"sent_at":{t},'
                f'"samples":[{{"t":{t},"air_temp_c":{10 + (k % 200) / 10:.2f}}}]}}')
        out.append((native_topic(d["orchard_id"], d["device_id"], prefix), body.encode()))
    return out


def chirpstack_messages(devices: list[dict[str, Any]], n: int, prefix: str) -> list[tuple[str, bytes]]:
    """``n`` ChirpStack v4 uplinks of an EM500-SMTC (vendor key names and units), round-robin over the fleet,
    one per device and minute (3 days ago: times distinct from the other phases)."""
    from ingest.testing import chirpstack_payload, chirpstack_topic

    start = int(time.time()) // 60 * 60 - 3 * 86400
    out = []
    for k in range(n):
        d = devices[k % len(devices)]
        when = dt.datetime.fromtimestamp(start + (k // len(devices)) * 60, dt.UTC)
        obj = {"battery": 90 - k % 7, "temperature": 18.0 + (k % 50) / 10, "moisture": 25.0 + (k % 20) / 2,
               "electricity": 200 + k % 100}
        out.append((chirpstack_topic(d["dev_eui"], prefix=prefix),
                    chirpstack_payload(d["device_id"], d["dev_eui"], when, obj, f_cnt=k)))
    return out


def raw_copy_seconds(db: str, msgs: list[tuple[str, bytes]], devices: list[dict[str, Any]], prefix: str) -> dict[
        str, float]:
    """Time binary COPY of the readings ingest accepted from ``msgs`` into index-free scratch tables, in
    the stored form (wide sample rows, as ``samples`` without its key) and as narrow rows (one row per
    reading, the form stored before the wide rows); and, as the database's own ceiling for this
    schema, into the real ``samples`` (emptied first: daily partitions, primary key, rollup trigger)
    in batches of 2,000 sample rows (~20,000 readings, ingest's batch size). Decoding and pivoting are
    untimed; returns seconds per form and the readings (values) copied."""
    from ingest.decode import decode_message
    from ingest.samples import merge, write_rows
    from ingest.validate import DeviceCache, Validator

    cache = DeviceCache({d["device_id"]: d["orchard_id"] for d in devices},
                        {d["dev_eui"]: d["device_id"] for d in devices if d["dev_eui"]})
    v = Validator(cache)
    wide_s = narrow_s = keyed_s = 0.0
    values = 0
    everything: list[list[Any]] = []
    with psycopg.connect(db) as conn:
        conn.execute("CREATE TABLE bench_raw_narrow (device_id text NOT NULL, metric text NOT NULL,"
                     " time timestamptz NOT NULL, value double precision NOT NULL)")
        conn.execute("CREATE TABLE bench_raw_wide (LIKE samples)")  # columns and NOT NULLs, no key
        conn.commit()
        chunk = 400
        for i in range(0, len(msgs), chunk):
            readings, rows = [], []
            for topic, payload in msgs[i:i + chunk]:
                dec = decode_message(topic, payload, v, prefix)
                readings.extend(dec.readings)
                rows.extend(dec.rows)
            everything.extend(list(r) for r in rows)
            rows, kept = merge(rows)
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                write_rows(cur, "bench_raw_wide", rows)
            conn.commit()
            t1 = time.perf_counter()
            with conn.cursor() as cur, cur.copy(
                    "COPY bench_raw_narrow (device_id, metric, time, value) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["text", "text", "timestamptz", "float8"])
                for r in readings:
                    cp.write_row(r)
            conn.commit()
            t2 = time.perf_counter()
            wide_s += t1 - t0
            narrow_s += t2 - t1
            values += kept
        conn.execute("DROP TABLE bench_raw_narrow, bench_raw_wide")
        conn.execute("TRUNCATE samples, readings_dirty")
        conn.commit()
        keyed, keyed_values = merge(everything)  # one row per key across the day: no conflicts
        for i in range(0, len(keyed), 2000):
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                write_rows(cur, "samples", keyed[i:i + 2000])
            conn.commit()
            keyed_s += time.perf_counter() - t0
    return {"wide_s": wide_s, "narrow_s": narrow_s, "keyed_s": keyed_s, "values": values,
            "keyed_values": keyed_values}


def one_run(env: Env, a: argparse.Namespace, path: str | None = None) -> dict[str, Any]:
    db = env.new_database(path)
    procs: list[IngestProc] = []
    try:
        t_prep = time.perf_counter()
        devices = prepare_db(db, a.orchards)
        with psycopg.connect(db, autocommit=True) as conn:
            from yuncang.schema import storage_path
            from yuncang.tsdb_jobs import stop_scheduler

            ran_path = storage_path(conn)
            stop_scheduler(conn)  # no compression/refresh policy competes with the measured ingest
        prefix = f"ycbench-{secrets.token_hex(3)}/"
        day = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date() - dt.timedelta(days=7)
        t_gen = time.perf_counter()
        msgs, ledger = render_day(devices, day, prefix, faults=not a.clean)
        gen_s = time.perf_counter() - t_gen
        single = single_reading_messages(devices, a.single, prefix)
        chirp = chirpstack_messages(devices, a.chirpstack, prefix)
        prep_s = time.perf_counter() - t_prep

        # N processes on one shared subscription ($share/ingest/...): the product's way to add cores
        procs = [IngestProc(db, env.mqtt_url, prefix, ["--batch-readings", str(a.batch_readings),
                                                       "--receive-maximum", str(a.receive_maximum)])
                 for _ in range(a.ingest_processes)]
        for p in procs:
            if not p.subscribed.wait(60):
                raise RuntimeError("an ingest process did not subscribe")
        asyncio.run(wait_subscribed(env.mqtt_url, prefix, db, devices[0]))
        with psycopg.connect(db) as conn:
            base = committed_messages(conn)
            stored_before = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]

        # phase 1: batched day
        backends0 = {b: proc_cpu_s(b) for b in writer_backend_pids(db)}

        broker = local_broker_pid(env.mqtt_url)

        def cpu_now() -> tuple[float, float, float, float]:
            # a backend that connected during the phase (another process's writer) counts from zero
            backend = sum(proc_cpu_s(b) - backends0.get(b, 0.0) for b in {*backends0, *writer_backend_pids(db)})
            return (sum(p.cpu_s() for p in procs), backend, time.process_time(),
                    proc_cpu_s(broker) if broker else 0.0)

        cpu0 = cpu_now()
        t0, t_end = asyncio.run(publish_flow_controlled(env.mqtt_url, msgs, db, base, a.connections, a.window,
                                                        a.inflight, publisher=a.publisher, poll_s=a.poll_ms / 1000))
        e2e_s = t_end - t0
        cpu = tuple(x1 - x0 for x1, x0 in zip(cpu_now(), cpu0, strict=True))
        with psycopg.connect(db) as conn:
            stored = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0]) - stored_before  # type: ignore[index]
            dead = int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])  # type: ignore[index]
            base2 = committed_messages(conn)

        # phase 2: one reading per message
        ingest_cpu1 = sum(p.cpu_s() for p in procs)
        t1, t1_end = asyncio.run(publish_flow_controlled(env.mqtt_url, single, db, base2, a.connections,
                                                         a.window, a.inflight, publisher=a.publisher,
                                                         poll_s=a.poll_ms / 1000))
        single_s = t1_end - t1
        with psycopg.connect(db) as conn:
            stored_single = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0]) - stored_before - stored  # type: ignore[index]
            base3 = committed_messages(conn)

        # phase 3: single ChirpStack uplinks through a vendor device profile
        ingest_cpu2 = sum(p.cpu_s() for p in procs)
        t2, t2_end = asyncio.run(publish_flow_controlled(env.mqtt_url, chirp, db, base3, a.connections,
                                                         a.window, a.inflight, publisher=a.publisher,
                                                         poll_s=a.poll_ms / 1000))
        chirp_s = t2_end - t2
        ingest_cpu3 = sum(p.cpu_s() for p in procs)
        with psycopg.connect(db) as conn:
            stored_chirp = (int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]
                            - stored_before - stored - stored_single)
        rss = sum(p.peak_rss_mb() for p in procs)
        for p in procs:
            p.stop()
        ingest_errors = [e for p in procs for e in p.errors if '"level": "error"' in e][:5]
        procs = []

        raw = raw_copy_seconds(db, msgs, devices, prefix)
        expected = ledger.expected_stored
        e2e_rate = stored / e2e_s
        raw_rate = raw["values"] / raw["wide_s"]
        narrow_rate = raw["values"] / raw["narrow_s"]
        keyed_rate = raw["keyed_values"] / raw["keyed_s"]
        return {
            "storage_path": ran_path, "messages": ledger.messages, "readings_sent": ledger.readings_sent,
            "duplicate_readings": ledger.duplicate_readings, "invalid_readings": ledger.invalid_readings,
            "expected_stored": expected, "stored": stored, "dead_letters": dead,
            "dead_letters_expected": ledger.invalid_distinct,
            "count_exact": stored == expected and dead == ledger.invalid_distinct,
            "end_to_end_s": round(e2e_s, 2), "readings_per_s": round(e2e_rate),
            "messages_per_s_batched": round(ledger.messages / e2e_s),
            "raw_copy_readings": raw["values"], "raw_copy_readings_per_s": round(raw_rate),
            "ratio_to_raw_copy": round(e2e_rate / raw_rate, 3),
            "raw_copy_narrow_readings_per_s": round(narrow_rate),
            "ratio_to_raw_copy_narrow": round(e2e_rate / narrow_rate, 3),
            "db_ceiling_readings_per_s": round(keyed_rate), "ratio_to_db_ceiling": round(e2e_rate / keyed_rate, 3),
            "db_ceiling_over_raw_copy": round(keyed_rate / raw_rate, 3),
            "peak_rss_mb": round(rss, 1),
            "single_reading_messages": len(single), "single_stored": stored_single,
            "single_count_exact": stored_single == len(single),
            "single_reading_messages_per_s": round(len(single) / single_s),
            "chirpstack_messages": len(chirp), "chirpstack_stored": stored_chirp,
            "chirpstack_count_exact": stored_chirp == CHIRPSTACK_READINGS * len(chirp),
            "chirpstack_profile_messages_per_s": round(len(chirp) / chirp_s) if chirp else None,
            # CPU of the ingest process(es) per message: what the machine's load changes least
            "cpu_us_ingest_per_single_message": round(1e6 * (ingest_cpu2 - ingest_cpu1) / len(single), 1)
            if single else None,
            "cpu_us_ingest_per_chirpstack_message": round(1e6 * (ingest_cpu3 - ingest_cpu2) / len(chirp), 1)
            if chirp else None,
            "cpu_s_ingest_process": round(cpu[0], 1), "cpu_s_db_writer_backend": round(cpu[1], 1),
            "cpu_s_publisher": round(cpu[2], 1), "cpu_s_broker": round(cpu[3], 1) if broker else None,
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "render_day_s": round(gen_s, 1), "setup_s": round(prep_s, 1), "ingest_errors": ingest_errors,
        }
    finally:
        for p in procs:
            p.stop()
        env.drop_database(db)


_MEDIANS = ("readings_per_s", "ratio_to_raw_copy", "peak_rss_mb", "single_reading_messages_per_s",
            "chirpstack_profile_messages_per_s", "cpu_us_ingest_per_single_message",
            "cpu_us_ingest_per_chirpstack_message",
            "raw_copy_readings_per_s", "end_to_end_s", "messages_per_s_batched", "raw_copy_narrow_readings_per_s",
            "ratio_to_raw_copy_narrow", "db_ceiling_readings_per_s", "ratio_to_db_ceiling",
            "db_ceiling_over_raw_copy", "cpu_s_ingest_process", "cpu_s_db_writer_backend", "cpu_s_publisher")


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs' figures (the machine is shared and noisy), count exactness over all runs."""
    med: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in _MEDIANS}
    brokers = [r["cpu_s_broker"] for r in runs if r["cpu_s_broker"] is not None]
    med["cpu_s_broker"] = statistics.median(brokers) if brokers else None
    med["count_exact"] = all(r["count_exact"] and r["single_count_exact"] and r["chirpstack_count_exact"] for r in runs)
    med["readings_stored"] = runs[0]["stored"]
    med["storage_path"] = runs[0]["storage_path"]
    return med


def run(a: argparse.Namespace) -> dict[str, Any]:
    env = Env()
    paths = [None] if a.paths == "server" else a.paths.split(",")
    runs: list[dict[str, Any]] = []
    by_path: dict[str, dict[str, Any]] = {}
    try:
        for path in paths:
            rs = [one_run(env, a, path) for _ in range(a.runs)]
            runs.extend(rs)
            by_path[rs[0]["storage_path"]] = medians(rs)
    finally:
        env.close()
    # goals are held on the first path measured (production's TimescaleDB when asked for first)
    med = next(iter(by_path.values()))
    meets = (med["count_exact"] and med["readings_per_s"] >= GOALS["readings_per_s"]
             and med["ratio_to_db_ceiling"] >= GOALS["ratio_to_db_ceiling"]
             and med["peak_rss_mb"] < GOALS["peak_rss_mb"]
             and med["single_reading_messages_per_s"] >= GOALS["single_reading_messages_per_s"]
             and med["chirpstack_profile_messages_per_s"] >= GOALS["chirpstack_profile_messages_per_s"])
    ratios = {}
    if {"timescaledb", "postgresql"} <= set(by_path):
        ts, pg = by_path["timescaledb"], by_path["postgresql"]
        ratios = {f"timescaledb_over_postgresql_{k}": round(ts[k] / pg[k], 3) for k in
                  ("readings_per_s", "single_reading_messages_per_s", "db_ceiling_readings_per_s", "peak_rss_mb")}
    return {
        "benchmark": "ingest", "orchards": a.orchards, "runs": a.runs, "ingest_processes": a.ingest_processes,
        "publisher": a.publisher,
        "services": "real PostgreSQL + Mosquitto" if env.real else "embedded",
        **{k: med[k] for k in (*_MEDIANS, "cpu_s_broker", "readings_stored", "count_exact", "storage_path")},
        "by_path": by_path, **ratios,
        "goals": {"readings_per_s_min": GOALS["readings_per_s"],
                  "ratio_to_db_ceiling_min": GOALS["ratio_to_db_ceiling"],
                  "peak_rss_mb_max": GOALS["peak_rss_mb"],
                  "single_reading_messages_per_s_min": GOALS["single_reading_messages_per_s"],
                  "chirpstack_profile_messages_per_s_min": GOALS["chirpstack_profile_messages_per_s"],
                  "count_exact": True, "held_on": med["storage_path"]},
        "meets_goals": meets,
        "per_run": runs,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__.split("\n")[0])
    p.add_argument("--orchards", type=int, default=1546)
    p.add_argument("--single", type=int, default=30_000, help="messages in the one-reading-per-message phase")
    p.add_argument("--chirpstack", type=int, default=30_000,
                   help="ChirpStack v4 uplinks (one vendor-profile message each) in phase 3")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--paths", default="server",
                   help="storage paths measured on the one server: 'server' (the path it gives), or a list such as"
                        " 'timescaledb,postgresql' (plain pinned on the same server); goals use the first")
    p.add_argument("--connections", type=int, default=2, help="publisher MQTT connections")
    p.add_argument("--inflight", type=int, default=200, help="unacknowledged publishes per connection")
    p.add_argument("--window", type=int, default=2000, help="max messages published ahead of ingest commits")
    p.add_argument("--ingest-processes", type=int, default=1,
                   help="yuncang ingest processes sharing the subscription (peak RSS and CPU are summed)")
    p.add_argument("--batch-readings", type=int, default=20_000)
    p.add_argument("--receive-maximum", type=int, default=4000)
    p.add_argument("--clean", action="store_true", help="no simulated faults")
    p.add_argument("--poll-ms", type=float, default=5.0,
                   help="how often the publisher reads ingest's committed message count (flow control and the clock)")
    p.add_argument("--publisher", choices=["raw", "aiomqtt"], default="raw",
                   help="raw: PUBLISH packets encoded before the clock (sim_sensors.mqtt_wire); aiomqtt: per-message"
                        " publish calls through aiomqtt/paho")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    result = run(a)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
