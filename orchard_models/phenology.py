"""Bloom date and harvest window per orchard from daily chill and heat sums.

Bloom: four model structures, all "forcing sums to a requirement" models; the one used is chosen by
cross-validation on the calibration seasons (:func:`calibrate_bloom`):

* ``sequential`` -- the sequential chill-then-heat model used with chillR (Luedeling et al. 2009,
  2013): chill portions (Dynamic model, Fishman et al. 1987) accumulate
  from 1 November until the chill requirement CR (CP) is met, then growing degree hours (ASYMCUR,
  Anderson et al. 1986) accumulate until the heat requirement HR (°C·h) is met; that day is full bloom.
  This is the production default, with the *assumed* Wushan crisp-plum requirements below.
* ``thermal_t1`` -- thermal time from a fixed forcing start date t1, no chill term (Cannell & Smith
  1983, J. Appl. Ecol. 20:951; the t1 of Chuine 2000): GDH summed from t1 until HR.
* ``sequential_t1`` -- as ``sequential``, but heat counts only from the later of chill fulfilment and
  t1 (chill cannot bring bloom before the date t1 at which forcing can begin; t1 as in Chuine 2000).
* ``uniforc`` -- Chuine's (2000, J. Theor. Biol. 207:337-347) UniForc: from t1, the daily forcing rate
  1 / (1 + exp(b (T - c))) of the daily mean temperature T summed until F*. Needs the daily mean
  temperature (``tmean_daily``); it is for records that come with daily means only (no hourly curve
  for ASYMCUR to integrate), and is a candidate only when the caller passes them.

Calibration is least squares on the days (a record never reaching bloom counts as the last day of its
season): a grid over CR / t1 / (b, c) with the best HR given each point, then a compass search from the
three best grid points; the structure is chosen by leave-one-season-out cross-validation within the
calibration seasons (never on a season being predicted), the simplest unless a more complex one lowers
the CV RMSE by more than 1 %. With fewer than 3 seasons or 20 records the sequential model / defaults stay.

Harvest: the fruit development period (FDP, days from full bloom to the harvest centroid) falls as
the heat of the first 30 days after bloom rises (GDH30; Ben Mimoun & DeJong 1999, Acta Hortic.
488:291-294; Lopez & DeJong 2007 for Prunus). FDP = a + b * GDH30 is fitted by least squares on
past seasons' harvest centroids; the spread of picking around the centroid (SD, days) likewise.
Defaults (*assumptions* for Wushan crisp plum without any history): CR 40 CP, HR 5,000 °C·h,
FDP 125 days, SD 7 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BloomParams", "HarvestParams", "calibrate_bloom", "calibrate_harvest", "degree_day_centroid", "gdh_after",
           "predict_bloom"]


@dataclass
class HarvestParams:
    fdp_intercept_days: float = 125.0   #: FDP at GDH30 = 0, days
    fdp_slope_days_per_kgdh: float = 0.0  #: change of FDP per 1,000 °C·h of GDH30, days
    spread_sd_days: float = 7.0         #: SD of picking dates around the centroid, days
    centroid_err_sd_days: float = 5.0   #: SD of the centroid prediction error, days
    n_obs: int = 0
    model: str = "fdp_gdh30"            #: "fdp_gdh30" or "degree_days" (whichever fitted the history better)
    dd_base_c: float = 5.0              #: degree-day base temperature of fruit development, °C
    dd_req: float = float("nan")        #: degree-days (daily mean - base) from bloom to the harvest centroid


BLOOM_MODELS = ("sequential", "thermal_t1", "sequential_t1", "uniforc")


@dataclass
class BloomParams:
    """Bloom-model parameters. The first four fields keep their old positions (``BloomParams(cr, hr)``).

    ``model`` names the structure (see the module docstring); ``forcing_start_day`` is the fitted t1
    (day index of the arrays the model was fitted on, -1 = heat from chill fulfilment only);
    ``forcing`` is "gdh" (ASYMCUR growing degree hours, °C·h) or "uniforc" (Chuine 2000 sigmoid of the
    daily mean temperature, then ``heat_req_gdh`` is F* in sigmoid units and ``uniforc_b``/``_c`` apply).
    """

    chill_req_cp: float = 40.0      #: chill requirement, chill portions
    heat_req_gdh: float = 5000.0    #: heat requirement after chill fulfilment / t1, °C·h (uniforc: F*)
    rmse_days: float = float("nan")  #: fit error on the calibration data, days
    n_obs: int = 0
    forcing_start_day: int = -1     #: t1, first day index whose heat may count (-1: from chill fulfilment)
    model: str = "sequential"       #: one of BLOOM_MODELS
    forcing: str = "gdh"            #: "gdh" (ASYMCUR) or "uniforc" (sigmoid of daily mean temperature)
    uniforc_b: float = float("nan")  #: Uniforc slope b (< 0), 1/°C
    uniforc_c: float = float("nan")  #: Uniforc midpoint c, °C
    cv_rmse_days: float = float("nan")  #: inner leave-one-season-out RMSE of the chosen model, days
    cv_rmse_by_model: dict[str, float] = field(default_factory=dict)  #: the same for every candidate


MIN_BLOOM_RECORDS = 20   #: fewer recorded bloom dates than this: keep the default requirements
MIN_CV_SEASONS = 3       #: fewer seasons with records: no inner cross-validation, the sequential model
MAX_SEARCH_ROWS = 400    #: records the grid search uses at most (seeded subsample); the final HR uses all
CR_GRID_STEP = 5.0
CR_GRID = np.arange(0.0, 90.1, CR_GRID_STEP)  #: chill requirements searched, CP (refined to 0.5)
T1_STEP = 7                                   #: grid step of the forcing start t1, days (refined to 1)
HR_QUANTILES = 24                             #: heat-requirement candidates per start (then refined)
UNIFORC_B = (-0.05, -0.1, -0.2, -0.3, -0.5, -0.75, -1.0, -1.5, -2.5)  #: Uniforc slopes searched, 1/°C
UNIFORC_C = tuple(np.arange(0.0, 24.1, 3.0))  #: Uniforc midpoints searched, °C
SIMPLER_WINS_WITHIN = 0.01   #: a more complex model must lower the inner-CV RMSE by more than this share


def uniforc_rate(tmean_c: np.ndarray, b: float, c: float) -> np.ndarray:
    """Daily forcing rate of Chuine's (2000) UniForc model, R_f = 1 / (1 + exp(b (T - c))) with b < 0
    (Chuine, I. 2000, J. Theor. Biol. 207:337-347, eq. 4; pyPhenology's ``sigmoid2``); T = daily mean
    temperature, °C; missing days give no forcing."""
    t = np.asarray(tmean_c, dtype=np.float64)
    with np.errstate(over="ignore"):
        r = 1.0 / (1.0 + np.exp(b * (t - c)))
    return np.where(np.isfinite(t), r, 0.0)


def _first_reach(cum: np.ndarray, target: np.ndarray, after: np.ndarray | None = None) -> np.ndarray:
    """Per row, first day index where ``cum >= target`` (and > ``after``); -1 when never."""
    ok = cum >= target[:, None]
    if after is not None:
        days = np.arange(cum.shape[1])
        ok &= days[None, :] > after[:, None]
    hit = ok.any(axis=1)
    return np.where(hit, ok.argmax(axis=1), -1)


def _forcing(gdh_daily: np.ndarray, p: BloomParams, tmean_daily: np.ndarray | None) -> np.ndarray:
    if p.forcing == "uniforc":
        if tmean_daily is None:
            raise ValueError("a Uniforc bloom model needs the daily mean temperature (tmean_daily)")
        return uniforc_rate(tmean_daily, p.uniforc_b, p.uniforc_c)
    return np.nan_to_num(np.asarray(gdh_daily, dtype=np.float64), nan=0.0)


def predict_bloom(chill_daily: np.ndarray, gdh_daily: np.ndarray, p: BloomParams,
                  tmean_daily: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(bloom day index, chill fulfilment day index) per orchard; -1 where not reached in the season.

    Chill fulfilment is the first day the summed chill portions reach CR; forcing counts on the days
    after s = max(chill fulfilment, t1) and bloom is the first day its sum reaches HR (module docstring).
    ``tmean_daily`` (daily mean temperature, °C) is needed only by a Uniforc-forcing model."""
    cum_cp = np.cumsum(np.nan_to_num(chill_daily, nan=0.0), axis=1, dtype=np.float64)
    cum_f = np.cumsum(_forcing(gdh_daily, p, tmean_daily), axis=1, dtype=np.float64)
    chill_day = _first_reach(cum_cp, np.full(cum_cp.shape[0], p.chill_req_cp))
    start = np.where(chill_day >= 0, np.maximum(chill_day, int(p.forcing_start_day)), -1)
    start = np.minimum(start, cum_f.shape[1] - 1)
    base = np.where(chill_day >= 0, cum_f[np.arange(cum_f.shape[0]), np.maximum(start, 0)], np.inf)
    bloom = _first_reach(cum_f, base + p.heat_req_gdh, after=start)
    bloom = np.where(chill_day >= 0, bloom, -1)
    return bloom, chill_day


class _Records:
    """The recorded bloom dates of several seasons as rows on one padded day axis (one row a record)."""

    def __init__(self, chill: list[np.ndarray], gdh: list[np.ndarray], obs: list[np.ndarray],
                 tmean: list[np.ndarray] | None) -> None:
        keep = [np.isfinite(b) & (b >= 0) for b in obs]
        width = max(c.shape[1] for c in chill)

        def pad(a: np.ndarray, ok: np.ndarray, fill: float) -> np.ndarray:
            a = np.asarray(a, dtype=np.float64)[ok]
            return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)

        self.cum_cp = np.cumsum(np.concatenate([pad(np.nan_to_num(c, nan=0.0), k, 0.0)
                                                for c, k in zip(chill, keep, strict=True)]), axis=1)
        self.gdh = np.concatenate([pad(np.nan_to_num(g, nan=0.0), k, 0.0) for g, k in zip(gdh, keep, strict=True)])
        self.tmean = (None if tmean is None else
                      np.concatenate([pad(t, k, np.nan) for t, k in zip(tmean, keep, strict=True)]))
        self.b = np.concatenate([np.asarray(b)[k] for b, k in zip(obs, keep, strict=True)]).astype(np.int64)
        self.last = np.concatenate([np.full(int(k.sum()), c.shape[1] - 1) for c, k in zip(chill, keep, strict=True)])
        self.season = np.concatenate([np.full(int(k.sum()), i) for i, k in enumerate(keep)])

    def daily(self, uniforc: tuple[float, float] | None) -> np.ndarray:
        """Daily forcing: the GDH, or with Uniforc's (b, c) the sigmoid rate of the daily mean."""
        if uniforc is None:
            return self.gdh
        if self.tmean is None:
            raise ValueError("the uniforc bloom model needs tmean_daily")
        return uniforc_rate(self.tmean, *uniforc)

    def take(self, rows: np.ndarray) -> _Records:
        out = object.__new__(_Records)
        for f in ("cum_cp", "gdh", "tmean", "b", "last", "season"):
            v = getattr(self, f)
            setattr(out, f, None if v is None else v[rows])
        return out


