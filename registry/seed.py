"""Deterministic seed of the real deployment's shape: 1,546 orchards, 176,000 mu, 400-800 m.

Orchard areas follow a log-normal distribution (many family orchards of a few dozen mu, a few
cooperative bases of several hundred), scaled so the total is exact to 0.01 mu by the
largest-remainder method. Everything is drawn from ``numpy.random.default_rng(seed)``, so one seed
gives one registry on every machine.

Defaults that the reports do not give are *assumptions* and parameters here:
tree density 33-60 trees/mu (plum at 3 m x 4-5 m spacing), 22 % of households poverty-alleviated
(脱贫户), planting years spread over the last 16 seasons with the newest plantings most common.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import psycopg

from registry.townships import TOWNSHIPS

_SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗谭冉向邓彭"
_GIVEN = "国华明军平建文红志强玉兰德富贵春秋生福顺清学成永安海云芳英"


@dataclass
class SeedParams:
    seed: int = 20200824
    orchard_count: int = 1546
    total_area_mu: float = 176_000.0
    elevation_min_m: int = 400
    elevation_max_m: int = 800
    area_median_mu: float = 40.0          #: median orchard size, mu (assumption)
    area_sigma: float = 1.25              #: log-normal shape (assumption)
    min_area_mu: float = 2.0              #: smallest orchard, mu
    trees_per_mu: tuple[float, float] = (33.0, 60.0)
    poverty_share: float = 0.22           #: share of households that are 脱贫户 (assumption)
    cooperatives_per_township: int = 4
    reference_year: int = field(default_factory=lambda: date.today().year)
    oldest_planting_age: int = 16


@dataclass
class RegistryData:
    townships: list[dict[str, Any]]
    cooperatives: list[dict[str, Any]]
    households: list[dict[str, Any]]
    growers: list[dict[str, Any]]
    orchards: list[dict[str, Any]]
    devices: list[dict[str, Any]]


def exact_areas(rng: np.random.Generator, p: SeedParams) -> np.ndarray:
    """Orchard areas in mu (2 decimals) summing exactly to ``total_area_mu``."""
    raw = rng.lognormal(mean=np.log(p.area_median_mu), sigma=p.area_sigma, size=p.orchard_count)
    total_c = round(p.total_area_mu * 100)          # hundredths of a mu
    min_c = round(p.min_area_mu * 100)
    if min_c * p.orchard_count > total_c:
        raise ValueError("min_area_mu x orchard_count exceeds total_area_mu")
    # floor everyone at the minimum, share the rest in proportion to the log-normal draw
    rest = total_c - min_c * p.orchard_count
    share = raw / raw.sum() * rest
    cents = np.floor(share).astype(np.int64)
    short = rest - int(cents.sum())
    order = np.argsort(-(share - cents), kind="stable")
    cents[order[:short]] += 1
    cents += min_c
    assert int(cents.sum()) == total_c
    return cents / 100.0


def _name(rng: np.random.Generator) -> str:
    s = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
    g = "".join(_GIVEN[int(i)] for i in rng.integers(len(_GIVEN), size=int(rng.integers(1, 3))))
    return s + g


def generate(params: SeedParams | None = None) -> RegistryData:
    """Generate the registry for ``params`` (same params -> identical data)."""
    p = params or SeedParams()
    rng = np.random.default_rng(p.seed)
    townships = [
        {"township_id": t[0], "name_zh": t[1], "name_en": t[2], "lat": t[3], "lon": t[4]} for t in TOWNSHIPS
    ]
    weights = np.array([t[5] for t in TOWNSHIPS], dtype=float)
    weights /= weights.sum()

    cooperatives = []
    for t in TOWNSHIPS:
        for k in range(p.cooperatives_per_township):
            cooperatives.append({
                "cooperative_id": f"coop-{t[0]}-{k + 1}",
                "name": f"巫山县{t[1]}脆李专业合作社{'一二三四五六七八九'[k % 9]}社",
                "township_id": t[0],
            })

    areas = exact_areas(rng, p)
    town_idx = rng.choice(len(TOWNSHIPS), size=p.orchard_count, p=weights)
    span = p.elevation_max_m - p.elevation_min_m
    elev = p.elevation_min_m + np.round(rng.beta(2.2, 2.2, size=p.orchard_count) * span).astype(int)
    ages = np.minimum(
        np.floor(rng.exponential(scale=6.0, size=p.orchard_count)).astype(int) + 1, p.oldest_planting_age
    )
    density = rng.uniform(*p.trees_per_mu, size=p.orchard_count)
    poor = rng.random(p.orchard_count) < p.poverty_share
    lat_j = rng.normal(0.0, 0.03, size=p.orchard_count)
    lon_j = rng.normal(0.0, 0.03, size=p.orchard_count)
    coop_pick = rng.integers(p.cooperatives_per_township, size=p.orchard_count)
    eui = rng.integers(0, 2**63, size=p.orchard_count, dtype=np.int64)

    households, growers, orchards, devices = [], [], [], []
    for i in range(p.orchard_count):
        n = i + 1
        t = TOWNSHIPS[int(town_idx[i])]
        head = _name(rng)
        hh = f"HH-{n:05d}"
        households.append({
            "household_id": hh, "head_name": head, "township_id": t[0],
            "poverty_alleviated": bool(poor[i]), "members": int(rng.integers(2, 7)),
        })
        gid = f"G-{n:05d}"
        coop = f"coop-{t[0]}-{int(coop_pick[i]) + 1}"
        growers.append({
            "grower_id": gid, "name": head, "phone": f"1{int(rng.integers(30, 90))}{int(rng.integers(10**8)):08d}",
            "household_id": hh, "cooperative_id": coop,
        })
        oid = f"WS-{n:04d}"
        orchards.append({
            "orchard_id": oid, "name": f"{t[1]}{head}家果园", "grower_id": gid, "cooperative_id": coop,
            "township_id": t[0], "area_mu": float(areas[i]), "elevation_m": int(elev[i]),
            "lat": round(t[3] + float(lat_j[i]), 5), "lon": round(t[4] + float(lon_j[i]), 5),
            "planting_year": p.reference_year - int(ages[i]),
            "tree_count": round(float(areas[i]) * float(density[i])), "variety": "巫山脆李",
        })
        devices.append({
            "device_id": f"gw-{n:04d}", "orchard_id": oid, "dev_eui": f"{int(eui[i]):016x}", "model": "YC-GW1",
        })
    return RegistryData(townships, cooperatives, households, growers, orchards, devices)


_COLUMNS: dict[str, tuple[str, ...]] = {
    "townships": ("township_id", "name_zh", "name_en", "lat", "lon"),
    "cooperatives": ("cooperative_id", "name", "township_id"),
    "households": ("household_id", "head_name", "township_id", "poverty_alleviated", "members"),
    "growers": ("grower_id", "name", "phone", "household_id", "cooperative_id"),
    "orchards": ("orchard_id", "name", "grower_id", "cooperative_id", "township_id", "area_mu",
                 "elevation_m", "lat", "lon", "planting_year", "tree_count", "variety"),
    "devices": ("device_id", "orchard_id", "dev_eui", "model"),
}


def upsert(conn: psycopg.Connection, data: RegistryData) -> None:
    """Write ``data`` into the registry tables (insert or update by primary key), in the caller's transaction."""
    for table, cols in _COLUMNS.items():
        rows = getattr(data, table)
        if not rows:
            continue
        pk = cols[0]
        tmp = f"_seed_{table}"
        conn.execute(f"CREATE TEMP TABLE {tmp} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor().copy(f"COPY {tmp} ({', '.join(cols)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(tuple(r[c] for c in cols))
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols[1:])
        conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {tmp} "
            f"ON CONFLICT ({pk}) DO UPDATE SET {sets}"
        )
        conn.execute(f"DROP TABLE {tmp}")


def seed(conn: psycopg.Connection, params: SeedParams | None = None, *, only_if_empty: bool = True) -> int:
    """Seed the registry; returns the number of orchards written (0 when skipped because not empty)."""
    with conn.transaction():
        if only_if_empty:
            row = conn.execute("SELECT count(*) FROM orchards").fetchone()
            if row and row[0] > 0:
                return 0
        data = generate(params)
        upsert(conn, data)
    return len(data.orchards)
