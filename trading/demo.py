"""Demo data for the trading side: buyers, the cloud warehouse and a season of forward orders.

Deterministic (``numpy.random.default_rng(seed)``) and idempotent: orders carry idempotency keys
``demo-<season>-<n>``, so running it twice places nothing new. Order volume is sized against the
season's latest forecast when there is one (``demand_share`` of the P10 total), else against the
registry's 176,000 mu at 750 kg/mu. Prices per grade are *assumptions* (farm-gate fen/kg):
XL 1,200, L 900, M 600, with +-15 % spread; processors buy M at about 450.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import psycopg

from trading.buyers import SEED_BUYERS, seed_buyers
from trading.orders import place_order
from trading.warehouse import seed_warehouse

PRICE_FEN_PER_KG = {"XL": 1200, "L": 900, "M": 600}


def _season_weeks(conn: psycopg.Connection, season: int) -> tuple[list[date], float]:
    total = 0.0
    row = conn.execute("SELECT run_id FROM forecast_runs WHERE season = %s ORDER BY as_of DESC, run_id DESC "
                       "LIMIT 1", (season,)).fetchone()
    if row:
        weeks = [r[0] for r in conn.execute("SELECT DISTINCT week_start FROM forecasts WHERE run_id = %s "
                                            "ORDER BY 1", (row[0],)).fetchall()]
        t = conn.execute("SELECT coalesce(sum(p10_kg), 0) FROM forecasts WHERE run_id = %s",
                         (row[0],)).fetchone()
        total = float(t[0]) if t else 0.0
        if weeks:
            return weeks, total
    d = date(season, 7, 13)
    first = d + timedelta(days=(7 - d.weekday()) % 7)
    row = conn.execute("SELECT coalesce(sum(area_mu), 0) FROM orchards").fetchone()
    total = float(row[0]) * 750.0 if row else 0.0
    return [first + timedelta(weeks=i) for i in range(6)], total


def seed_demo(conn: psycopg.Connection, *, season: int, orders: int = 120, demand_share: float = 0.6,
              seed: int = 824) -> dict[str, Any]:
    """Seed buyers, warehouse and ``orders`` forward orders for ``season``; returns counts."""
    nb = seed_buyers(conn)
    nr = seed_warehouse(conn)
    weeks, total_kg = _season_weeks(conn, season)
    rng = np.random.default_rng(seed + season)
    sizes = rng.lognormal(0.0, 0.7, orders)
    sizes = sizes / sizes.sum() * max(total_kg, 1.0) * demand_share
    for i in range(orders):
        bid, _, kind, city, _ = SEED_BUYERS[i % len(SEED_BUYERS)]
        grade = "M" if kind == "processor" else str(rng.choice(["XL", "L", "M"], p=[0.3, 0.45, 0.25]))
        price = 450 if kind == "processor" else PRICE_FEN_PER_KG[grade]
        price = round(price * float(rng.uniform(0.85, 1.15)))
        wf = int(rng.integers(0, len(weeks)))
        wt = min(len(weeks) - 1, wf + int(rng.integers(0, 3)))
        kg = max(10, round(float(sizes[i]) / 10.0) * 10)
        floor = int(price * 0.8) if kind in ("state_eshop", "institutional") else None
        place_order(conn, buyer_id=bid, idempotency_key=f"demo-{season}-{i}", grade=grade, quantity_kg=kg,
                        week_from=weeks[wf], week_to=weeks[wt], destination=city or "chongqing",
                        price_fen_per_kg=price, floor_price_fen_per_kg=floor)
    return {"buyers_created": nb, "cold_rooms_created": nr, "orders": orders, "weeks": len(weeks),
            "demand_kg": round(float(sizes.sum()))}
