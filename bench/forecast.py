"""``python -m bench forecast``: honest backtest and speed of the supply forecast.

Backtest: the simulator (``sim_sensors.history.generate_history``, a yield process the models never
see) generates seasons for the 1,546 seeded orchards (2022 late frost, 2023 drought, 2025 wet by its
default scenarios). Every target season is forecast from the seasons before it only (expanding
window), 90, 60 and 30 days before the county's harvest centroid, with only the data known then:
weather up to the as-of day, grower observations recorded by then (flower density at full bloom,
fruit set 28 days after it -- *assumption* on when growers record), past seasons' harvests by week
and grade, and past bloom dates only where the grower recorded flowers.

Scores per horizon (means over target seasons): per-orchard MAPE (orchards that harvested),
weighted MAPE (sum |error| / sum harvest), county-total APE, P10-P90 coverage (orchards with a
harvest or a forecast) pooled and per season (``p10_p90_coverage_by_season``: the pool hides that
a frost or drought moves every orchard at once), the county-total P10-P90 interval (from the model's
common season term, not the sum of orchard quantiles) and how many seasons' county totals it
contained, and per season the orchard coverage *given the season* (each orchard's interval shifted by
the county's realised log error, only its own noise left: whether the orchard-level spread is right
in calm and in shock seasons alike), against the naive baselines *last season x area* (the orchard's last
season kg/mu times its area) and *mean yield per mu* (county kg/mu of all past seasons times area).

Speed: compute of one full-season forecast for 1,546 orchards (after the model fit, which is
reported apart), and for 100,000 synthetic orchards (the 1,546 tiled with perturbed weather and
attributes) processed in chunks, with the tracemalloc peak of the forecast at 25k/50k/100k: bytes
per orchard must not grow with the number of orchards (work is chunked, so the peak grows at most
linearly). The last line is one JSON object with goals and ``meets_goals``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import statistics
import time
import tracemalloc
from datetime import date
from typing import Any

import numpy as np

from orchard_models.forecast import Forecaster, Observations, OrchardTable, SeasonRecord
from orchard_models.fruit_counts import FruitCounts
from orchard_models.weather import SeasonWeather, season_days, season_start

HORIZONS_DAYS = (90, 60, 30)
Z90 = 1.2815515655446004  # standard normal 90 % quantile
FRUIT_SET_AFTER_BLOOM_DAYS = 28
SHOCK_SCENARIOS = ("late_frost", "drought")
WEEK_GRADE_GOALS = {"60d": 0.40, "30d": 0.30}


def _day_index(dates: np.ndarray, season: int) -> np.ndarray:
    s0 = np.datetime64(season_start(season).isoformat(), "D")
    d = np.asarray(dates, dtype="datetime64[D]")
    out = (d - s0).astype(np.int64)
    return np.where(np.isnat(d), -1, out)


def _season_array(h: Any, name: str, season: int) -> np.ndarray:
    """A (orchard, day) array of the history re-indexed to this package's season axis (1 Oct start)."""
    a = np.asarray(getattr(h, name)[season], dtype=np.float64)
    idx = _day_index(h.dates[season], season)
    out = np.full((a.shape[0], season_days(season)), np.nan)
    ok = (idx >= 0) & (idx < out.shape[1])
    out[:, idx[ok]] = a[:, ok]
    return out


def orchard_table(rows: list[dict[str, Any]], ids: list[str]) -> OrchardTable:
    by = {r["orchard_id"]: r for r in rows}
    rr = [by[i] for i in ids]
    return OrchardTable(area_mu=np.array([float(r["area_mu"]) for r in rr]),
                        tree_count=np.array([float(r["tree_count"]) for r in rr]),
                        planting_year=np.array([int(r["planting_year"]) for r in rr]),
                        elevation_m=np.array([float(r["elevation_m"]) for r in rr]),
                        latitude_deg=np.array([float(r["lat"]) for r in rr]), orchard_ids=list(ids))


