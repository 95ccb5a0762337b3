"""Origin warehouse sites (产地仓): location, township, weekly intake capacity and cold rooms.

A site is a row of ``warehouses`` (id, name, lat/lon, township, ``intake_kg_per_week`` = the kg it can
receive, pre-cool and grade in one week, ``active``); its cold rooms (``cold_rooms``, capacity kg) give
its storage capacity. Lots sit in a cold room, so every lot belongs to exactly one site, and fruit
leaves from the site that holds it (``shipments.from_warehouse_id``, ``spot_sales.warehouse_id``).

Distances for the allocation LP (:mod:`trading.matching`) are road km = ``road_factor`` x great-circle
km (haversine), ``road_factor`` 1.4 by default (:data:`trading.geo.ROAD_FACTOR`, a stated *assumption*
for mountain roads, configurable per call). Costs: orchard -> site at the local haulage rate,
site -> destination city at the long-haul cold-chain rate (both in :mod:`trading.geo`).

The demo county has four sites (:data:`DEMO_SITES`): the county e-trading centre and three township
warehouses; capacities are *assumptions*.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from trading.errors import Conflict, Invalid, NotFound
from trading.geo import LOCAL_FEN_PER_KG_KM, LONG_HAUL_FEN_PER_KG_KM, ROAD_FACTOR, city, haversine_km
from trading.orders import _kg

#: (warehouse_id, name, township_id, lat, lon, intake kg/week, cold rooms, kg per room) — assumptions
DEMO_SITES: tuple[tuple[str, str, str, float, float, int, int, int], ...] = (
    ("WH-WUSHAN", "巫山脆李产地云仓", "longxi", 31.074, 109.878, 4_000_000, 8, 1_500_000),
    ("WH-SHUANGLONG", "双龙镇产地仓", "shuanglong", 31.200, 109.720, 1_500_000, 3, 600_000),
    ("WH-QUCHI", "曲尺乡产地仓", "quchi", 31.050, 109.950, 1_000_000, 2, 500_000),
    ("WH-GUANYANG", "官阳镇产地仓", "guanyang", 31.390, 109.850, 600_000, 2, 400_000),
)


@dataclass
class Site:
    warehouse_id: str
    name: str
    township: str
    lat: float
    lon: float
    intake_kg_per_week: Decimal | None     #: None = not limited
    storage_kg: Decimal                    #: sum of the active cold rooms' capacity
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def save_site(conn: psycopg.Connection, *, warehouse_id: str, name: str, lat: float, lon: float,
              township: str = "", intake_kg_per_week: Any = None, active: bool = True) -> Site:
    """Create or update a site. ``Invalid`` for coordinates off the globe or a negative capacity."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Invalid("lat/lon out of range", "经纬度不正确", field="lat")
    cap = None if intake_kg_per_week is None else _kg(intake_kg_per_week, "intake_kg_per_week")
    with conn.transaction():
        conn.execute(
            """INSERT INTO warehouses (warehouse_id, name, lat, lon, township, intake_kg_per_week, active)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (warehouse_id) DO UPDATE SET name = EXCLUDED.name,
               lat = EXCLUDED.lat, lon = EXCLUDED.lon, township = EXCLUDED.township,
               intake_kg_per_week = EXCLUDED.intake_kg_per_week, active = EXCLUDED.active""",
            (warehouse_id, name, lat, lon, township, cap, active))
    return get_site(conn, warehouse_id)


