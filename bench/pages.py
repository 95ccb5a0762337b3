"""``python -m bench pages``: what a grower's phone downloads and how soon it shows something, on a slow
3G network, in Chromium.

Setup as ``bench api`` (a fresh database with the registry, demo users and ``--days`` of 15-minute
readings for a few orchards, rolled up), the app under uvicorn in a separate process. Chromium (Debian's
``/usr/bin/chromium`` or ``YUNCANG_CHROMIUM``) opens ``/grower`` at 390×844 as the grower of an orchard
with data, throttled with CDP ``Network.emulateNetworkConditions`` to ``--kbit`` kbit/s each way and
``--rtt-ms`` round-trip latency (default 400 kbit/s, 400 ms: a slow 3G profile).

* **first visit**: empty cache, no service worker (a new browser context holding only the session cookie);
* **repeat visit**: the same context opened again later (HTTP cache and service worker in place).

Bytes are counted twice: by CDP on the page (``Network.loadingFinished.encodedDataLength``) and on the
wire by a counting TCP relay between Chromium and uvicorn (``wire_kb``), which also sees what the service
worker fetches (CDP on the page does not; nor does the page's throttling apply to the worker's own
fetches, so the repeat visit's page HTML travels unthrottled: ``sw_fetch_throttled`` says so).
Time to first content is the page's ``first-contentful-paint`` from navigation start; ``charts_ms`` is
when every chart has been drawn. Goals: first visit ≤ 500 KB, repeat ≤ 50 KB (wire), first content
< 5 s on the first visit. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.api import _wait_up, prepare

GOAL_FIRST_KB = 500.0
GOAL_REPEAT_KB = 50.0
GOAL_FCP_MS = 5000.0
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]


class CountingRelay:
    """A TCP relay 127.0.0.1:port -> target counting bytes each way (thread; asyncio streams)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = 0  #: bytes server -> browser
        self.up = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, down: bool) -> None:
            try:
                while data := await r.read(65536):
                    if down:
                        self.down += len(data)
                    else:
                        self.up += len(data)
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(pipe(cr, sw, False), pipe(sr, cw, True))

        async def main() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            self._ready.set()
            async with server:
                await server.serve_forever()

        try:
            self._loop.run_until_complete(main())
        except RuntimeError:
            pass

    def reset(self) -> None:
        self.down = self.up = 0

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


def _visit(ctx: Any, url: str, kbit: float, rtt_ms: float, relay: CountingRelay) -> dict[str, Any]:
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": rtt_ms,
                                                  "downloadThroughput": kbit * 1000 / 8,
                                                  "uploadThroughput": kbit * 1000 / 8})
    got: dict[str, float] = {}
    cdp.on("Network.loadingFinished", lambda e: got.__setitem__(e["requestId"], e["encodedDataLength"]))
    relay.reset()
    t0 = time.perf_counter()
    page.goto(url, wait_until="load", timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('.plot').length === "
                           "document.querySelectorAll('.plot.js-plotly-plot').length", timeout=120_000)
    charts_ms = (time.perf_counter() - t0) * 1000
    page.wait_for_timeout(1500)  # late requests (service worker install, icon) are counted too
    fcp = page.evaluate("() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
    load = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
    out = {"page_kb": round(sum(got.values()) / 1024, 1), "wire_kb": round(relay.down / 1024, 1),
           "requests": len(got), "first_content_ms": round(fcp or float("nan"), 0), "load_ms": round(load, 0),
           "charts_ms": round(charts_ms, 0)}
    page.close()
    return out


def run(*, days: int = 10, kbit: float = 400.0, rtt_ms: float = 400.0, runs: int = 3,
        database_url: str | None = None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    chromium = os.environ.get("YUNCANG_CHROMIUM", "/usr/bin/chromium")
    if not (Path(chromium).exists() or shutil.which(chromium)):
        raise SystemExit(f"Chromium not found at {chromium} (apt-get install chromium, or set YUNCANG_CHROMIUM)")
    server_url = database_url or os.environ.get("YUNCANG_DATABASE_URL")
    embedded = None
    if not server_url:
        from yuncang.embedded import EmbeddedPostgres

        tmp = Path(tempfile.mkdtemp(prefix="yc-bench-pg-"))
        os.chmod(tmp, 0o777)
        embedded = EmbeddedPostgres(tmp / "pg", dbname="postgres")
        server_url = embedded.start()
    name = f"yc_bench_pages_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = make_conninfo("", **params)
    proc = relay = None
    try:
        setup = prepare(url, 5, days)
        with psycopg.connect(url) as c:
            grower = c.execute("SELECT grower_id FROM orchards WHERE orchard_id = %s",
                               (setup["orchard_ids"][0],)).fetchone()[0]  # type: ignore[index]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.api:app_factory", "--factory", "--host",
                                 "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                                env={**os.environ, "BENCH_DATABASE_URL": url})
        _wait_up(port, proc)
        relay = CountingRelay(port)
        base = f"http://127.0.0.1:{relay.port}"
        first: list[dict[str, Any]] = []
        repeat: list[dict[str, Any]] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            login = browser.new_context()
            lp = login.new_page()
            lp.goto(f"{base}/login")
            lp.fill("#username", grower)
            lp.fill("#password", "plum-grower")
            lp.click("#sign-in")
            lp.wait_for_load_state("load")
            cookies = login.cookies()
            login.close()
            for _ in range(runs):
                ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
                ctx.add_cookies(cookies)
                first.append(_visit(ctx, f"{base}/grower", kbit, rtt_ms, relay))
                repeat.append(_visit(ctx, f"{base}/grower", kbit, rtt_ms, relay))
                ctx.close()
            browser.close()
    finally:
        if relay is not None:
            relay.stop()
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

    def med(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {k: statistics.median(r[k] for r in rows) for k in rows[0]} | {"runs": rows}

    f, r = med(first), med(repeat)
    meets = (f["wire_kb"] <= GOAL_FIRST_KB and r["wire_kb"] <= GOAL_REPEAT_KB
             and f["first_content_ms"] < GOAL_FCP_MS)
    return {"bench": "pages", "page": "/grower", "viewport": "390x844", "network_kbit_s": kbit, "rtt_ms": rtt_ms,
            "throttling": "CDP Network.emulateNetworkConditions (page target)", "sw_fetch_throttled": False,
            "first_visit": f, "repeat_visit": r,
            "goals": {"first_visit_wire_kb_max": GOAL_FIRST_KB, "repeat_visit_wire_kb_max": GOAL_REPEAT_KB,
                      "first_visit_first_content_ms_max": GOAL_FCP_MS},
            "meets_goals": meets}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench pages", description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=10, help="days of 15-minute readings")
    ap.add_argument("--kbit", type=float, default=400.0, help="throughput each way, kbit/s")
    ap.add_argument("--rtt-ms", type=float, default=400.0, help="round-trip latency, ms")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args(argv)
    print(json.dumps(run(days=a.days, kbit=a.kbit, rtt_ms=a.rtt_ms, runs=a.runs), ensure_ascii=False))
    return 0