class _Forcing:
    """Cumulative forcing of a set of records, flattened with row offsets so that one ``searchsorted``
    finds, for every record and heat requirement, the first day the forcing sum reaches it."""

    def __init__(self, rec: _Records, daily: np.ndarray) -> None:
        self.cum = np.cumsum(daily, axis=1)
        n, self.width = self.cum.shape
        self.rows = np.arange(n)
        self.off = 2.0 * float(self.cum[:, -1].max(initial=0.0)) + 10.0
        self.flat = (self.cum + self.off * self.rows[:, None]).ravel()
        self.b, self.last = rec.b, rec.last

    def sse(self, start: np.ndarray, hrs: np.ndarray) -> np.ndarray:
        """Sum of squared day errors for each heat requirement of ``hrs`` (> 0); a record whose start is
        -1 (chill never met) or whose bloom is never reached is predicted on its last day."""
        ok = start >= 0
        base = self.cum[self.rows, np.maximum(start, 0)]
        tgt = base[None, :] + hrs[:, None] + (self.off * self.rows)[None, :]
        day = np.searchsorted(self.flat, tgt.ravel(), side="left").reshape(tgt.shape) - self.rows * self.width
        pred = np.where(ok[None, :] & (day <= self.last[None, :]), day, self.last[None, :])
        return np.sum((pred - self.b[None, :]).astype(np.float64) ** 2, axis=1)

    def best_hr(self, start: np.ndarray) -> tuple[float, float]:
        """(SSE, HR) minimising the squared error in days given the forcing start of every record: the
        implied heat sums' quantiles, then a fine line between the best one's neighbours."""
        ok = (start >= 0) & (start < self.b)
        implied = self.cum[self.rows[ok], self.b[ok]] - self.cum[self.rows[ok], start[ok]]
        implied = implied[implied > 0]
        if implied.size == 0:
            return np.inf, np.nan
        cand = np.unique(np.quantile(implied, np.linspace(0.02, 0.98, HR_QUANTILES)))
        sse = self.sse(start, cand)
        k = int(np.argmin(sse))
        fine = np.linspace(cand[max(k - 1, 0)], cand[min(k + 1, cand.size - 1)], 17)
        fine = fine[fine > 0]
        sse_f = self.sse(start, fine)
        j = int(np.argmin(sse_f))
        return (float(sse_f[j]), float(fine[j])) if sse_f[j] < sse[k] else (float(sse[k]), float(cand[k]))


