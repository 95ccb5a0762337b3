"""Running-total ("counter") fields of device profiles: increments between messages, resets handled."""

from __future__ import annotations

from collections.abc import Iterable


class CounterState:
    """Last (time, total) per (device, key) of counter fields, for increments across messages.

    Every accepted total is also returned to the caller to be persisted with its batch
    (``device_counter_state``, see :meth:`merge` for loading it back)."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], tuple[float, float]] = {}

    def merge(self, rows: Iterable[tuple[str, str, float, float]]) -> None:
        """Take persisted baselines ``(device_id, key, epoch s, total)`` that are newer than what is held."""
        for dev, key, t, total in rows:
            prev = self.last.get((dev, key))
            if prev is None or t > prev[0]:
                self.last[(dev, key)] = (t, total)

    def increment(self, device_id: str, key: str, t: float, total: float) -> float | None:
        """The increment of the running ``total`` at epoch-seconds ``t``; None when there is none to store
        (first value seen, or not newer than the previous)."""
        k = (device_id, key)
        prev = self.last.get(k)
        if prev is not None and t <= prev[0]:
            return None
        self.last[k] = (t, total)
        if prev is None:
            return None
        return total - prev[1] if total >= prev[1] else total  # lower than before: the counter was reset
