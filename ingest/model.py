"""What decoders produce: readings, device health samples, and per-item rejects with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from registry.metrics import METRICS

#: One measured value as readers see it in the narrow ``readings`` view: ``(device_id, metric, time,
#: value)`` — registry devices.device_id, registry.metrics.METRICS name, measurement time (tz-aware UTC),
#: value in the metric's unit.
Reading = tuple[str, str, datetime, float]

#: Metric columns of a sample row (and of the ``samples`` table), in order.
COLUMNS: tuple[str, ...] = tuple(METRICS)
#: metric -> its index in a sample row ``[device_id, time, *COLUMNS]``
SLOT: dict[str, int] = {m: 2 + i for i, m in enumerate(COLUMNS)}
#: the metric values of a sample row with nothing measured
NO_VALUES: tuple[None, ...] = (None,) * len(COLUMNS)

#: One sample as decoders produce it and ``samples`` stores it: ``[device_id, time, v_1, ..., v_n]``
#: with a value (float, in the metric's unit) or None per :data:`COLUMNS`. A plain list (not a class):
#: decoders build hundreds of thousands a minute.
SampleRow = list[Any]


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

    #: accepted samples (each holds at least one value)
    rows: list[SampleRow] = field(default_factory=list)
    #: accepted values in ``rows``
    n_readings: int = 0
    health: list[Health] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: known devices the message came from -> [readings accepted, items rejected]
    per_device: dict[str, list[int]] = field(default_factory=dict)
    #: keys no profile mapping or ignore rule accounts for: (device_id, key path) -> [count, sample value]
    unmapped: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    #: running totals accepted as new baselines: (device_id, key) -> (epoch s, total); stored with the batch
    counters: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    #: native format: the gateway's message counter
    seq: int | None = None
    fmt: str = ""

    @property
    def readings(self) -> list[Reading]:
        """The accepted values as narrow readings (sample by sample, in column order)."""
        return [(r[0], COLUMNS[i], r[1], v) for r in self.rows for i, v in enumerate(r[2:]) if v is not None]

    def clear_readings(self) -> None:
        self.rows = []
        self.n_readings = 0

    def reject(self, reason: str, detail: str, device_id: str | None = None, metric: str | None = None,
               time: datetime | None = None) -> None:
        self.rejects.append(Reject(reason, detail, device_id, metric, time))
        if device_id is not None and device_id in self.per_device:
            self.per_device[device_id][1] += 1
