"""What ``yuncang demo`` prepares beyond the registry, so every page has real data to show.

All of it is produced by the product's own code paths, never hand-written numbers:
buyers, cold rooms and forward orders (trading's demo seed, placed through
``trading.orders.place_order``), demo accounts (docs/users.md), past seasons' yields from the simulator's
history generator (the grower records a real cooperative would import), a forecast run of the models
for the running season, and an allocation by the LP. Every step is idempotent, so restarting the demo keeps what it had.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

log = logging.getLogger(__name__)

#: past seasons of yield records generated for the demo (the models pool over them)
HISTORY_SEASONS = 5


#: the steps of :func:`prepare`, in order, as a person reads them
STEPS = {"buyers": "buyers and cold rooms 采购商与冷库", "users": "demo accounts 演示账户",
         "history": "past seasons' yields 历年产量", "forecast": "yield forecast 产量预测",
         "orders": "forward orders 远期订单", "allocation": "allocation 订单分配"}


def _step(name: str, fn: Any, *args: Any, **kw: Any) -> Any:
    """Run one preparation step, logging its start and its end (``step``, ``index`` of ``of``, seconds)."""
    where = {"step": STEPS[name], "index": list(STEPS).index(name) + 1, "of": len(STEPS)}
    log.info("demo data: preparing", extra=where)
    t0 = time.monotonic()
    out = fn(*args, **kw)
    log.info("demo data", extra={**where, "seconds": round(time.monotonic() - t0, 2)})
    return out


def seed_history(conn: psycopg.Connection, now: datetime, seed: int = 0) -> int:
    """Past seasons' yields (``yield_history``) for every orchard, if none are recorded yet."""
    from orchard_models.inputs import season_of
    from sim_sensors.history import SCENARIO_DEFAULT, generate_history, write_history

    if conn.execute("SELECT 1 FROM yield_history LIMIT 1").fetchone():
        return 0
    from psycopg.rows import dict_row

    orchards = conn.cursor(row_factory=dict_row).execute(
        "SELECT orchard_id, area_mu::float8 AS area_mu, elevation_m, lat, lon, planting_year, tree_count "
        "FROM orchards ORDER BY orchard_id").fetchall()
    last = season_of(now) - 1
    seasons = list(range(last - HISTORY_SEASONS + 1, last + 1))
    cycle = list(SCENARIO_DEFAULT.values())
    scenarios = {s: cycle[i % len(cycle)] for i, s in enumerate(seasons)}
    hist = generate_history(orchards, seasons, scenarios, seed=seed)
    write_history(conn, hist, source="demo-sim", daily=False)
    conn.commit()
    return len(orchards) * len(seasons)


def prepare(conn: psycopg.Connection, now: datetime | None = None, seed: int = 0) -> dict[str, Any]:
    """Buyers, accounts, yield history, a forecast run, orders and an allocation (each only if missing)."""
    from orchard_models.inputs import season_of
    from orchard_models.run import forecast_all
    from trading.allocation import reallocate_if_new_forecast
    from trading.buyers import seed_buyers
    from trading.demo import seed_demo
    from yuncang.auth import seed_demo_users

    now = now or datetime.now(UTC)
    season = season_of(now)
    out: dict[str, Any] = {"season": season}
    out["buyers"] = _step("buyers", seed_buyers, conn)
    out["users"] = _step("users", seed_demo_users, conn)
    conn.commit()
    out["yield_records"] = _step("history", seed_history, conn, now, seed)
    has_run = conn.execute("SELECT 1 FROM forecast_runs WHERE season = %s LIMIT 1", (season,)).fetchone()
    if not has_run:
        out["forecast_run"] = _step("forecast", forecast_all, conn, now, season)
        conn.commit()
    out["trading"] = _step("orders", seed_demo, conn, season=season)
    conn.commit()
    res = _step("allocation", reallocate_if_new_forecast, conn, season)
    conn.commit()
    if res is not None:
        out["allocation"] = {"committed_kg": float(res.committed_kg), "shortfall_kg": float(res.shortfall_kg)}
    return out