def _grid(model: str, rec: _Records, cr_grid: np.ndarray) -> tuple[list, np.ndarray, list]:
    crs = cr_grid if model in ("sequential", "sequential_t1") else np.array([0.0])
    if model == "sequential":
        t1s = np.array([-1])
    else:
        t1s = np.arange(0, int(rec.b.max()) + 1, T1_STEP)
    forc = [(b, c) for b in UNIFORC_B for c in UNIFORC_C] if model == "uniforc" else [None]
    return list(crs), t1s, forc


def _fit_model(model: str, rec: _Records, cr_grid: np.ndarray) -> tuple[float, BloomParams]:
    """Least-squares fit of one bloom-model structure: a grid over (CR, t1, Uniforc b and c) with the
    best HR given each point (:meth:`_Forcing.best_hr`), then a compass (pattern) search from the three
    best grid points, halving each step down to 0.5 CP, 1 day, 0.25 °C and a 2 % change of b
    (Hooke & Jeeves 1961, J. ACM 8:212-229). Deterministic: no random start."""
    crs, t1s, forc = _grid(model, rec, cr_grid)
    free_cr, free_t1, free_f = len(crs) > 1, model != "sequential", model == "uniforc"
    chill_days: dict[float, np.ndarray] = {}
    forcing_cache: dict[Any, _Forcing] = {}
    seen: dict[tuple, tuple[float, float]] = {}

    def evaluate(cr: float, t1: int, fp: tuple[float, float] | None) -> tuple[float, float]:
        key = (round(cr, 4), int(t1), None if fp is None else (round(fp[0], 5), round(fp[1], 4)))
        if key in seen:
            return seen[key]
        if cr not in chill_days:
            chill_days[cr] = _first_reach(rec.cum_cp, np.full(rec.b.size, cr))
        if fp not in forcing_cache:
            forcing_cache[fp] = _Forcing(rec, rec.daily(fp))
        f, cd = forcing_cache[fp], chill_days[cr]
        start = np.minimum(np.where(cd >= 0, np.maximum(cd, t1), -1), f.width - 1)
        seen[key] = f.best_hr(start)
        return seen[key]

    coarse = sorted(((evaluate(cr, t1, fp)[0], float(cr), int(t1), fp) for fp in forc for cr in crs for t1 in t1s),
                    key=lambda r: (r[0], r[1], r[2]))
    best = coarse[0]
    for sse, cr, t1, fp in coarse[:3]:
        step = [CR_GRID_STEP if free_cr else 0.0, 4.0 if free_t1 else 0.0,
                1.25 if free_f else 0.0, 1.0 if free_f else 0.0]
        least = [0.5, 1.0, 1.02, 0.25]
        pt = [cr, t1, fp[0] if fp else 0.0, fp[1] if fp else 0.0]
        while any(st > 0 for st in step):
            moved = False
            for d in range(4):
                if step[d] <= 0:
                    continue
                for sign in (1, -1):
                    q = list(pt)
                    q[d] = q[d] * step[d] ** sign if d == 2 else q[d] + sign * step[d]
                    if q[0] < 0 or (free_t1 and q[1] < 0) or (free_f and not -20.0 <= q[2] < 0):
                        continue
                    e = evaluate(q[0], round(q[1]), (q[2], q[3]) if free_f else None)[0]
                    if e < sse - 1e-9:
                        sse, pt, moved = e, q, True
            if not moved:
                step = [(st ** 0.5 if d == 2 else st / 2.0) if st > 0 else 0.0 for d, st in enumerate(step)]
                step = [st if st >= least[d] else 0.0 for d, st in enumerate(step)]
        cand = (sse, pt[0], round(pt[1]), (pt[2], pt[3]) if free_f else None)
        if cand[0] < best[0]:
            best = cand
    sse, cr, t1, fp = best
    hr = evaluate(cr, t1, fp)[1]
    if not np.isfinite(sse):
        return np.inf, BloomParams()
    p = BloomParams(float(cr), float(hr), float(np.sqrt(sse / rec.b.size)), int(rec.b.size), int(t1), model,
                    "gdh" if fp is None else "uniforc", np.nan if fp is None else float(fp[0]),
                    np.nan if fp is None else float(fp[1]))
    return float(sse), p


