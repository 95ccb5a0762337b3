"""Fruit grades (size classes) used by forecasts, orders, warehouse lots and prices.

Wushan crisp plum is graded by transverse fruit diameter (*assumption*, configurable defaults in
line with common plum grading standards): 特级 ≥ 45 mm, 一级 40-45 mm, 二级 35-40 mm. Fruit under
35 mm is off-grade (processing) and is not offered as a grade here. ``rank`` orders grades from the
best (0); a better grade may fill an order for a lower one (at the lower price).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grade:
    code: str               #: storage and wire code
    rank: int               #: 0 = best
    min_diameter_mm: float  #: inclusive lower bound, mm
    max_diameter_mm: float  #: exclusive upper bound, mm
    label_zh: str
    label_en: str


GRADES: tuple[Grade, ...] = (
    Grade("XL", 0, 45.0, 80.0, "特级果", "Premium (≥45 mm)"),
    Grade("L", 1, 40.0, 45.0, "一级果", "Grade 1 (40-45 mm)"),
    Grade("M", 2, 35.0, 40.0, "二级果", "Grade 2 (35-40 mm)"),
)
GRADE_CODES: tuple[str, ...] = tuple(g.code for g in GRADES)
BY_CODE: dict[str, Grade] = {g.code: g for g in GRADES}


def can_fill(supplied: str, ordered: str) -> bool:
    """True when fruit of grade ``supplied`` may fill an order for grade ``ordered`` (same or better)."""
    return BY_CODE[supplied].rank <= BY_CODE[ordered].rank
