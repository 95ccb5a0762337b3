"""Embedded services start, answer, and stop without leaving processes; `yuncang demo --for` exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiomqtt
import psutil
import psycopg

from yuncang.embedded import EmbeddedBroker, EmbeddedPostgres, free_port


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_embedded_postgres_starts_and_stops(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)
    pg = EmbeddedPostgres(tmp_path / "pg")
    url = pg.start()
    pid = pg.pid()
    assert pid and not _gone(pid)
    with psycopg.connect(url) as c:
        assert c.execute("SELECT current_database()").fetchone()[0] == "yuncang"
    children = [p.pid for p in psutil.Process(pid).children(recursive=True)]
    pg.stop()
    assert _gone(pid) and all(_gone(c) for c in children)


def test_embedded_broker_delivers_persistent_session_messages() -> None:
    """A QoS 1 message published while a persistent subscriber is away is delivered when it returns."""
    with EmbeddedBroker() as b:
        pid = b.pid()
        assert pid

        async def go() -> bytes:
            kw = {"hostname": "127.0.0.1", "port": b.port, "username": "yuncang", "password": "yuncang"}
            async with aiomqtt.Client(identifier="yc-sub", clean_session=False, **kw) as sub:  # type: ignore[arg-type]
                await sub.subscribe("t/#", qos=1)
            async with aiomqtt.Client(identifier="yc-pub", **kw) as pub:  # type: ignore[arg-type]
                await pub.publish("t/x", b"while-away", qos=1)
            async with aiomqtt.Client(identifier="yc-sub", clean_session=False, **kw) as sub:  # type: ignore[arg-type]
                async with asyncio.timeout(10):
                    async for m in sub.messages:
                        return bytes(m.payload)  # type: ignore[arg-type]
            return b""

        assert asyncio.run(go()) == b"while-away"
    assert _gone(pid)


def test_demo_runs_for_seconds_and_exits_cleanly(tmp_path: Path) -> None:
    """The README's first command on embedded services: health answers, orchards listed, exit 0, nothing left."""
    os.chmod(tmp_path, 0o777)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNCANG_")}
    env.update({"YUNCANG_DATA_DIR": str(tmp_path / "data"), "YUNCANG_HTTP_PORT": str(port)})
    proc = subprocess.Popen([sys.executable, "-m", "yuncang", "demo", "--for", "45"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    health = page = None
    family: list[int] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                health = r.read().decode()
            # the published demo admin account (docs/users.md) signs in and sees the orchard list
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/auth/token", method="POST",
                                         data=json.dumps({"username": "admin", "password": "plum-admin"}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                token = json.loads(r.read())["token"]
            req = urllib.request.Request(f"http://127.0.0.1:{port}/orchards",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                page = r.read().decode()
            family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            family.append(int((tmp_path / "data" / "pg" / "postmaster.pid").read_text().split()[0]))
            break
        except OSError:
            time.sleep(0.5)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]
    assert health and '"orchards":1546' in health, out[-3000:]
    assert page and "WS-0001" in page and "果园" in page
    # the demo's own children (broker) and its embedded postgres are gone
    assert family and all(_gone(p) for p in family), [p for p in family if not _gone(p)]


def test_demo_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) stops web, broker and PostgreSQL."""
    import signal

    os.chmod(tmp_path, 0o777)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNCANG_")}
    env.update({"YUNCANG_DATA_DIR": str(tmp_path / "data"), "YUNCANG_HTTP_PORT": str(port)})
    proc = subprocess.Popen([sys.executable, "-m", "yuncang", "demo"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    up = False
    while time.monotonic() < deadline and proc.poll() is None and not up:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                up = True
        except OSError:
            time.sleep(0.5)
    assert up, "demo never answered"
    family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    pg_pid = int((tmp_path / "data" / "pg" / "postmaster.pid").read_text().split()[0])
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    assert "stopped cleanly" in out
    assert all(_gone(p) for p in [*family, pg_pid])