def _rmse_on(rec: _Records, p: BloomParams) -> tuple[float, int]:
    """(sum of squared day errors, records) of a fitted model on records (not reached = last day)."""
    f = _Forcing(rec, rec.daily(None if p.forcing == "gdh" else (p.uniforc_b, p.uniforc_c)))
    cd = _first_reach(rec.cum_cp, np.full(rec.b.size, p.chill_req_cp))
    start = np.minimum(np.where(cd >= 0, np.maximum(cd, p.forcing_start_day), -1), f.width - 1)
    return float(f.sse(start, np.array([p.heat_req_gdh]))[0]), int(rec.b.size)


def _subsample(rec: _Records, max_rows: int, seed: int) -> _Records:
    if rec.b.size <= max_rows:
        return rec
    rows = np.sort(np.random.default_rng(seed).choice(rec.b.size, max_rows, replace=False))
    return rec.take(rows)


def calibrate_bloom(chill_daily: list[np.ndarray], gdh_daily: list[np.ndarray], bloom_obs: list[np.ndarray],
                    cr_grid: np.ndarray | None = None, default: BloomParams | None = None, *,
                    min_records: int = MIN_BLOOM_RECORDS, hr_candidates: int = 0,
                    tmean_daily: list[np.ndarray] | None = None, models: tuple[str, ...] | None = None,
                    max_search_rows: int = MAX_SEARCH_ROWS, seed: int = 0) -> BloomParams:
    """Fit the bloom model to recorded bloom day indices (NaN or < 0 = not recorded), one array per season.

    Every candidate structure (``models``; default: sequential, thermal_t1, sequential_t1, and uniforc
    when ``tmean_daily`` is given) is fitted by least squares on the days (:func:`_fit_model`). With
    records in at least ``MIN_CV_SEASONS`` seasons the structure is chosen by leave-one-season-out
    cross-validation *within these seasons* (the simplest one unless a more complex one lowers the CV
    RMSE by more than 1 %), then refitted on all of them; with fewer seasons it is the sequential model.
    The grid search uses at most ``max_search_rows`` records (seeded subsample, for orchard histories of
    thousands of orchard-seasons); the chosen model's HR is then refitted on all records.
    ``hr_candidates`` is accepted for compatibility and ignored (the HR search is exhaustive now)."""
    del hr_candidates
    default = default or BloomParams()
    n_rec = sum(int(np.sum(np.isfinite(b) & (b >= 0))) for b in bloom_obs)
    if n_rec < min_records:
        return default
    grid = CR_GRID if cr_grid is None else np.asarray(cr_grid, dtype=np.float64)
    if models is None:
        models = BLOOM_MODELS if tmean_daily is not None else BLOOM_MODELS[:3]
    if "uniforc" in models and tmean_daily is None:
        raise ValueError("the uniforc bloom model needs tmean_daily")
    rec_all = _Records(chill_daily, gdh_daily, bloom_obs, tmean_daily)
    rec = _subsample(rec_all, max_search_rows, seed)
    seasons = np.unique(rec.season)
    cv: dict[str, float] = {}
    if len(models) > 1 and seasons.size >= MIN_CV_SEASONS:
        for m in models:
            sse = 0.0
            for s in seasons:
                _, p = _fit_model(m, rec.take(np.flatnonzero(rec.season != s)), grid)
                e, _ = _rmse_on(rec.take(np.flatnonzero(rec.season == s)), p)
                sse += e
            cv[m] = float(np.sqrt(sse / rec.b.size))
        chosen = models[0]
        for m in models[1:]:
            if cv[m] < cv[chosen] * (1.0 - SIMPLER_WINS_WITHIN):
                chosen = m
    else:
        chosen = "sequential" if "sequential" in models else models[0]
    sse, p = _fit_model(chosen, rec, grid)
    if not np.isfinite(sse):
        return default
    if rec is not rec_all:   # the HR again on every record, given the searched CR, t1 and forcing
        f = _Forcing(rec_all, rec_all.daily(None if p.forcing == "gdh" else (p.uniforc_b, p.uniforc_c)))
        cd = _first_reach(rec_all.cum_cp, np.full(rec_all.b.size, p.chill_req_cp))
        start = np.minimum(np.where(cd >= 0, np.maximum(cd, p.forcing_start_day), -1), f.width - 1)
        sse, p.heat_req_gdh = f.best_hr(start)
    p.rmse_days = float(np.sqrt(sse / rec_all.b.size))
    p.n_obs = int(rec_all.b.size)
    p.cv_rmse_days = cv.get(chosen, float("nan"))
    p.cv_rmse_by_model = {k: round(v, 4) for k, v in cv.items()}
    return p


