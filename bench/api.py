"""``python -m bench api``: the busiest API reads at 100 concurrent clients on loopback.

Setup: a fresh database (on ``YUNCANG_DATABASE_URL``'s server, else an embedded PostgreSQL) with the
1,546-orchard registry, the demo users, and sensor readings for ``--orchards`` orchards over ``--days``
days every 15 minutes, written to ingest's raw table and rolled up with ``ingest.rollups.refresh``
(the same path production data takes). The app runs under uvicorn in a **separate process**
(``--workers`` of them); the load generator is a minimal HTTP/1.1 keep-alive client on uvloop with an
``asyncio.Protocol`` per connection that parses only the status line and ``content-length`` (so its own
CPU cost stays small on a 2-core machine: ``loadgen_cpu_share`` reports it, with the server processes'
share and the whole machine's busy share), ``--clients`` connections each sending back-to-back
requests. Every response must be a complete ``200``; anything else is counted in ``errors``. Clients
send ``Accept-Encoding: gzip`` as browsers do (``--no-gzip`` to turn off); ``--cache-ttl`` sets the
server's response-cache TTL (``0``: every request reads the database).

Scenarios (each run separately for ``--seconds``; ``--runs`` times; medians reported):
``conditions`` (an orchard's latest conditions), ``series_7d`` (3 metrics, hourly buckets),
``series_365d`` (3 metrics, daily buckets), ``alerts`` (a page of alerts), ``orchards`` (a page of
orchards), and ``me`` (who am I: no database work, the framework's floor on this machine).
Latencies are client-observed wall times in ms; throughput in requests/s.
Goals: p99 < 100 ms for ``conditions`` and ``series_7d`` in the closed loop (``meets_goals``; the
strict reading: 100 clients with no think time saturate the server). Each scenario is also run
*paced* (``--paced-rps``, default 200 req/s offered by the same 100 connections, i.e. each client
one request every 0.5 s) to show the latency users see below saturation; reported, not a goal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import psycopg

GOAL_P99_MS = 100.0
GOAL_SCENARIOS = ("conditions", "series_7d")


def app_factory() -> Any:
    """uvicorn ``--factory`` entry point: the app on ``BENCH_DATABASE_URL``."""
    from yuncang.app import create_app
    from yuncang.db import make_pool
    from yuncang.settings import Settings

    url = os.environ["BENCH_DATABASE_URL"]
    pool = make_pool(url, min_size=4, max_size=int(os.environ.get("BENCH_POOL", "16")), name="bench-api")
    return create_app(Settings(database_url=url), pool)


# ----------------------------------------------------------------------------- data


def prepare(url: str, orchards: int, days: int) -> dict[str, Any]:
    """Migrate, seed, add demo users and sensor data; returns the orchard ids that carry data."""
    from ingest import rollups
    from ingest.samples import store_readings
    from ingest.storage import ensure_partitions
    from registry.seed import SeedParams, seed
    from yuncang.auth import seed_demo_users
    from yuncang.migrations import migrate

    t0 = time.perf_counter()
    migrate(url)
    with psycopg.connect(url) as conn:
        seed(conn, SeedParams())
        seed_demo_users(conn)
        conn.commit()
        devs = conn.execute(
            "SELECT d.device_id, d.orchard_id FROM devices d ORDER BY d.device_id LIMIT %s", (orchards,)
        ).fetchall()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=days)
        ensure_partitions(conn, start, end + timedelta(hours=1))
        conn.commit()
        n = 0
        step = timedelta(minutes=15)
        rows: list[tuple[str, str, datetime, float]] = []
        for k, (dev, _oid) in enumerate(devs):
            t = start
            while t < end:
                h = (t.hour + 8) % 24 + t.minute / 60
                d = math.sin((h - 9) / 24 * 2 * math.pi)
                for m, v in (
                    ("air_temp_c", 17 + 6 * d + k % 3),
                    ("air_rh_pct", 70 - 15 * d),
                    ("soil_vwc_10cm", 0.25 + 0.01 * (k % 5)),
                    ("soil_vwc_30cm", 0.3),
                    ("soil_temp_10cm_c", 16 + 2 * d),
                    ("soil_temp_30cm_c", 15.5),
                    ("rain_mm", 0.5 if h < 1 else 0.0),
                    ("leaf_wetness_pct", 30.0),
                    ("solar_wm2", max(0.0, 800 * d)),
                    ("wind_ms", 1.2),
                ):
                    rows.append((dev, m, t, float(v)))
                    n += 1
                t += step
        store_readings(conn, rows)
        conn.execute(
            """INSERT INTO device_health (device_id, first_seen_at, last_seen_at, last_reading_at, messages, readings)
               SELECT device_id, min(time), max(time), max(time), count(*) / 10, count(*) FROM readings
               GROUP BY device_id ON CONFLICT (device_id) DO NOTHING"""
        )
        conn.commit()
        t1 = time.perf_counter()
        rollups.refresh(conn)
        conn.execute("ANALYZE")
        conn.commit()
    return {
        "orchard_ids": [o for _, o in devs],
        "readings": n,
        "load_s": round(t1 - t0, 1),
        "rollup_s": round(time.perf_counter() - t1, 1),
    }


# ----------------------------------------------------------------------------- load generator


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending GETs back to back (or paced), parsing only what it must:
    the status code, ``content-length`` (or a chunked body's end). Every response must be ``200`` with its
    whole body; anything else is counted in ``errors`` (status, or 0 for a malformed response)."""

    def __init__(
        self,
        requests: list[bytes],
        rng: random.Random,
        until: float,
        lat: list[float],
        errors: list[int],
        done: asyncio.Future[None],
        gap: float,
    ) -> None:
        self.requests, self.rng, self.until, self.lat, self.errors = requests, rng, until, lat, errors
        self.done, self.gap = done, gap
        self.loop = asyncio.get_running_loop()
        self.buf = b""
        self.need = -1  # bytes of the whole response once its head is parsed; -2: chunked
        self.status = 0
        self.t = 0.0
        self.nxt = time.perf_counter() + rng.random() * gap
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        self._schedule()

    def _schedule(self) -> None:
        now = time.perf_counter()
        if now >= self.until:
            assert self.transport is not None
            self.transport.close()
            return
        if self.gap:
            delay = self.nxt - now
            self.nxt += self.gap
            if delay > 0:
                self.loop.call_later(delay, self._send)
                return
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.t = time.perf_counter()
        self.transport.write(self.requests[self.rng.randrange(len(self.requests))])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need == -1:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            try:
                self.status = int(head[9:12])
            except ValueError:
                self.status = 0
            i = head.find(b"\r\ncontent-length:")
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                self.need = end + 4 + int(head[i + 17 : j if j > 0 else len(head)])
            elif b"\r\ntransfer-encoding: chunked" in head:
                self.need = -2
            else:
                self.need = end + 4  # no body (304, 204)
        if self.need == -2:
            if not self.buf.endswith(b"\r\n0\r\n\r\n"):
                return
        elif len(self.buf) < self.need:
            return
        elif len(self.buf) > self.need:
            self.status = 0  # more bytes than announced: a broken response
        self.lat.append((time.perf_counter() - self.t) * 1000)
        if self.status != 200:
            self.errors.append(self.status)
        self.buf, self.need = b"", -1
        self._schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.need != -1 or self.buf:
            self.errors.append(0)  # cut off mid-response
        if not self.done.done():
            self.done.set_result(None)


