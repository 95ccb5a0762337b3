"""The product's periodic work, as scheduler job specs.

Each job calls a domain package's entry point with a connection and the current UTC time and
returns a small JSON-able detail for ``job_runs``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import psycopg
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from yuncang.scheduler import JobSpec


def refresh_rollups(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Recompute hourly/daily rollups touched since the last run (late data included)."""
    from ingest.rollups import refresh

    return asdict(refresh(conn))


def ensure_partitions_ahead(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Create tomorrow's and the next days' raw partitions before data arrives (plain PostgreSQL)."""
    from ingest.storage import ensure_partitions

    return {"partitions_created": ensure_partitions(conn, now, now + timedelta(days=3))}


def retention(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Drop raw readings older than the retention window (rollups are kept)."""
    from ingest.storage import apply_retention

    return {"partitions_dropped": apply_retention(conn, now)}


def device_alerts(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Raise/resolve silent-gateway and low-battery alerts."""
    from ingest.device_alerts import evaluate_device_alerts

    return evaluate_device_alerts(conn, now)


def nightly_forecast(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Forecast every orchard's supply for the running season (one versioned run) and raise risk alerts."""
    from orchard_models.inputs import season_of
    from orchard_models.run import forecast_all

    season = season_of(now)
    return {"season": season, "run_id": forecast_all(conn, now, season)}


def reallocate(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Re-allocate forward orders when a newer forecast run exists (moves penalised, changes notified)."""
    from orchard_models.inputs import season_of
    from trading.allocation import reallocate_if_new_forecast

    season = season_of(now)
    open_orders = conn.execute("SELECT count(*) FROM orders WHERE season = %s AND status <> 'cancelled'",
                               (season,)).fetchone()
    if not open_orders or not open_orders[0]:
        return {"season": season, "reallocated": False, "reason": "no forward orders for the season"}
    res = reallocate_if_new_forecast(conn, season)
    if res is None:
        return {"season": season, "reallocated": False}
    return {"season": season, "reallocated": True, "alloc_run_id": res.alloc_run_id,
            "committed_kg": float(res.committed_kg), "shortfall_kg": float(res.shortfall_kg),
            "changes": len(res.changes), "notifications": res.notifications}


def unsold_risk(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Unsold-risk warnings (滞销预警) for the coming weeks of the running season, as alerts."""
    from orchard_models.inputs import local_date, season_of
    from trading.warnings import evaluate_unsold_risk

    season = season_of(now)
    warnings = evaluate_unsold_risk(conn, season=season, as_of=local_date(now))
    return {"season": season, "warnings": len(warnings)}


def default_jobs() -> list[JobSpec]:
    """Every periodic job of the product, with its schedule (UTC; nightly work at 02:00 Asia/Shanghai)."""
    return [
        JobSpec("refresh_rollups", IntervalTrigger(minutes=5), refresh_rollups, misfire_grace_s=300),
        JobSpec("device_alerts", IntervalTrigger(minutes=5), device_alerts, misfire_grace_s=300),
        JobSpec("ensure_partitions", IntervalTrigger(hours=6), ensure_partitions_ahead, misfire_grace_s=3600),
        JobSpec("nightly_forecast", CronTrigger(hour=18, minute=0), nightly_forecast, misfire_grace_s=6 * 3600),
        JobSpec("reallocate", IntervalTrigger(minutes=15), reallocate, misfire_grace_s=900),
        JobSpec("unsold_risk_digest", CronTrigger(hour=22, minute=30), unsold_risk, misfire_grace_s=6 * 3600),
        JobSpec("retention", CronTrigger(hour=19, minute=30), retention, misfire_grace_s=6 * 3600),
    ]