def season_record(h: Any, season: int) -> SeasonRecord:
    """One simulated season as the models' inputs (outcomes included, for training or scoring)."""
    a = {n: _season_array(h, n, season) for n in ("tmin_c", "tmax_c", "rain_mm", "soil_vwc", "leaf_wet_h", "rh_pct")}
    w = SeasonWeather(season, a["tmin_c"], a["tmax_c"], a["rain_mm"], a["soil_vwc"], a["leaf_wet_h"], a["rh_pct"])
    bloom = _day_index(h.bloom_date[season], season)
    fd = np.asarray(h.flower_density[season], dtype=np.float64)
    fs = np.asarray(h.fruit_set_per_m[season], dtype=np.float64)
    fd_day = np.where(np.isfinite(fd) & (bloom >= 0), bloom, -1)
    fs_day = np.where(np.isfinite(fs) & (bloom >= 0), bloom + FRUIT_SET_AFTER_BLOOM_DAYS, -1)
    ws = [date.fromisoformat(str(np.datetime64(x, "D"))) for x in h.week_starts[season]]
    ykg = np.asarray(h.yield_kg[season], dtype=np.float64)
    # bloom dates are known only where the grower recorded flowering (the flower-density score is taken
    # at full bloom, so its day is the observed bloom -- known to a forecast from that day on, as
    # orchard_models.inputs.read_bloom_records reads it from farm_records)
    recorded_bloom = np.where(np.isfinite(fd), bloom, -1)
    obs = Observations(fd, fd_day, fs, fs_day, recorded_bloom)
    return SeasonRecord(w, obs, ykg.sum(axis=(1, 2)), ykg, ws, recorded_bloom)


def _centroid_day(rec: SeasonRecord) -> int:
    assert rec.week_grade_kg is not None and rec.week_starts is not None
    kg = rec.week_grade_kg.sum(axis=(0, 2))
    s0 = season_start(rec.season)
    mid = np.array([(w - s0).days + 3.0 for w in rec.week_starts])
    return round(float((kg * mid).sum() / kg.sum()))


def _scores(pred: np.ndarray, act: np.ndarray) -> dict[str, float]:
    ok = act > 0
    return {"mape": float(np.mean(np.abs(pred[ok] - act[ok]) / act[ok])),
            "wmape": float(np.abs(pred - act).sum() / act.sum()),
            "county_ape": float(abs(pred.sum() - act.sum()) / act.sum())}


COUNT_SHARE = 0.25          #: share of bearing orchards whose grower counts sample trees (simulated)
COUNT_TREES = 10            #: sample trees per count
COUNT_AFTER_BLOOM_DAYS = 45  #: counted after fruit set and the June drop (*assumption*)
SIM_TREE_CV = 0.30          #: simulated between-tree spread of fruit number (lognormal SD)
SIM_COUNT_CV = 0.10         #: simulated counting error per tree
SIM_MASS_CV = 0.15          #: simulated orchard-to-orchard spread of fruit mass around 40 g
SIM_MASS_MEASURED_SHARE = 0.5


def simulated_counts(rec: SeasonRecord, tab: OrchardTable, bloom_day: np.ndarray, seed: int) -> FruitCounts:
    """Growers' sample-tree counts simulated from the true harvest (the benchmark knows it; the model
    does not): fruit number = kg / fruit mass, mass 40 g x lognormal (SD SIM_MASS_CV) per orchard;
    each sample tree = orchard mean x lognormal between-tree spread x counting error; half the
    counters also weigh fruit (5 % error)."""
    from orchard_models.fruit_counts import DEFAULT_FRUIT_G, FruitCounts

    rng = np.random.default_rng([seed, rec.season])
    n = tab.n
    age = rec.season - tab.planting_year
    act = np.asarray(rec.total_kg, dtype=np.float64)
    pick = (rng.random(n) < COUNT_SHARE) & (age >= 3) & (bloom_day >= 0) & np.isfinite(act)
    mass = DEFAULT_FRUIT_G * rng.lognormal(0.0, SIM_MASS_CV, n)
    per_tree = act * 1000.0 / mass / np.maximum(tab.tree_count, 1.0)
    trees = per_tree[:, None] * rng.lognormal(-SIM_TREE_CV ** 2 / 2, SIM_TREE_CV, (n, COUNT_TREES)) \
        * rng.lognormal(0.0, SIM_COUNT_CV, (n, COUNT_TREES))
    trees = np.round(trees)
    c = FruitCounts.empty(n)
    c.mean_per_tree = np.where(pick, trees.mean(axis=1), np.nan)
    c.tree_cv = np.where(pick, trees.std(axis=1, ddof=1) / np.maximum(trees.mean(axis=1), 1e-9), np.nan)
    c.n_trees = np.where(pick, COUNT_TREES, 0)
    weighed = pick & (rng.random(n) < SIM_MASS_MEASURED_SHARE)
    c.mean_fruit_g = np.where(weighed, mass * rng.lognormal(0.0, 0.05, n), np.nan)
    c.day = np.where(pick, bloom_day + COUNT_AFTER_BLOOM_DAYS, -1).astype(np.int64)
    return c


