"""Running-total ("counter") fields of device profiles: increments between messages, resets handled."""

from __future__ import annotations


class CounterState:
    """Last (time, total) per (device, key) of counter fields, for increments across messages."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], tuple[float, float]] = {}

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
