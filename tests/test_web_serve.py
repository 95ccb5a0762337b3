"""``yuncang serve --workers 2``: two web worker processes answer on one port and stop with the parent."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from yuncang.auth import create_user

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_web_workers_and_stops_them(db_url: str, mqtt_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url) as conn:
        create_user(conn, username="serve-admin", password="serve-lantern-58", role="admin")
        conn.commit()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNCANG_")}
    env.update({"YUNCANG_DATABASE_URL": db_url, "YUNCANG_MQTT_URL": mqtt_url, "YUNCANG_HTTP_PORT": str(port)})
    proc = subprocess.Popen([sys.executable, "-m", "yuncang", "serve", "--workers", "2", "--for", "60"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        token = None
        while time.monotonic() < deadline and proc.poll() is None and token is None:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/auth/token", method="POST",
                    data=json.dumps({"username": "serve-admin", "password": "serve-lantern-58"}).encode(),
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    token = json.loads(r.read())["token"]
            except OSError:
                time.sleep(0.5)
        assert token, proc.stdout.read() if proc.poll() is not None and proc.stdout else "serve never answered"
        # every connection (each lands on either worker) is answered, with the same data
        for _ in range(6):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/orchards?limit=1",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert json.loads(r.read())["total"] == 1546
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) >= 2, [c.cmdline() for c in psutil.Process(proc.pid).children(recursive=True)]
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:]
        assert '"web_workers": 2' in out and "stopped cleanly" in out
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
