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

from trading.allocation import scheduled_allocation
from trading.spot import scheduled_expiry
from trading.warnings import scheduled_unsold_risk
from yuncang.reports import scheduled_report
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
    """Drop raw chunks/partitions wholly before ``ingest.windows.drop_before`` (rollups are kept), both paths."""
    from ingest.storage import apply_retention

    return {"partitions_dropped": apply_retention(conn, now)}


def cold_chain_excursions(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Raise an alert per cold-room temperature excursion (limits per room), resolve ended ones."""
    from ingest.read import room_air_temperatures
    from trading.cold_chain import check_excursions

    return check_excursions(conn, now, room_air_temperatures)


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


def default_jobs() -> list[JobSpec]:
    """Every periodic job of the product, with its schedule (UTC; nightly work at 02:00 Asia/Shanghai)."""
    return [
        JobSpec("refresh_rollups", IntervalTrigger(minutes=5), refresh_rollups, misfire_grace_s=300,
                first_run_after_s=20),
        JobSpec("device_alerts", IntervalTrigger(minutes=5), device_alerts, misfire_grace_s=300,
                first_run_after_s=30),
        JobSpec("ensure_partitions", IntervalTrigger(hours=6), ensure_partitions_ahead, misfire_grace_s=3600),
        JobSpec("nightly_forecast", CronTrigger(hour=18, minute=0), nightly_forecast, misfire_grace_s=6 * 3600),
        JobSpec("reallocate", IntervalTrigger(minutes=15), scheduled_allocation, misfire_grace_s=900),
        JobSpec("spot_hold_expiry", IntervalTrigger(minutes=1), scheduled_expiry, misfire_grace_s=120),
        JobSpec("unsold_risk_digest", CronTrigger(hour=22, minute=30), scheduled_unsold_risk,
                misfire_grace_s=6 * 3600),
        JobSpec("retention", CronTrigger(hour=19, minute=30), retention, misfire_grace_s=6 * 3600),
        # Monday 01:00 Asia/Shanghai: the county's statistics report of the week just ended
        JobSpec("statistics_report", CronTrigger(day_of_week="sun", hour=17, minute=0), scheduled_report,
                misfire_grace_s=24 * 3600),
        JobSpec("cold_chain_excursions", IntervalTrigger(minutes=5), cold_chain_excursions, misfire_grace_s=300,
                first_run_after_s=40),
    ]
