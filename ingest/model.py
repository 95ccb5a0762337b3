"""What decoders produce: readings, device health samples, and per-item rejects with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

#: One measured value, stored as a row of ``readings``: ``(device_id, metric, time, value)`` —
#: registry devices.device_id, registry.metrics.METRICS name, measurement time (tz-aware UTC), value in
#: the metric's unit. A plain tuple (not a NamedTuple): decoders build millions of them a minute.
Reading = tuple[str, str, datetime, float]


class Health(NamedTuple):
    """A gateway health sample (registry.metrics.HEALTH_METRICS); stored in ``device_health``."""

    device_id: str
    time: datetime              #: measurement time, UTC
    battery_v: float | None     #: battery voltage, V
    rssi_dbm: float | None      #: signal strength, dBm


class Reject(NamedTuple):
    """One refused item (a whole message, a sample or a single value) and why."""

    reason: str                     #: code, see :mod:`ingest.validate` (``out_of_range``, ...)
    detail: str                     #: human explanation
    device_id: str | None = None    #: when known (may be an unknown device's claimed id)
    metric: str | None = None
    time: datetime | None = None


@dataclass
class Decoded:
    """Result of decoding one MQTT message. Decoders never raise: every problem is a ``Reject``."""

    readings: list[Reading] = field(default_factory=list)
    health: list[Health] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: known devices the message came from -> [readings accepted, items rejected]
    per_device: dict[str, list[int]] = field(default_factory=dict)
    #: native format: the gateway's message counter
    seq: int | None = None
    fmt: str = ""

    def reject(self, reason: str, detail: str, device_id: str | None = None, metric: str | None = None,
               time: datetime | None = None) -> None:
        self.rejects.append(Reject(reason, detail, device_id, metric, time))
        if device_id is not None and device_id in self.per_device:
            self.per_device[device_id][1] += 1
