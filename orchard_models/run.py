"""The scheduler's entry point: one call reads everything, forecasts all orchards, writes one versioned run."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from orchard_models.alerts import ALERT_KINDS, build_alerts
from orchard_models.forecast import MODEL_VERSION, Forecaster, SeasonForecast
from orchard_models.fruit_counts import read_fruit_counts
from orchard_models.inputs import ModelInputs, read_inputs, season_of
from orchard_models.weather import fill_gaps, season_start
from registry.alerts import raise_alerts, resolve_alerts
from registry.grades import GRADE_CODES

__all__ = ["forecast_all", "write_run"]

log = logging.getLogger(__name__)

#: alerts are raised only by runs whose as-of time is this close to the wall clock (not by backfills)
ALERT_MAX_AGE = timedelta(days=2)


def forecast_all(conn: psycopg.Connection, as_of: datetime, season: int | None = None, *,
                 alerts: bool | None = None, hourly_days: int | None = 60) -> int:
    """Forecast every orchard's supply for ``season`` (default: the season running at ``as_of``) from
    the data known at ``as_of`` and store it as one run; returns its ``run_id``.

    Writes ``forecast_runs``, ``forecasts`` (orchard x harvest week x grade, P10/P50/P90 kg) and
    ``forecast_orchards`` (bloom, harvest window, totals, risk indices) in one transaction, and
    raises/resolves risk alerts when ``alerts`` (default: only when ``as_of`` is within 2 days of now).
    """
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    season = season or season_of(as_of)
    t0 = time.perf_counter()
    inp = read_inputs(conn, as_of, season, hourly_days=hourly_days)
    t_read = time.perf_counter() - t0
    fc_model = Forecaster(inp.orchards, inp.history)
    ids = inp.orchards.orchard_ids or []
    counts = read_fruit_counts(conn, {oid: i for i, oid in enumerate(ids)}, season_start(season), as_of)
    fc = fc_model.forecast(inp.target, inp.as_of_day, inp.observations, counts=counts)
    t_model = time.perf_counter() - t0 - t_read
    if alerts is None:
        alerts = abs(datetime.now(UTC) - as_of) <= ALERT_MAX_AGE
    meta: dict[str, Any] = {
        "as_of_day": inp.as_of_day, "history_seasons": [r.season for r in inp.history], "coverage": inp.coverage,
        "bloom_params": vars(fc_model.bloom_params), "harvest_params": vars(fc_model.harvest_params),
        "climatology": fc_model.clim_source, "timings_s": {"read": round(t_read, 3), "model": round(t_model, 3),
                                                           **{k: round(v, 3) for k, v in fc.timings_s.items()}},
    }
    yfit = fc_model.fit(inp.as_of_day)[0]
    meta["yield_fit"] = {"rows": yfit.n_rows, "seasons": yfit.seasons, "calib_k": round(yfit.calib_k, 3),
                         "sigma_within": round(float(np.sqrt(yfit.sigma2_within)), 4),
                         "sigma_season": round(float(np.sqrt(yfit.sigma2_season)), 4),
                         "sigma_base": None if yfit.sigma2_base is None else round(float(np.sqrt(yfit.sigma2_base)), 4),
                         "omega": round(float(np.sqrt(yfit.omega2)), 4)}
    # the county total's own quantiles (common season shock + orchards' noise that averages out);
    # the sums of the orchards' P10/P90 would treat every orchard as failing at once
    meta["fruit_counts_orchards"] = int(((counts.day >= 0) & (counts.day <= inp.as_of_day)).sum())
    meta["county_total_kg"] = dict(zip(("p10", "p50", "p90"), (round(v, 1) for v in fc.county_kg), strict=True))
    with conn.transaction():
        run_id = write_run(conn, inp, fc, as_of, meta)
        n_alerts = _alerts(conn, inp, fc, fc_model.field_capacity) if alerts else 0
    log.info("forecast run written", extra={"run_id": run_id, "season": season, "orchards": inp.orchards.n,
                                            "county_p50_kg": round(float(fc.total_p50_kg.sum())),
                                            "alerts": n_alerts, "seconds": round(time.perf_counter() - t0, 2)})
    return run_id


def write_run(conn: psycopg.Connection, inp: ModelInputs, fc: SeasonForecast, as_of: datetime,
              meta: dict[str, Any]) -> int:
    """Insert the run and its rows (COPY); returns the run id. Runs in the caller's transaction."""
    ids = inp.orchards.orchard_ids or []
    row = conn.execute(
        "INSERT INTO forecast_runs (as_of, season, model_version, orchard_count, meta) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING run_id",
        (as_of, fc.season, MODEL_VERSION, len(ids), Jsonb(_jsonable(meta)))).fetchone()
    assert row is not None
    run_id = int(row[0])
    p10, p50, p90 = fc.cells()
    o_idx, w_idx, g_idx = np.nonzero(p90 > 0)
    with conn.cursor().copy(
            "COPY forecasts (run_id, orchard_id, week_start, grade, p10_kg, p50_kg, p90_kg) FROM STDIN") as cp:
        for o, w, g in zip(o_idx.tolist(), w_idx.tolist(), g_idx.tolist(), strict=True):
            cp.write_row((run_id, ids[o], fc.week_starts[w], GRADE_CODES[g],
                          float(p10[o, w, g]), float(p50[o, w, g]), float(p90[o, w, g])))
    bloom = fc.day_to_date(fc.bloom_day)
    hs = fc.day_to_date(fc.harvest_start_day)
    he = fc.day_to_date(fc.harvest_end_day)
    risks = fc.risk.as_dicts()
    age = fc.season - inp.orchards.planting_year
    with conn.cursor().copy(
            "COPY forecast_orchards (run_id, orchard_id, bloom_date, harvest_start, harvest_end, "
            "total_p10_kg, total_p50_kg, total_p90_kg, risk) FROM STDIN") as cp:
        for i, oid in enumerate(ids):
            r = dict(risks[i])
            r["age_years"] = int(age[i])
            r["grade_share"] = {g: round(float(fc.grade_share[i, k]), 4) for k, g in enumerate(GRADE_CODES)}
            cp.write_row((run_id, oid, bloom[i], hs[i], he[i], float(fc.total_p10_kg[i]),
                          float(fc.total_p50_kg[i]), float(fc.total_p90_kg[i]), Jsonb(r)))
    return run_id


def _alerts(conn: psycopg.Connection, inp: ModelInputs, fc: SeasonForecast, field_capacity: np.ndarray) -> int:
    w = inp.target
    cut = max(inp.as_of_day + 1, 0)
    tn = w.tmin_c.copy()
    tx = w.tmax_c.copy()
    tn[:, cut:] = np.nan
    tx[:, cut:] = np.nan
    found = build_alerts(orchard_ids=inp.orchards.orchard_ids or [], season=fc.season, as_of_day=inp.as_of_day,
                         bloom_day=fc.bloom_day, harvest_end_day=fc.harvest_end_day, tmin_c=tn, tmax_c=tx,
                         soil_vwc=w.soil_vwc, leaf_wet_h=fill_gaps(w.leaf_wet_h), field_capacity=field_capacity)
    n = raise_alerts(conn, found)
    for kind in ALERT_KINDS:
        resolve_alerts(conn, kind=kind, keep_open={a.dedupe_key for a in found if a.kind == kind})
    return n


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if not np.isfinite(f) else f
    if isinstance(v, np.integer):
        return int(v)
    return v