def cell_scores(fc: Any, target: SeasonRecord) -> dict[str, Any]:
    """Orchard x week x grade cells against the harvest on the union of both week axes: wMAPE of the
    P50 cells (sum |error| / harvested kg), the same for weeks only (grades summed) and grades only
    (weeks summed), and calibration: the share of harvested kg whose cell's P10-P90 holds it, overall
    and per week (week start ISO date -> [share, harvested t])."""
    assert target.week_grade_kg is not None and target.week_starts is not None
    p10, p50, p90 = fc.cells()
    weeks = sorted(set(fc.week_starts) | set(target.week_starts))
    n_o, n_g = p50.shape[0], p50.shape[2]

    def on(axis_weeks: list[date], a: np.ndarray) -> np.ndarray:
        out = np.zeros((n_o, len(weeks), n_g))
        pos = {w: i for i, w in enumerate(weeks)}
        for j, w in enumerate(axis_weeks):
            out[:, pos[w], :] = a[:, j, :]
        return out

    t = on(target.week_starts, target.week_grade_kg)
    f10, f50, f90 = (on(fc.week_starts, a) for a in (p10, p50, p90))
    tot = float(t.sum())
    inside = (t >= f10 - 1e-9) & (t <= f90 + 1e-9)
    by_week = {w.isoformat(): [round(float((t[:, i] * inside[:, i]).sum() / max(t[:, i].sum(), 1e-9)), 4),
                               round(float(t[:, i].sum()) / 1000, 1)]
               for i, w in enumerate(weeks) if t[:, i].sum() > 0}
    mid = np.array([(w - season_start(target.season)).days + 3.0 for w in weeks])
    kg_t, kg_f = t.sum(axis=(0, 2)), f50.sum(axis=(0, 2))
    return {"county_centroid_error_days": float((kg_f * mid).sum() / max(kg_f.sum(), 1e-9)
                                                - (kg_t * mid).sum() / tot),
            "wmape": float(np.abs(f50 - t).sum() / tot),
            "week_wmape": float(np.abs(f50.sum(axis=2) - t.sum(axis=2)).sum() / tot),
            "grade_wmape": float(np.abs(f50.sum(axis=1) - t.sum(axis=1)).sum() / tot),
            "kg_in_p10_p90": float((t * inside).sum() / tot), "by_week": by_week}


def _count_scores(fc: Any, fc_c: Any, act: np.ndarray, counts: Any) -> dict[str, Any] | None:
    sel = (counts.day >= 0) & (counts.day <= fc.as_of_day) & (act > 0)
    if not sel.any():
        return None

    def one(f: Any) -> dict[str, float]:
        p10, p50, p90 = f.total_p10_kg[sel], f.total_p50_kg[sel], f.total_p90_kg[sel]
        a = act[sel]
        return {"wmape": float(np.abs(p50 - a).sum() / a.sum()),
                "coverage": float(np.mean((a >= p10) & (a <= p90))),
                "rel_width": float(np.median((p90 - p10) / np.maximum(p50, 1e-9)))}

    return {"orchards": int(sel.sum()), "without": one(fc), "with": one(fc_c)}