def gdh_after(gdh_daily: np.ndarray, start_day: np.ndarray, days: int = 30) -> np.ndarray:
    """Growing degree hours (°C·h) in the ``days`` days from ``start_day`` on (NaN where start < 0)."""
    cum = np.concatenate([np.zeros((gdh_daily.shape[0], 1)), np.cumsum(gdh_daily, axis=1, dtype=np.float64)], axis=1)
    n_d = gdh_daily.shape[1]
    s = np.clip(start_day, 0, n_d)
    e = np.clip(start_day + days, 0, n_d)
    rows = np.arange(cum.shape[0])
    out = cum[rows, e] - cum[rows, s]
    return np.where(start_day >= 0, out, np.nan)


DD_BASES_C = (0.0, 2.5, 5.0, 7.5, 10.0)


def degree_day_centroid(tmean_c: np.ndarray, bloom_day: np.ndarray, base_c: float, req: float) -> np.ndarray:
    """Day index when degree-days (daily mean temperature - base, °C·d) summed from bloom reach ``req``
    (the thermal-time model of fruit maturity, e.g. Ruml et al. 2010 for plum); NaN if never/unknown."""
    dd = np.clip(np.nan_to_num(tmean_c, nan=0.0) - base_c, 0.0, None)
    cum = np.cumsum(dd, axis=1)
    rows = np.arange(cum.shape[0])
    b = np.clip(bloom_day, 0, cum.shape[1] - 1)
    target = cum[rows, b] + req
    hit = _first_reach(cum, target, after=b)
    return np.where((bloom_day >= 0) & (hit >= 0), hit.astype(np.float64), np.nan)


