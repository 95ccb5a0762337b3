"""Time formats of the LoRaWAN network servers' JSON (RFC 3339 with up to nanoseconds)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")


def parse_rfc3339(s: object) -> float | None:
    """RFC 3339 timestamp (up to nanoseconds, ``Z`` or ±hh:mm) -> epoch seconds; None when invalid."""
    if type(s) is not str or len(s) > 40:
        return None
    m = _RFC3339.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, z, sign, oh, om = m.groups()
    try:
        tz = UTC if z else timezone((1 if sign == "+" else -1) * timedelta(hours=int(oh), minutes=int(om)))
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micro, tzinfo=tz)
    except ValueError:
        return None
    return dt.timestamp()