def backtest(h: Any, tab: OrchardTable, targets: list[int], seed: int = 1) -> dict[str, Any]:
    recs = {s: season_record(h, s) for s in h.seasons}
    cache: dict[int, Any] = {}
    per: dict[int, list[dict[str, Any]]] = {hz: [] for hz in HORIZONS_DAYS}
    fit_s: list[float] = []
    for s in targets:
        train = [recs[x] for x in h.seasons if x < s]
        target = recs[s]
        act = target.total_kg
        assert act is not None and target.week_grade_kg is not None
        fcr = Forecaster(tab, train, cache=cache)
        prev = recs[s - 1].total_kg if (s - 1) in recs else None
        tot_kg = sum(float(np.nansum(r.total_kg)) for r in train if r.total_kg is not None)
        mean_per_mu = tot_kg / (tab.area_mu.sum() * len(train))
        cen = _centroid_day(target)
        for hz in HORIZONS_DAYS:
            as_of = cen - hz
            fc = fcr.forecast(target.weather, as_of, target.observations)
            fit_s.append(fc.timings_s["fit"])
            counts = simulated_counts(target, tab, _day_index(h.bloom_date[s], s), seed)
            fc_counted = fcr.forecast(target.weather, as_of, target.observations, counts=counts)
            m = _scores(fc.total_p50_kg, act)
            base_last = _scores(prev if prev is not None else np.zeros_like(act), act)
            base_mean = _scores(mean_per_mu * tab.area_mu, act)
            rel = (act > 0) | (fc.total_p90_kg > 0)
            cover = float(np.mean((act[rel] >= fc.total_p10_kg[rel]) & (act[rel] <= fc.total_p90_kg[rel])))
            cell = cell_scores(fc, target)
            cell_wmape = cell["wmape"]
            c10, c50, c90 = fc.county_kg
            # orchard-level dispersion given the season: shift every interval by the county's realised
            # log error and keep only the orchard's own noise (what a known county total would leave)
            both = (act > 0) & (fc.total_p50_kg > 0) & (fc.total_p10_kg > 0)
            e_c = float(np.log(act[both].sum() / fc.total_p50_kg[both].sum()))
            assert fc.orchard_log_sd is not None
            r = np.log(act[both] / fc.total_p50_kg[both]) - e_c
            cover_given = float(np.mean(np.abs(r) <= Z90 * fc.orchard_log_sd[both]))
            true_bloom = _day_index(h.bloom_date[s], s)
            per[hz].append({
                "season": s, "scenario": h.scenarios[s], "model": m, "last_season_x_area": base_last,
                "mean_per_mu": base_mean, "p10_p90_coverage": cover, "week_grade_wmape": cell_wmape,
                "bloom_mae_days": float(np.mean(np.abs(fc.bloom_day - true_bloom)[true_bloom >= 0])),
                "county_p50_t": float(fc.total_p50_kg.sum() / 1000), "county_actual_t": float(act.sum() / 1000),
                "county_interval_t": [c10 / 1000, c50 / 1000, c90 / 1000],
                "county_covered": bool(c10 <= act.sum() <= c90), "coverage_given_season": cover_given,
                "county_p50_ape": float(abs(c50 - act.sum()) / act.sum()),
                "fruit_counts": _count_scores(fc, fc_counted, act, counts), "cells": cell,
            })
    summary: dict[str, Any] = {}
    for hz, rows in per.items():
        def mean(key: str, sub: str, rows: list[dict[str, Any]] = rows) -> float:
            return round(float(np.mean([r[key][sub] for r in rows])), 4)

        summary[f"{hz}d"] = {
            "model_mape": mean("model", "mape"), "model_wmape": mean("model", "wmape"),
            "model_county_ape": mean("model", "county_ape"),
            "last_season_mape": mean("last_season_x_area", "mape"),
            "last_season_wmape": mean("last_season_x_area", "wmape"),
            "last_season_county_ape": mean("last_season_x_area", "county_ape"),
            "mean_per_mu_mape": mean("mean_per_mu", "mape"), "mean_per_mu_wmape": mean("mean_per_mu", "wmape"),
            "mean_per_mu_county_ape": mean("mean_per_mu", "county_ape"),
            "p10_p90_coverage": round(float(np.mean([r["p10_p90_coverage"] for r in rows])), 4),
            "p10_p90_coverage_min_season": round(float(np.min([r["p10_p90_coverage"] for r in rows])), 4),
            "p10_p90_coverage_max_season": round(float(np.max([r["p10_p90_coverage"] for r in rows])), 4),
            "p10_p90_coverage_by_season": {str(r["season"]): round(r["p10_p90_coverage"], 4) for r in rows},
            "county_p10_p90_covered_seasons": int(sum(r["county_covered"] for r in rows)),
            "coverage_given_season_by_season": {str(r["season"]): round(r["coverage_given_season"], 4) for r in rows},
            "county_p10_p90_seasons": len(rows),
            "week_grade_wmape": round(float(np.mean([r["week_grade_wmape"] for r in rows])), 4),
            "week_wmape": round(float(np.mean([r["cells"]["week_wmape"] for r in rows])), 4),
            "grade_wmape": round(float(np.mean([r["cells"]["grade_wmape"] for r in rows])), 4),
            "cell_kg_in_p10_p90": round(float(np.mean([r["cells"]["kg_in_p10_p90"] for r in rows])), 4),
            "fruit_counts": _pool_counts(rows),
            "bloom_mae_days": round(float(np.mean([r["bloom_mae_days"] for r in rows])), 2),
        }
    return {"summary": summary, "per_season": per, "fit_s_median": statistics.median(fit_s)}


