"""Throwaway native services on free ports: a Mosquitto and a PostgreSQL (with TimescaleDB when its
library is installed) that a test or the production rehearsal may stop, restart and configure — never
the machine's shared ones.

Both run as child processes from binaries on this machine (``mosquitto``; PostgreSQL 15's ``initdb``,
``pg_ctl``, ``postgres`` under ``/usr/lib/postgresql/15/bin`` or on ``PATH``). As root, PostgreSQL runs
as the ``postgres`` system user (initdb refuses root) and Mosquitto keeps root when the config says
``user root`` (it otherwise drops to ``mosquitto``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from yuncang.embedded import free_port

PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None)


def pg_bin(name: str) -> str | None:
    for d in PG_BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def timescaledb_installed() -> bool:
    """TimescaleDB's library is installed for the PostgreSQL whose ``pg_config`` we found."""
    pg_config = pg_bin("pg_config")
    if pg_config is None or pg_bin("initdb") is None:
        return False
    libdir = subprocess.run([pg_config, "--pkglibdir"], capture_output=True, text=True).stdout.strip()
    return bool(libdir) and Path(libdir, "timescaledb.so").exists()


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


class PrivateMosquitto:
    """``mosquitto -c <workdir>/mosquitto.conf`` with the given config text; restartable (persistence in
    the config survives :meth:`restart`: SIGTERM makes Mosquitto write its database)."""

    def __init__(self, workdir: Path, conf_text: str, port: int):
        exe = mosquitto_binary()
        if exe is None:
            raise RuntimeError("mosquitto binary not found")
        self.exe = exe
        self.workdir = workdir
        self.port = port
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf_text)
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @classmethod
    def stock(cls, workdir: Path, *, max_queued_messages: int = 1000) -> PrivateMosquitto:
        """A stock broker: anonymous, no persistence, Mosquitto's default queue limit (1,000)."""
        port = free_port()
        user = "user root\n" if os.geteuid() == 0 else ""
        return cls(workdir, f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                            f"max_queued_messages {max_queued_messages}\n{user}", port)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, 20, self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; mosquitto log: {self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


class PrivatePostgres:
    """A PostgreSQL cluster of its own in ``workdir/data`` on a free port, socket in ``workdir``;
    ``shared_preload_libraries=timescaledb`` when ``timescaledb``. The superuser is ``postgres``
    (trust over the socket and from 127.0.0.1 for it); :meth:`restart` is a fast shutdown and start."""

    def __init__(self, workdir: Path, *, timescaledb: bool = True, port: int | None = None):
        self.workdir = workdir
        self.data = workdir / "data"
        self.port = port or free_port()
        self.timescaledb = timescaledb
        self.log = workdir / "postgres.log"
        self.restarts = 0
        self._as: pwd.struct_passwd | None = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(list(args), capture_output=True, text=True, timeout=180, preexec_fn=self._demote())
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {r.stdout[-1000:]} {r.stderr[-1000:]}")
        return r

    def _demote(self) -> Callable[[], None] | None:
        u = self._as
        if u is None:
            return None

        def go() -> None:
            os.setgid(u.pw_gid)
            os.setuid(u.pw_uid)
        return go

    def init(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._as is not None:
            os.chown(self.workdir, self._as.pw_uid, self._as.pw_gid)
            parent = self.workdir.parent   # e.g. a mkdtemp directory (0700): the postgres user must pass it
            if parent.stat().st_uid == os.geteuid():
                os.chmod(parent, parent.stat().st_mode | 0o711)
        initdb = pg_bin("initdb")
        if initdb is None:
            raise RuntimeError("initdb not found")
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        hba = self.data / "pg_hba.conf"
        hba.write_text("host all postgres 127.0.0.1/32 trust\n" + hba.read_text())
        opts = [f"port = {self.port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{self.workdir}'",
                "fsync = off", "synchronous_commit = off", "full_page_writes = off", "max_connections = 100",
                "shared_buffers = 128MB", "timescaledb.telemetry_level = off" if self.timescaledb else ""]
        if self.timescaledb:
            opts.append("shared_preload_libraries = 'timescaledb'")
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\n".join(o for o in opts if o) + "\n")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        assert pg_ctl is not None
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        pg_ctl = pg_bin("pg_ctl")
        assert pg_ctl is not None
        if (self.data / "postmaster.pid").exists():
            self._run(pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1

    def kill(self) -> None:
        """Last resort at teardown: SIGQUIT the postmaster."""
        pid_file = self.data / "postmaster.pid"
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        except (OSError, ValueError, IndexError):
            pass