async def _run_load(
    host: str,
    port: int,
    paths: list[str],
    token: str,
    clients: int,
    seconds: float,
    seed: int,
    per_client_rps: float | None = None,
    gzip: bool = True,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    coding = "Accept-Encoding: gzip\r\n" if gzip else ""
    reqs = [
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Accept: application/json\r\n{coding}\r\n".encode()
        for p in paths
    ]
    lat: list[float] = []
    errors: list[int] = []
    gap = 1.0 / per_client_rps if per_client_rps else 0.0
    dones = [loop.create_future() for _ in range(clients)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    until = t0 + seconds
    for i in range(clients):
        rng = random.Random(seed + i)
        await loop.create_connection(partial(_Client, reqs, rng, until, lat, errors, dones[i], gap), host, port)
    await asyncio.wait_for(asyncio.gather(*dones), seconds + 60)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")

    return {
        "requests": len(lat),
        "errors": len(errors),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "req_per_s": len(lat) / wall,
        "loadgen_cpu_share": cpu / wall / (os.cpu_count() or 1),
    }


def _load(*args: Any, **kw: Any) -> dict[str, Any]:
    """:func:`_run_load` on a uvloop event loop (the generator's own CPU cost stays small)."""
    try:
        import uvloop

        return uvloop.run(_run_load(*args, **kw))
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(_run_load(*args, **kw))


def scenarios(orchard_ids: list[str]) -> dict[str, list[str]]:
    return {
        "me": ["/api/v1/me"],  # floor: auth from the token cache, no database work
        "conditions": [f"/api/v1/orchards/{o}/conditions" for o in orchard_ids],
        "series_7d": [
            f"/api/v1/orchards/{o}/series?days=7&metric=air_temp_c&metric=soil_vwc_10cm&metric=rain_mm"
            for o in orchard_ids
        ],
        "series_365d": [
            f"/api/v1/orchards/{o}/series?days=365&metric=air_temp_c&metric=soil_vwc_10cm&metric=rain_mm"
            for o in orchard_ids
        ],
        "alerts": ["/api/v1/alerts?limit=50"],
        "orchards": [f"/api/v1/orchards?limit=50&offset={k * 50}" for k in range(31)],
    }


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("uvicorn did not come up")


def _token(port: int) -> str:
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/token",
        method="POST",
        data=json.dumps({"username": "admin", "password": "plum-admin"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.loads(r.read())["token"])


def run(
    *,
    orchards: int = 50,
    days: int = 10,
    clients: int = 100,
    seconds: float = 8.0,
    runs: int = 3,
    workers: int = 1,
    only: list[str] | None = None,
    database_url: str | None = None,
    paced_rps: float | None = 200.0,
    gzip: bool = True,
    cache_ttl_s: float | None = None,
    storage_path: str | None = None,
) -> dict[str, Any]:
    """Set up, serve in a child uvicorn process, load each scenario ``runs`` times; medians per scenario.

    ``storage_path='postgresql'`` pins the plain path even on a server with TimescaleDB (the migration
    runner honours a recorded ``storage_path``), so both paths can be compared on one server."""
    from yuncang.settings import Settings

    server_url = database_url or os.environ.get("YUNCANG_DATABASE_URL")
    embedded = None
    if not server_url:
        from yuncang.embedded import EmbeddedPostgres

        tmp = Path(tempfile.mkdtemp(prefix="yc-bench-pg-"))
        os.chmod(tmp, 0o777)
        embedded = EmbeddedPostgres(tmp / "pg", dbname="postgres")
        server_url = embedded.start()
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"yc_bench_api_{os.getpid()}"
    params = conninfo_to_dict(server_url)
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    params["dbname"] = name
    url = make_conninfo("", **params)
    if storage_path == "postgresql":
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE yuncang_meta (key text PRIMARY KEY, value text NOT NULL)")
            c.execute("INSERT INTO yuncang_meta VALUES ('storage_path', 'postgresql')")
    proc = None
    try:
        setup = prepare(url, orchards, days)
        with psycopg.connect(url, autocommit=True) as c:
            from yuncang.schema import storage_path as recorded_path
            from yuncang.tsdb_jobs import stop_scheduler

            ran_path = recorded_path(c)
            stop_scheduler(c)  # no policy job competes with the measured reads
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        env = {**os.environ, "BENCH_DATABASE_URL": url}
        if cache_ttl_s is not None:
            env["YUNCANG_API_CACHE_TTL_S"] = str(cache_ttl_s)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.api:app_factory",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )
        _wait_up(port, proc)
        token = _token(port)
        sc = scenarios(setup["orchard_ids"])
        names = [n for n in sc if not only or n in only]
        results: dict[str, Any] = {}
        server = psutil.Process(proc.pid)

        def measured(paths: list[str], seed: int, per_client_rps: float | None) -> dict[str, Any]:
            """One run, with the CPU shares (of all cores) of the server processes and of the machine."""
            family = [server, *server.children(recursive=True)]
            srv0 = sum(sum(p.cpu_times()[:2]) for p in family)
            m0 = psutil.cpu_times()
            r = _load("127.0.0.1", port, paths, token, clients, seconds, seed, per_client_rps, gzip=gzip)
            m1 = psutil.cpu_times()
            srv1 = sum(sum(p.cpu_times()[:2]) for p in family)
            total = sum(m1) - sum(m0)
            r["server_cpu_share"] = (srv1 - srv0) / (seconds * (os.cpu_count() or 1))
            r["machine_busy_share"] = 1 - (m1.idle - m0.idle) / total if total > 0 else float("nan")
            return r

        def summary(per: list[dict[str, Any]]) -> dict[str, Any]:
            def med(k: str, nd: int = 1) -> float:
                return round(statistics.median(r[k] for r in per), nd)

            return {
                "p50_ms": med("p50_ms"),
                "p99_ms": med("p99_ms"),
                "req_per_s": med("req_per_s"),
                "errors": sum(r["errors"] for r in per),
                "requests": sum(r["requests"] for r in per),
                "runs_p99_ms": [round(r["p99_ms"], 1) for r in per],
                "loadgen_cpu_share": med("loadgen_cpu_share", 3),
                "server_cpu_share": med("server_cpu_share", 3),
                "machine_busy_share": med("machine_busy_share", 3),
            }

        for n in names:
            _load("127.0.0.1", port, sc[n], token, min(clients, 10), 1.0, 0)  # warm-up
            results[n] = summary([measured(sc[n], 1000 * r, None) for r in range(runs)])
            if paced_rps:
                results[n]["paced"] = {
                    "offered_req_per_s": paced_rps,
                    **summary([measured(sc[n], 2000 * r, paced_rps / clients) for r in range(runs)]),
                }
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(server_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if embedded is not None:
            embedded.stop()
    goals = {f"{n}_p99_ms_max": GOAL_P99_MS for n in GOAL_SCENARIOS if n in results}
    meets = all(
        results[n]["p99_ms"] < GOAL_P99_MS and results[n]["errors"] == 0 for n in GOAL_SCENARIOS if n in results
    )
    return {
        "bench": "api",
        "storage_path": ran_path,
        "clients": clients,
        "seconds_per_run": seconds,
        "runs": runs,
        "uvicorn_workers": workers,
        "accept_gzip": gzip,
        "api_cache_ttl_s": cache_ttl_s if cache_ttl_s is not None else Settings().api_cache_ttl_s,
        "orchards_with_data": orchards,
        "days_of_data": days,
        "readings": setup["readings"],
        "setup_load_s": setup["load_s"],
        "setup_rollup_s": setup["rollup_s"],
        "scenarios": results,
        "goals": goals,
        "meets_goals": meets,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench api", description=__doc__.split("\n")[0])
    ap.add_argument("--orchards", type=int, default=50, help="orchards given sensor data")
    ap.add_argument("--days", type=int, default=10, help="days of 15-minute readings")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=8.0, help="length of one run of one scenario")
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario (medians reported)")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--only", nargs="*", help="scenarios to run")
    ap.add_argument(
        "--paced-rps",
        type=float,
        default=200.0,
        help="also run each scenario with the clients paced to this total rate, req/s (0: skip)",
    )
    ap.add_argument("--no-gzip", action="store_true", help="clients do not send Accept-Encoding: gzip")
    ap.add_argument("--paths", default="server",
                    help="'server' (the path the server gives) or e.g. 'timescaledb,postgresql' (plain pinned on the"
                         " same server); goals use the first")
    ap.add_argument("--cache-ttl", type=float, default=None, help="server's YUNCANG_API_CACHE_TTL_S (0: no cache)")
    a = ap.parse_args(argv)
    outs = [run(
        orchards=a.orchards,
        days=a.days,
        clients=a.clients,
        seconds=a.seconds,
        runs=a.runs,
        workers=a.workers,
        only=a.only,
        paced_rps=a.paced_rps,
        gzip=not a.no_gzip,
        cache_ttl_s=a.cache_ttl,
        storage_path=path,
    ) for path in ([None] if a.paths == "server" else a.paths.split(","))]
    # goals are held on the first path measured; the others are reported beside it
    out = outs[0] | {"by_path": {o["storage_path"]: {n: {k: r[k] for k in ("p50_ms", "p99_ms", "req_per_s", "errors")}
                                                     for n, r in o["scenarios"].items()} for o in outs}}
    print(json.dumps(out, ensure_ascii=False))
    return 0  # the verdict is meets_goals in the JSON, like the other benchmarks