def calibrate_harvest(bloom_day: list[np.ndarray], gdh30: list[np.ndarray], centroid_day: list[np.ndarray],
                      spread_day: list[np.ndarray], default: HarvestParams | None = None,
                      tmean_c: list[np.ndarray] | None = None) -> HarvestParams:
    """Fit the harvest centroid from past orchard-seasons (NaN = unknown) by two models and keep the
    one with the smaller RMSE: FDP = a + b * GDH30/1000 (Ben Mimoun & DeJong 1999) and a degree-day
    sum from bloom (base temperature by grid search, requirement = median of the implied sums)."""
    hp = _calibrate_fdp(bloom_day, gdh30, centroid_day, spread_day, default)
    if tmean_c is None or hp.n_obs < 5:
        return hp
    best: tuple[float, float, float] | None = None
    for base in DD_BASES_C:
        implied, pairs = [], []
        for b, c, t in zip(bloom_day, centroid_day, tmean_c, strict=True):
            ok = np.isfinite(b) & (b >= 0) & np.isfinite(c)
            if not ok.any():
                continue
            dd = np.clip(np.nan_to_num(t[ok], nan=0.0) - base, 0.0, None)
            cum = np.cumsum(dd, axis=1)
            rows = np.arange(cum.shape[0])
            bi = b[ok].astype(int)
            ci = np.clip(np.round(c[ok]).astype(int), 0, cum.shape[1] - 1)
            implied.append(cum[rows, ci] - cum[rows, bi])
            pairs.append((t[ok], bi, c[ok]))
        if not implied:
            return hp
        req = float(np.median(np.concatenate(implied)))
        err = np.concatenate([degree_day_centroid(t, bi, base, req) - c for t, bi, c in pairs])
        rmse = float(np.sqrt(np.nanmean(err ** 2)))
        if best is None or rmse < best[2]:
            best = (base, req, rmse)
    assert best is not None
    if best[2] < hp.centroid_err_sd_days:
        return HarvestParams(hp.fdp_intercept_days, hp.fdp_slope_days_per_kgdh, hp.spread_sd_days,
                             max(best[2], 1.0), hp.n_obs, "degree_days", best[0], best[1])
    return hp


def _calibrate_fdp(bloom_day: list[np.ndarray], gdh30: list[np.ndarray], centroid_day: list[np.ndarray],
                   spread_day: list[np.ndarray], default: HarvestParams | None = None) -> HarvestParams:
    default = default or HarvestParams()
    b = np.concatenate(bloom_day).astype(np.float64)
    g = np.concatenate(gdh30) / 1000.0
    c = np.concatenate(centroid_day)
    sp = np.concatenate(spread_day)
    ok = np.isfinite(b) & (b >= 0) & np.isfinite(g) & np.isfinite(c)
    if ok.sum() < 5:
        return default
    fdp = c[ok] - b[ok]
    x = g[ok]
    if np.std(x) > 1e-6 and ok.sum() >= 20:
        slope, icpt = np.polyfit(x, fdp, 1)
    else:
        slope, icpt = 0.0, float(np.mean(fdp))
    resid = fdp - (icpt + slope * x)
    spread = float(np.nanmedian(sp[ok])) if np.isfinite(sp[ok]).any() else default.spread_sd_days
    return HarvestParams(float(icpt), float(slope), max(spread, 1.0), float(max(np.std(resid), 1.0)), int(ok.sum()))