def _pool_counts(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Counted orchards' scores without and with their sample-tree counts, means over seasons."""
    got = [r["fruit_counts"] for r in rows if r.get("fruit_counts")]
    if not got:
        return None
    return {"orchards_per_season": round(float(np.mean([g["orchards"] for g in got])), 1),
            **{w: {k: round(float(np.mean([g[w][k] for g in got])), 4) for k in ("wmape", "coverage", "rel_width")}
               for w in ("without", "with")}}


def _tile(tab: OrchardTable, rec: SeasonRecord, n: int, rng: np.random.Generator
          ) -> tuple[OrchardTable, SeasonWeather, Observations, np.ndarray]:
    ref = np.arange(n) % tab.n
    t = OrchardTable(tab.area_mu[ref] * rng.uniform(0.8, 1.25, n), tab.tree_count[ref].astype(np.float64),
                     tab.planting_year[ref], tab.elevation_m[ref], tab.latitude_deg[ref] + rng.normal(0, 0.01, n))
    w = rec.weather
    shift = rng.normal(0, 0.5, (n, 1)).astype(np.float32)
    f32 = np.float32
    sw = SeasonWeather(w.season, w.tmin_c[ref].astype(f32) + shift, w.tmax_c[ref].astype(f32) + shift,
                       w.rain_mm[ref].astype(f32), w.soil_vwc[ref].astype(f32), w.leaf_wet_h[ref].astype(f32),
                       w.rh_pct[ref].astype(f32))
    o = rec.observations
    assert o is not None
    return t, sw, o.subset(ref), ref


def speed(h: Any, tab: OrchardTable, season: int, big_n: int, repeats: int) -> dict[str, Any]:
    recs = [season_record(h, s) for s in h.seasons]
    train = [r for r in recs if r.season < season]
    target = next(r for r in recs if r.season == season)
    t0 = time.perf_counter()
    fcr = Forecaster(tab, train)
    prep_s = time.perf_counter() - t0
    as_of = _centroid_day(target) - 60
    t0 = time.perf_counter()
    fcr.fit(as_of)
    fit_s = time.perf_counter() - t0
    comp = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fcr.forecast(target.weather, as_of, target.observations)
        comp.append(time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    mem: dict[str, float] = {}
    big_s = float("nan")
    sizes = sorted({max(big_n // 4, 1), max(big_n // 2, 1), big_n})
    for n in sizes:
        t, sw, obs, ref = _tile(tab, target, n, rng)
        gc.collect()
        tracemalloc.start()
        t0 = time.perf_counter()
        fcr.forecast(sw, as_of, obs, orchards=t, ref_idx=ref, chunk=10_000)
        el = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        mem[str(n)] = peak / n
        if n == big_n:
            t0 = time.perf_counter()
            fcr.forecast(sw, as_of, obs, orchards=t, ref_idx=ref, chunk=10_000)
            big_s = min(el, time.perf_counter() - t0)  # the traced run is slower; keep the better
        del t, sw, obs, ref
    per = list(mem.values())
    return {"orchards": tab.n, "history_prepare_s": round(prep_s, 3), "fit_s": round(fit_s, 3),
            "compute_s_median": round(statistics.median(comp), 3), "compute_s_all": [round(c, 3) for c in comp],
            "big_orchards": big_n, "big_compute_s": round(big_s, 2),
            "peak_bytes_per_orchard": {k: round(v) for k, v in mem.items()},
            "memory_at_most_linear": bool(all(b <= a * 1.1 for a, b in itertools.pairwise(per)))}


SCALE_BASE_ORCHARDS = 1546
SCALE_HISTORY = (2021, 2022, 2023, 2024, 2025)
SCALE_SEASON = 2026


def scale_one(n: int, chunk: int = 10_000) -> dict[str, Any]:
    """One forecast of ``n`` synthetic orchards (``orchard_models.synthetic``: a 1,546-orchard history,
    the target season's orchards tiled from it and built chunk-wise in float32), in this process:
    compute seconds (the model fit on the history is done first and reported apart) and the process's
    resident memory (peak, and before the forecast: the inputs). Run in a fresh process per size so
    that the peak RSS belongs to that size."""
    import resource

    from orchard_models.synthetic import make_scaled_target, make_world

    world = make_world(n=SCALE_BASE_ORCHARDS, seasons=SCALE_HISTORY, seed=7)
    fcr = Forecaster(world.orchards, world.seasons)
    as_of = (date(SCALE_SEASON, 6, 10) - season_start(SCALE_SEASON)).days   # about 60 days before harvest
    t0 = time.perf_counter()
    fcr.fit(as_of)
    fit_s = time.perf_counter() - t0
    tab, rec, ref = make_scaled_target(world.orchards, n, SCALE_SEASON)
    gc.collect()
    rss_in = _rss_now_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    fc = fcr.forecast(rec.weather, as_of, rec.observations, orchards=tab, ref_idx=ref, chunk=chunk)
    comp = time.perf_counter() - t0
    cpu = time.process_time() - c0
    load = os.getloadavg()[0]
    _p10, p50, _p90 = fc.cells()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # kB on Linux
    return {"orchards": n, "compute_s": round(comp, 3), "compute_cpu_s": round(cpu, 3), "load_avg_1min": round(load, 2),
            "fit_s": round(fit_s, 3), "rss_inputs_mb": round(rss_in, 1),
            "rss_peak_mb": round(peak, 1), "rss_peak_kb_per_orchard": round(peak * 1024.0 / n, 2),
            "forecast_kb_per_orchard_above_inputs": round(max(peak - rss_in, 0.0) * 1024.0 / n, 2),
            "cells": int(p50.size), "county_p50_t": round(float(fc.total_p50_kg.sum()) / 1000, 1)}


def _rss_now_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def scaling(sizes: list[int]) -> dict[str, Any]:
    """:func:`scale_one` for each size in its own process (peak RSS is a per-process high-water mark);
    memory is linear when the forecast's own peak per orchard does not grow with the orchard count."""
    import subprocess
    import sys

    runs = []
    for n in sizes:
        r = subprocess.run([sys.executable, "-m", "bench", "forecast", "--scale-one", str(n)], capture_output=True,
                           text=True, check=True)
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    # at most linear: the process's peak RSS per orchard does not grow with the orchard count (the
    # forecast's own working set is bounded by its 10,000-orchard chunk, the inputs are linear)
    per = [r["rss_peak_kb_per_orchard"] for r in runs]
    by_n = {r["orchards"]: r for r in runs}
    return {"runs": runs,
            "compute_1546_s": by_n.get(1546, {}).get("compute_s"),
            "compute_100000_s": by_n.get(100_000, {}).get("compute_s"),
            "memory_linear": bool(all(b <= a * 1.1 for a, b in itertools.pairwise(per)))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench forecast", description=__doc__.split("\n")[0])
    ap.add_argument("--orchards", type=int, default=1546, help="orchards in the seeded registry")
    ap.add_argument("--seasons", default="2017-2026", help="simulated seasons, e.g. 2017-2026")
    ap.add_argument("--targets", default="2020-2026", help="seasons to forecast (each from the earlier ones)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--big", type=int, default=100_000, help="synthetic orchards for the scale test")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--horizons", default="90,60,30", help="days before the harvest centroid, e.g. 60,30")
    ap.add_argument("--no-speed", action="store_true", help="skip the tiled speed test (backtest only)")
    ap.add_argument("--scale", default="", help="synthetic scaling run: orchard counts, e.g. 1546,10000,100000 "
                                                "(compute s and peak RSS each, in a fresh process); alone with "
                                                "--scale-only")
    ap.add_argument("--scale-only", action="store_true", help="only the --scale run")
    ap.add_argument("--scale-one", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.scale_one:
        print(json.dumps(scale_one(a.scale_one)))
        return 0
    scale = scaling([int(x) for x in a.scale.split(",") if x.strip()]) if a.scale else None
    if a.scale_only:
        assert scale is not None, "--scale-only needs --scale N,N,..."
        sizes = {r["orchards"]: r["compute_s"] for r in scale["runs"]}
        goals = {"compute_1546_s_max": 1.0, "compute_100000_s_max": 60.0, "memory_at_most_linear": True}
        meets = (sizes.get(1546, float("inf")) < 1.0 and sizes.get(100_000, float("inf")) < 60.0
                 and bool(scale["memory_linear"]))
        print(json.dumps({"benchmark": "forecast-scale", "scale": scale, "goals": goals, "meets_goals": meets}))
        return 0
    global HORIZONS_DAYS
    HORIZONS_DAYS = tuple(int(x) for x in a.horizons.split(","))

    from registry.seed import SeedParams, generate
    from sim_sensors.history import generate_history

    def span(text: str) -> list[int]:
        lo, _, hi = text.partition("-")
        return list(range(int(lo), int(hi or lo) + 1))

    seasons = span(a.seasons)
    targets = [s for s in span(a.targets) if s in seasons and s - 1 in seasons]
    reg = generate(SeedParams(orchard_count=a.orchards, total_area_mu=176_000.0 * a.orchards / 1546,
                              reference_year=max(seasons)))
    t0 = time.perf_counter()
    h = generate_history(reg.orchards, seasons, seed=a.seed)
    gen_s = time.perf_counter() - t0
    tab = orchard_table(reg.orchards, h.orchard_ids)
    bt = backtest(h, tab, targets, a.seed)
    sp = (speed(h, tab, targets[-1], a.big, a.repeats) if not a.no_speed else
          {"compute_s_median": float("nan"), "big_compute_s": float("nan"), "memory_at_most_linear": False,
           "skipped": True})
    summ = bt["summary"]
    beats = {}
    for hz, s in summ.items():
        beats[hz] = {k: bool(s[f"model_{k}"] < s[f"last_season_{k}"] and s[f"model_{k}"] < s[f"mean_per_mu_{k}"])
                     for k in ("mape", "wmape", "county_ape")}
    cover_ok = all(0.70 <= s["p10_p90_coverage"] <= 0.90 for s in summ.values())
    # issue 16: in the shock seasons (late frost, drought) the 30-day county forecast beats last season x
    # area and its P10-P90 holds the harvest; the county interval holds in >= 90 % of seasons (per seed:
    # floor(0.9 x seasons), the pooled figure over seeds is in the dev note); week x grade cells
    # the county forecast is the county total's own P50 (forecast_runs.meta.county_total_kg, what
    # `yuncang forecast` prints, the centre of the county interval); the sum of the orchards' medians
    # (model_county_ape) is below it, a sum of medians not being the median of the sum -- both reported
    shock = [{"season": r["season"], "scenario": r["scenario"],
              "county_p50_ape": round(r["county_p50_ape"], 4),
              "model_county_ape": round(r["model"]["county_ape"], 4),
              "last_season_county_ape": round(r["last_season_x_area"]["county_ape"], 4),
              "beats_last_season": bool(r["county_p50_ape"] < r["last_season_x_area"]["county_ape"]),
              "sum_of_medians_beats_last_season": bool(r["model"]["county_ape"]
                                                       < r["last_season_x_area"]["county_ape"]),
              "county_held": r["county_covered"]}
             for r in bt["per_season"].get(30, []) if r["scenario"] in SHOCK_SCENARIOS]
    shock_ok = 30 in HORIZONS_DAYS and all(x["beats_last_season"] and x["county_held"] for x in shock)
    held_ok = ("30d" in summ and summ["30d"]["county_p10_p90_covered_seasons"]
               >= int(0.9 * summ["30d"]["county_p10_p90_seasons"]))
    cells_ok = all(h in summ and summ[h]["week_grade_wmape"] <= g for h, g in WEEK_GRADE_GOALS.items())
    goals = {"beat_both_baselines_every_horizon": True, "p10_p90_coverage_range": [0.70, 0.90],
             "shock_seasons_30d_beat_last_season_and_held": True,
             "county_interval_held_share_30d_min": 0.9, "week_grade_wmape_max": WEEK_GRADE_GOALS,
             "compute_1546_s_max": 1.0, "compute_100k_s_max": 60.0, "memory_at_most_linear": True}
    out = {
        "benchmark": "forecast", "seed": a.seed, "orchards": tab.n, "seasons": seasons, "targets": targets,
        "scenarios": {str(k): v for k, v in h.scenarios.items()}, "simulate_s": round(gen_s, 2),
        "horizons": summ, "beats_baselines": beats,
        "per_season": {f"{hz}d": [{"season": r["season"], "scenario": r["scenario"],
                                   "model_wmape": round(r["model"]["wmape"], 4),
                                   "last_season_wmape": round(r["last_season_x_area"]["wmape"], 4),
                                   "mean_per_mu_wmape": round(r["mean_per_mu"]["wmape"], 4),
                                   "model_county_ape": round(r["model"]["county_ape"], 4),
                                   "county_p50_ape": round(r["county_p50_ape"], 4),
                                   "last_season_county_ape": round(r["last_season_x_area"]["county_ape"], 4),
                                   "coverage": round(r["p10_p90_coverage"], 4),
                                   "coverage_given_season": round(r["coverage_given_season"], 4),
                                   "county_actual_t": round(r["county_actual_t"], 1),
                                   "county_p10_p50_p90_t": [round(v, 1) for v in r["county_interval_t"]],
                                   "county_covered": r["county_covered"],
                                   "week_grade_wmape": round(r["week_grade_wmape"], 4),
                                   "county_centroid_error_days": round(r["cells"]["county_centroid_error_days"], 1),
                                   "cell_kg_in_p10_p90": round(r["cells"]["kg_in_p10_p90"], 4),
                                   "cell_kg_in_p10_p90_by_week": r["cells"]["by_week"],
                                   "fruit_counts": r["fruit_counts"]} for r in rows]
                       for hz, rows in bt["per_season"].items()},
        "fit_s_median": round(bt["fit_s_median"], 3),
        "compute_1546_s": sp["compute_s_median"], "compute_100k_s": sp["big_compute_s"], "speed": sp,
        "shock_seasons_30d": shock, "goal_checks": {
            "beats_baselines": bool(all(all(v.values()) for v in beats.values())), "coverage_in_range": cover_ok,
            "shock_seasons_30d": shock_ok, "county_held_30d": held_ok, "week_grade": cells_ok},
        "goals": goals,
    }
    out["meets_goals"] = bool(all(all(v.values()) for v in beats.values()) and cover_ok and shock_ok and held_ok
                              and cells_ok
                              and sp["compute_s_median"] < 1.0 and sp["big_compute_s"] < 60.0
                              and sp["memory_at_most_linear"])
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
