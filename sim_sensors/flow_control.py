"""Flow control against a consumer's commits: never more than ``window`` messages ahead of them.

A QoS 1 PUBACK only says the broker took a message; a broker with a queue limit per subscriber
(Mosquitto's stock ``max_queued_messages 1000``) then drops, silently, what a slow subscriber has not
taken. A replay of a whole day (tens of thousands of messages in seconds) outruns ingest that way. The
publisher therefore asks the consumer's side how much it has committed (a callable: the simulator
never imports ``ingest``; the composition root passes one that reads the database) and waits.

Units: messages as the consumer counts them, :func:`units` of a :class:`~sim_sensors.replay.Message`
(one per device it carries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sim_sensors.replay import Message


class ConsumerStalled(RuntimeError):
    """The consumer committed nothing for ``stall_s`` while messages were outstanding."""


def units(m: Message) -> int:
    """Messages ``m`` counts for in the consumer's commit counter (a device each)."""
    return max(1, len(m.device_ids))


class CommitWindow:
    """``room`` (use as ``publish_messages(pace=...)``) waits while ``window`` units are uncommitted;
    ``drained`` waits until everything sent is committed. ``committed()`` is blocking (a database
    read): it runs in a worker thread, at most every ``poll_s``. Raises :class:`ConsumerStalled` when
    the count stops moving for ``stall_s`` with messages outstanding."""

    def __init__(self, committed: Callable[[], int], *, window: int = 500, stall_s: float = 30.0,
                 poll_s: float = 0.05):
        if window < 1:
            raise ValueError("window must be ≥ 1")
        self._read = committed
        self.window = window
        self.stall_s = stall_s
        self.poll_s = poll_s
        self.base = committed()
        self.sent = 0                 #: units handed to the publisher
        self.committed = 0            #: units committed by the consumer since construction
        self.waits = 0                #: times the publisher had to wait for room
        self._moved = time.monotonic()

    async def _poll(self) -> None:
        n = await asyncio.to_thread(self._read) - self.base
        now = time.monotonic()
        if n != self.committed:
            self.committed, self._moved = n, now
        elif now - self._moved > self.stall_s:
            raise ConsumerStalled(
                f"the consumer committed nothing for {self.stall_s:.0f} s: {self.committed} of {self.sent}"
                " messages committed. Is `yuncang ingest` running against this database and subscribed to"
                " this broker (same topic prefix)? Messages the broker could not queue may have been dropped.")

    async def room(self, m: Message) -> None:
        """Wait until ``m`` fits in the window, then count it as sent."""
        if self.sent - self.committed >= self.window:
            self.waits += 1
            self._moved = max(self._moved, time.monotonic() - self.poll_s)
            while self.sent - self.committed >= self.window:
                await self._poll()
                if self.sent - self.committed >= self.window:
                    await asyncio.sleep(self.poll_s)
        self.sent += units(m)

    async def drained(self, timeout_s: float | None = None) -> float:
        """Wait until the consumer has committed everything sent; returns the seconds waited."""
        t0 = time.monotonic()
        self._moved = max(self._moved, t0)
        while self.committed < self.sent:
            await self._poll()
            if self.committed < self.sent:
                if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    raise ConsumerStalled(f"{self.committed} of {self.sent} messages committed after"
                                          f" {timeout_s:.0f} s")
                await asyncio.sleep(self.poll_s)
        return time.monotonic() - t0
