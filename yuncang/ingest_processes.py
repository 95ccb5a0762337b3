"""``yuncang ingest --processes N``: N ingest processes on one host, supervised.

One ingest process decodes on one core at a time (the GIL). With N processes on the MQTT v5 shared
subscription ``$share/ingest/...`` the broker splits the gateways' messages between them, so ingest uses
N cores (bench ingest, 2 cores: ~0.72 M readings/s with one process, ~0.96 M with two). Each child is a
plain ``yuncang ingest`` with its own client id (``<base>-p<k>``), hence its own persistent session: a
child that dies loses nothing (the broker redelivers what it had not acknowledged) and is started again
after a backoff of 1 s doubling to 30 s. Only child 0 refreshes the rollups. SIGTERM/SIGINT to the parent
stop the children (each writes and acknowledges what it holds); a child still running after ``grace_s``
is killed. A child that exits 0 by itself (``--for``) is not restarted.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0


class IngestProcesses:
    """Start ``count`` children running ``yuncang ingest <child_args(k)>`` and keep them running."""

    def __init__(self, child_args: Sequence[Sequence[str]], *, env: Mapping[str, str] | None = None,
                 grace_s: float = 60.0):
        self.child_args = [list(a) for a in child_args]
        self.env = {**os.environ, **(env or {})}
        self.grace_s = grace_s
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * len(self.child_args)
        self._delay = [RESTART_MIN_S] * len(self.child_args)
        self._due = [0.0] * len(self.child_args)
        self._finished = [False] * len(self.child_args)
        self.stop = threading.Event()

    def _spawn(self, k: int) -> None:
        self.procs[k] = subprocess.Popen([sys.executable, "-m", "yuncang", "ingest", *self.child_args[k]],
                                         stdin=subprocess.DEVNULL, env=self.env)
        log.info("ingest process started", extra={"child": k, "pid": self.procs[k].pid})  # type: ignore[union-attr]

    def run(self, poll_s: float = 0.2) -> int:
        """Supervise until :attr:`stop` is set or every child has finished by itself; returns 0 when every
        child's last exit was clean."""
        for k in range(len(self.procs)):
            self._spawn(k)
        try:
            while not self.stop.is_set() and not all(self._finished):
                now = time.monotonic()
                for k, p in enumerate(self.procs):
                    if self._finished[k]:
                        continue
                    if p is None:
                        if now >= self._due[k]:
                            self._spawn(k)
                        continue
                    rc = p.poll()
                    if rc is None:
                        continue
                    if rc == 0:
                        self._finished[k] = True
                        continue
                    log.warning("ingest process died; restarting", extra={"child": k, "exit_code": rc,
                                                                          "retry_s": self._delay[k]})
                    self.procs[k] = None
                    self._due[k] = now + self._delay[k]
                    self._delay[k] = min(self._delay[k] * 2, RESTART_MAX_S)
                self.stop.wait(poll_s)
        finally:
            self._terminate()
        return 0 if all(p is None or p.returncode == 0 for p in self.procs) else 1

    def _terminate(self) -> None:
        live = [p for p in self.procs if p is not None and p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        end = time.monotonic() + self.grace_s
        for p in live:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("ingest process did not stop in time; killing it", extra={"pid": p.pid})
                p.kill()
                p.wait(10)


def child_args(base_client_id: str, count: int, passthrough: Sequence[str], *,
               refresh_every_s: float) -> list[list[str]]:
    """Arguments of each child: its client id, no migration (the parent did it), rollup refresh only in
    child 0, and the options the parent was given (``passthrough``)."""
    return [["--no-migrate", "--client-id", f"{base_client_id}-p{k}",
             "--refresh-every", str(refresh_every_s if k == 0 else 0), *passthrough] for k in range(count)]
