"""What a farm record (table ``farm_records``) may hold, checked the same for the grower form and the API.

* ``observed_on``: a day from 2000-01-01 to today (observations are of what happened);
* ``value``: a finite number (never NaN or ±Infinity: the yield model takes logs of flower density and
  fruit set, Cao et al. style log-linear features in :mod:`orchard_models.yield_model`), from 0 to
  :data:`MAX_VALUE`, and per kind: ``flower_density`` a bloom score 0-1, ``pest`` % of trees 0-100,
  ``fruit_set`` fruits per metre of branch; ``flower_density`` and ``fruit_set`` need a value.
"""

from __future__ import annotations

import math
from datetime import date

from registry.errors import Invalid

FARM_KINDS = ("work", "flower_density", "fruit_set", "pest", "note")
MAX_VALUE = 100_000.0
_UPPER = {"flower_density": 1.0, "pest": 100.0}
_NEEDS_VALUE = ("flower_density", "fruit_set")


class InvalidRecord(Invalid, ValueError):
    """The record cannot be stored (HTTP 422); the message says which field and why. Also a ``ValueError``,
    so form handlers that catch bad input catch it too."""


def check_farm_record(kind: str, value: float | None, observed_on: date, today: date | None = None) -> None:
    """Raise :class:`InvalidRecord` unless the record may be stored."""
    if kind not in FARM_KINDS:
        raise InvalidRecord(f"kind must be one of {', '.join(FARM_KINDS)}")
    if not date(2000, 1, 1) <= observed_on <= (today or date.today()):
        raise InvalidRecord("observed_on must be a past or present day after 2000")
    if value is None:
        if kind in _NEEDS_VALUE:
            raise InvalidRecord(f"{kind} needs a value")
        return
    if not math.isfinite(value):
        raise InvalidRecord("value must be a finite number")
    hi = _UPPER.get(kind, MAX_VALUE)
    if not 0 <= value <= hi:
        raise InvalidRecord(f"{kind} value must be from 0 to {hi:g}")
