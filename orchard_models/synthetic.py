"""Small synthetic seasons for unit tests and the speed benchmark (NOT the project's simulator).

A deliberately simple generator written for this package's own tests: daily temperature = annual
sine - elevation lapse + a county-wide AR(1) anomaly + orchard noise; a soil bucket driven by rain;
leaf wetness on rainy days; yield = age ramp x density x frost survival x drought factor x a
lognormal orchard effect; picking dates normal around bloom + 120 days; three grades with heavier
crops giving smaller fruit. Honest backtests use ``sim_sensors`` (see ``bench/forecast.py``), never this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from orchard_models.forecast import Observations, OrchardTable, SeasonRecord
from orchard_models.weather import SeasonWeather, season_days, season_start

__all__ = ["SyntheticWorld", "make_scaled_target", "make_world"]


@dataclass
class SyntheticWorld:
    orchards: OrchardTable
    seasons: list[SeasonRecord]


def make_orchards(n: int, rng: np.random.Generator, ref_year: int) -> OrchardTable:
    area = np.round(rng.lognormal(np.log(40.0), 1.0, n) + 2.0, 2)
    dens = rng.uniform(33, 60, n)
    return OrchardTable(
        area_mu=area, tree_count=np.round(area * dens), planting_year=ref_year - np.minimum(rng.integers(1, 17, n), 16),
        elevation_m=rng.integers(400, 801, n).astype(np.float64), latitude_deg=31.07 + rng.normal(0, 0.03, n),
        orchard_ids=[f"SY-{i:06d}" for i in range(n)])


def make_season(tab: OrchardTable, season: int, rng: np.random.Generator, *, frost: bool = False,
                drought: bool = False, effects: np.ndarray | None = None) -> SeasonRecord:
    n = tab.n
    nd = season_days(season)
    s0 = season_start(season)
    doy = np.array([(s0 + timedelta(days=i)).timetuple().tm_yday for i in range(nd)], dtype=np.float64)
    base = 16.0 - 11.0 * np.cos(2 * np.pi * (doy - 15.0) / 365.25)
    anom = np.zeros(nd)
    e = rng.normal(0, 1.6, nd)
    for i in range(1, nd):
        anom[i] = 0.7 * anom[i - 1] + e[i]
    elev = tab.elevation_m[:, None]
    tmean = base[None, :] + anom[None, :] - 0.006 * (elev - 500.0) + rng.normal(0, 0.6, (n, nd))
    rng_d = rng.uniform(6.0, 11.0, (n, nd))
    tmin = tmean - rng_d / 2
    tmax = tmean + rng_d / 2
    march = (date(season, 3, 20) - s0).days
    if frost:
        tmin[:, march:march + 2] = -3.5 - 0.01 * (elev - 400.0) + rng.normal(0, 0.5, (n, 2))
    rainy = rng.random((1, nd)) < 0.35
    rain = np.where(rainy, rng.gamma(1.2, 8.0, (n, nd)), 0.0)
    if drought:
        jun = (date(season, 5, 20) - s0).days
        rain[:, jun:jun + 70] *= 0.05
    vwc = np.empty((n, nd))
    v = np.full(n, 0.3)
    for i in range(nd):
        v = np.clip(v + rain[:, i] / 300.0 - 0.006 * (tmean[:, i] > 15), 0.08, 0.42)
        vwc[:, i] = v
    leaf = np.where(rain > 1, rng.uniform(6, 16, (n, nd)), rng.uniform(0, 4, (n, nd)))
    rh = np.clip(70 + 2 * leaf + rng.normal(0, 5, (n, nd)), 20, 100)
    w = SeasonWeather(season, tmin, tmax, rain, vwc, leaf, rh)
    # outcomes
    age = season - tab.planting_year
    ramp = np.select([age <= 2, age == 3, age == 4], [0.0, 0.35, 0.75], 1.0)
    dens = tab.tree_count / tab.area_mu
    bloom = march + np.round(0.02 * (elev[:, 0] - 600.0) + rng.normal(0, 2, n)).astype(int)
    surv = np.ones(n)
    if frost:
        surv = np.clip(1.0 - 0.15 * (4.0 + np.min(tmin[:, march:march + 2], axis=1)) ** 2 * 0 - 0.3
                       - 0.001 * (elev[:, 0] - 400.0), 0.2, 1.0)
    dry = np.clip((0.21 - vwc[:, (date(season, 5, 1) - s0).days:(date(season, 7, 20) - s0).days]) / 0.09, 0, 1).mean(1)
    eff = effects if effects is not None else np.ones(n)
    kg_mu = 1300.0 * ramp * (dens / 45.0) ** 0.5 * surv * (1 - 0.6 * dry) * eff * rng.lognormal(0, 0.12, n)
    total = kg_mu * tab.area_mu
    centroid = bloom + 120 + rng.normal(0, 3, n)
    mondays = [date(season, 6, 1) + timedelta(days=(7 - date(season, 6, 1).weekday()) % 7 + 7 * k) for k in range(16)]
    md = np.array([(m - s0).days + 3.0 for m in mondays])
    wk = np.exp(-0.5 * ((md[None, :] - centroid[:, None]) / 8.0) ** 2)
    wk /= wk.sum(axis=1, keepdims=True)
    load = np.log(np.maximum(kg_mu, 1.0) / 1000.0)
    z1 = 0.1 - 0.8 * load
    z2 = 0.6 - 0.3 * load
    gs = np.exp(np.column_stack([z1, z2, np.zeros(n)]))
    gs /= gs.sum(axis=1, keepdims=True)
    wgk = total[:, None, None] * wk[:, :, None] * gs[:, None, :]
    fd = np.clip(0.7 * surv + rng.normal(0, 0.05, n), 0, 1)
    obs = Observations(fd, bloom + 2, np.full(n, np.nan), np.full(n, -1), None)
    return SeasonRecord(w, obs, total, wgk, mondays, bloom)


def make_world(n: int = 200, seasons: tuple[int, ...] = (2021, 2022, 2023, 2024, 2025), seed: int = 7,
               frost_season: int | None = 2023, drought_season: int | None = 2024) -> SyntheticWorld:
    rng = np.random.default_rng(seed)
    tab = make_orchards(n, rng, max(seasons))
    eff = rng.lognormal(0, 0.2, n)
    recs = [make_season(tab, s, rng, frost=s == frost_season, drought=s == drought_season, effects=eff)
            for s in seasons]
    return SyntheticWorld(tab, recs)


def make_scaled_target(base: OrchardTable, n: int, season: int, seed: int = 11, chunk: int = 10_000
                       ) -> tuple[OrchardTable, SeasonRecord, np.ndarray]:
    """``n`` synthetic orchards for a speed test: the ``base`` orchards tiled (area x U(0.8, 1.25),
    elevation +- 50 m) and one season of their weather and observations from :func:`make_season`, built
    ``chunk`` orchards at a time in float32 (every chunk shares the county's weather anomaly: the same
    generator seed). Returns (table, season record without outcomes, ref_idx into ``base``)."""
    rng = np.random.default_rng([seed, n])
    ref = np.arange(n) % base.n
    tab = OrchardTable(base.area_mu[ref] * rng.uniform(0.8, 1.25, n), base.tree_count[ref].astype(np.float64),
                       base.planting_year[ref], np.clip(base.elevation_m[ref] + rng.uniform(-50, 50, n), 100, 2500),
                       base.latitude_deg[ref], None)
    f32 = np.float32
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("tmin_c", "tmax_c", "rain_mm", "soil_vwc", "leaf_wet_h",
                                                          "rh_pct")}
    ofd, ofd_day = [], []
    for a in range(0, n, chunk):
        sub = tab.subset(slice(a, min(n, a + chunk)))
        rec = make_season(sub, season, np.random.default_rng([seed, season]))
        for k in parts:
            parts[k].append(getattr(rec.weather, k).astype(f32))
        assert rec.observations is not None
        ofd.append(rec.observations.flower_density)
        ofd_day.append(rec.observations.flower_density_day)
        del rec
    w = SeasonWeather(season, *(np.concatenate(parts.pop(k)) for k in ("tmin_c", "tmax_c", "rain_mm", "soil_vwc",
                                                                       "leaf_wet_h", "rh_pct")))
    fd, fd_day = np.concatenate(ofd), np.concatenate(ofd_day)
    obs = Observations(fd, fd_day, np.full(n, np.nan), np.full(n, -1), fd_day.copy())
    return tab, SeasonRecord(w, obs), ref