def seed_sites(conn: psycopg.Connection) -> int:
    """The four demo sites and their cold rooms (idempotent; the county centre keeps its rooms CR-01..).
    Returns cold rooms created."""
    n = 0
    with conn.transaction():
        for wid, name, township, lat, lon, intake, rooms, room_kg in DEMO_SITES:
            conn.execute(
                """INSERT INTO warehouses (warehouse_id, name, lat, lon, township, intake_kg_per_week)
                   VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (warehouse_id) DO UPDATE
                   SET township = EXCLUDED.township, intake_kg_per_week = EXCLUDED.intake_kg_per_week""",
                (wid, name, lat, lon, township, intake))
            for i in range(1, rooms + 1):
                rid = f"CR-{i:02d}" if wid == "WH-WUSHAN" else f"{wid[3:]}-CR{i}"
                n += conn.execute("INSERT INTO cold_rooms (cold_room_id, warehouse_id, name, capacity_kg) "
                                  "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                  (rid, wid, f"{name} {i}号冷库", room_kg)).rowcount
    return n


def get_site(conn: psycopg.Connection, warehouse_id: str) -> Site:
    for s in list_sites(conn, active_only=False):
        if s.warehouse_id == warehouse_id:
            return s
    raise NotFound(f"warehouse {warehouse_id} not found", "仓库不存在", warehouse_id=warehouse_id)


def list_sites(conn: psycopg.Connection, *, active_only: bool = True) -> list[Site]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT w.warehouse_id, w.name, w.township, w.lat, w.lon, w.intake_kg_per_week, w.active,
                      coalesce((SELECT sum(capacity_kg) FROM cold_rooms r WHERE r.warehouse_id = w.warehouse_id
                                AND r.active), 0) AS storage_kg
               FROM warehouses w WHERE (NOT %s OR w.active) ORDER BY w.warehouse_id""", (active_only,)).fetchall()
    return [Site(r["warehouse_id"], r["name"], r["township"], float(r["lat"]), float(r["lon"]),
                 r["intake_kg_per_week"], Decimal(r["storage_kg"]), bool(r["active"])) for r in rows]


def site_of_cold_room(conn: psycopg.Connection, cold_room_id: str) -> str:
    row = conn.execute("SELECT warehouse_id FROM cold_rooms WHERE cold_room_id = %s", (cold_room_id,)).fetchone()
    if row is None:
        raise NotFound(f"cold room {cold_room_id} not found", "冷库不存在")
    return str(row[0])


def road_km_matrix(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray,
                   road_factor: float = ROAD_FACTOR) -> np.ndarray:
    """Road km between every point of set 1 (rows) and set 2 (columns): ``road_factor`` x haversine
    (R = 6,371 km), vectorised. Degrees in, km out."""
    p1, p2 = np.radians(np.asarray(lat1, float))[:, None], np.radians(np.asarray(lat2, float))[None, :]
    dl = np.radians(np.asarray(lon2, float))[None, :] - np.radians(np.asarray(lon1, float))[:, None]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return road_factor * 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def orchard_to_site_fen_per_kg(orchard_lat: np.ndarray, orchard_lon: np.ndarray, sites: list[Site], *,
                               road_factor: float = ROAD_FACTOR,
                               rate_fen_per_kg_km: float = LOCAL_FEN_PER_KG_KM) -> np.ndarray:
    """(orchards, sites) haulage cost orchard -> site, fen per kg."""
    return rate_fen_per_kg_km * road_km_matrix(orchard_lat, orchard_lon, np.array([s.lat for s in sites]),
                                               np.array([s.lon for s in sites]), road_factor)


def site_to_city_fen_per_kg(destination: str, sites: list[Site], *, road_factor: float = ROAD_FACTOR,
                            rate_fen_per_kg_km: float = LONG_HAUL_FEN_PER_KG_KM) -> tuple[float, ...]:
    """Cold-chain freight from each site to the destination city, fen per kg (one value per site)."""
    c = city(destination)
    return tuple(rate_fen_per_kg_km * road_factor * haversine_km(s.lat, s.lon, c.lat, c.lon) for s in sites)


def require_active(conn: psycopg.Connection, warehouse_id: str) -> Site:
    s = get_site(conn, warehouse_id)
    if not s.active:
        raise Conflict(f"warehouse {warehouse_id} is not active", "该仓库已停用", warehouse_id=warehouse_id)
    return s


def planned_site(conn: psycopg.Connection, orchard_id: str, harvest_week: date, season: int) -> str | None:
    """The site the latest allocation run of ``season`` sends this orchard's harvest of that week to (the
    one with the most kg), or None when the plan has nothing for it."""
    row = conn.execute(
        """SELECT a.warehouse_id FROM allocations a
           WHERE a.alloc_run_id = (SELECT max(alloc_run_id) FROM allocation_runs WHERE season = %s)
             AND a.orchard_id = %s AND a.harvest_week = %s AND a.warehouse_id <> ''
           GROUP BY a.warehouse_id ORDER BY sum(a.kg) DESC, a.warehouse_id LIMIT 1""",
        (season, orchard_id, harvest_week)).fetchone()
    return str(row[0]) if row else None


def cold_room_for(conn: psycopg.Connection, warehouse_id: str, kg: Any) -> str:
    """The site's active cold room with the most free kg that fits ``kg``; ``Conflict`` when none does."""
    need = _kg(kg, "kg")
    row = conn.execute(
        """SELECT r.cold_room_id, r.capacity_kg - coalesce(sum(lg.remaining_kg), 0) AS free_kg
           FROM cold_rooms r LEFT JOIN lots l ON l.cold_room_id = r.cold_room_id
           LEFT JOIN lot_grades lg ON lg.lot_id = l.lot_id
           WHERE r.warehouse_id = %s AND r.active GROUP BY r.cold_room_id, r.capacity_kg
           ORDER BY free_kg DESC, r.cold_room_id LIMIT 1""", (warehouse_id,)).fetchone()
    if row is None or Decimal(row[1]) < need:
        raise Conflict(f"no cold room at {warehouse_id} has {need} kg free", "该仓库冷库容量不足",
                       warehouse_id=warehouse_id)
    return str(row[0])
