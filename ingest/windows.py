"""The one rule for how far back raw readings are accepted, kept and rolled up.

Three windows must agree, or a daily rollup that was once complete is recomputed from raw samples
that retention already dropped (issue 12, defect 1: a late reading on the oldest accepted day turned a
kept daily row of n = 288 into n = 193 because retention had cut at UTC midnight while the daily
bucket is an Asia/Shanghai day, 16:00 UTC to 16:00 UTC):

* **accept**:  ingest stores a reading only if ``time >= accept_from(now)``, the start of the local
  (Asia/Shanghai) day ``RETENTION_DAYS`` days before today's; older ones are dead-lettered ``too_old``.
* **refresh**: no rollup bucket that starts before ``refresh_from(now) == accept_from(now)`` is ever
  recomputed (hourly or daily, either storage path, marked dirty or asked for with ``since``): such
  buckets are final and rollups are kept for ever.
* **retain**:  raw rows may be dropped only wholly before ``drop_before(now) = accept_from(now) -
  SLACK_DAYS days``: a UTC-day chunk or partition goes when it *ends* at or before that instant. Raw
  rows from ``drop_before`` on are always there.

Invariant: every bucket a refresh may recompute (``>= accept_from``) has all of its raw rows, because
retention only removes rows before ``drop_before < accept_from``. The slack day covers the three
clocks involved (ingest's, the scheduler's, the database's) and a retention run hours before the
refresh: a local day stays complete in raw data for at least a day after it stopped being accepted.
Raw retention is therefore ``RETENTION_DAYS`` + 1-2 days of raw rows on disk, not less.

Asia/Shanghai has had no daylight saving since 1991, so a local day is 24 UTC hours starting at
16:00 UTC (``LOCAL_UTC_OFFSET_S``); tests check this against the tz database.

On TimescaleDB the extension's own retention policy would cut at ``now - interval``, which is not a
local-day boundary, so it is not used (removed by ``ingest/006_windows.tsdb.sql``); the scheduler's
``retention`` job applies :func:`drop_before` on both paths.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Local time zone of rollup days and of the UI.
LOCAL_TZ = "Asia/Shanghai"

#: Its offset from UTC, seconds (no daylight saving).
LOCAL_UTC_OFFSET_S = 8 * 3600

#: Local days of raw readings accepted (and kept) before today's local day.
RETENTION_DAYS = 400

#: Days of raw rows kept beyond the accept window (clock differences, retention run time).
SLACK_DAYS = 1

_DAY_S = 86400


def local_day_start_epoch(t_s: float) -> float:
    """Start of the Asia/Shanghai day containing ``t_s`` (epoch s), as epoch s."""
    return (t_s + LOCAL_UTC_OFFSET_S) // _DAY_S * _DAY_S - LOCAL_UTC_OFFSET_S


def accept_from_epoch(now_s: float, retention_days: int = RETENTION_DAYS) -> float:
    """Oldest accepted measurement time (epoch s) for a reading arriving at ``now_s``."""
    return local_day_start_epoch(now_s) - retention_days * _DAY_S


def accept_from(now: datetime, retention_days: int = RETENTION_DAYS) -> datetime:
    """Oldest accepted measurement time (UTC) at ``now``: a local midnight ``retention_days`` days back."""
    return datetime.fromtimestamp(accept_from_epoch(now.timestamp(), retention_days), UTC)


def refresh_from(now: datetime, retention_days: int = RETENTION_DAYS) -> datetime:
    """Rollup buckets starting before this (UTC) are final: never recomputed."""
    return accept_from(now, retention_days)


def drop_before(now: datetime, retention_days: int = RETENTION_DAYS) -> datetime:
    """Raw chunks/partitions ending at or before this instant (UTC) may be dropped."""
    return accept_from(now, retention_days) - timedelta(days=SLACK_DAYS)
