"""Bloom date and harvest window per orchard from daily chill and heat sums.

Bloom: the sequential chill-then-heat model used with chillR (Luedeling et al. 2009, 2013): chill
portions (Dynamic model) accumulate from 1 November until the chill requirement CR (CP) is met,
then growing degree hours (ASYMCUR) accumulate until the heat requirement HR (°C·h) is met; that
day is full bloom. CR and HR are fitted to recorded bloom dates by grid search over CR with HR
the median heat sum between chill fulfilment and the recorded bloom (least squares on the days).

Harvest: the fruit development period (FDP, days from full bloom to the harvest centroid) falls as
the heat of the first 30 days after bloom rises (GDH30; Ben Mimoun & DeJong 1999, Acta Hortic.
488:291-294; Lopez & DeJong 2007 for Prunus). FDP = a + b * GDH30 is fitted by least squares on
past seasons' harvest centroids; the spread of picking around the centroid (SD, days) likewise.
Defaults (*assumptions* for Wushan crisp plum without any history): CR 40 CP, HR 5,000 °C·h,
FDP 125 days, SD 7 days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BloomParams", "HarvestParams", "calibrate_bloom", "calibrate_harvest", "degree_day_centroid", "gdh_after",
           "predict_bloom"]


@dataclass
class BloomParams:
    chill_req_cp: float = 40.0      #: chill requirement, chill portions
    heat_req_gdh: float = 5000.0    #: heat requirement after chill fulfilment, °C·h
    rmse_days: float = float("nan")  #: fit error on the calibration data, days
    n_obs: int = 0


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


MIN_BLOOM_RECORDS = 20   #: fewer recorded bloom dates than this: keep the default requirements


def _first_reach(cum: np.ndarray, target: np.ndarray, after: np.ndarray | None = None) -> np.ndarray:
    """Per row, first day index where ``cum >= target`` (and > ``after``); -1 when never."""
    ok = cum >= target[:, None]
    if after is not None:
        days = np.arange(cum.shape[1])
        ok &= days[None, :] > after[:, None]
    hit = ok.any(axis=1)
    return np.where(hit, ok.argmax(axis=1), -1)


def predict_bloom(chill_daily: np.ndarray, gdh_daily: np.ndarray, p: BloomParams) -> tuple[np.ndarray, np.ndarray]:
    """(bloom day index, chill fulfilment day index) per orchard; -1 where not reached in the season."""
    cum_cp = np.cumsum(chill_daily, axis=1, dtype=np.float64)
    cum_gdh = np.cumsum(gdh_daily, axis=1, dtype=np.float64)
    chill_day = _first_reach(cum_cp, np.full(cum_cp.shape[0], p.chill_req_cp))
    base = np.where(chill_day >= 0, cum_gdh[np.arange(cum_gdh.shape[0]), np.maximum(chill_day, 0)], np.inf)
    bloom = _first_reach(cum_gdh, base + p.heat_req_gdh, after=chill_day)
    bloom = np.where(chill_day >= 0, bloom, -1)
    return bloom, chill_day


def calibrate_bloom(chill_daily: list[np.ndarray], gdh_daily: list[np.ndarray], bloom_obs: list[np.ndarray],
                    cr_grid: np.ndarray | None = None, default: BloomParams | None = None, *,
                    min_records: int = MIN_BLOOM_RECORDS, hr_candidates: int = 0) -> BloomParams:
    """Fit CR and HR to recorded bloom day indices (NaN or < 0 = not recorded), several seasons.

    For each CR of the grid, HR is the median heat sum implied by the records, or with
    ``hr_candidates`` > 0 the one of that many quantiles of the implied sums (10th-90th percentile,
    and the median) with the least squared error in days."""
    default = default or BloomParams()
    n_rec = sum(int(np.sum(np.isfinite(b) & (b >= 0))) for b in bloom_obs)
    if n_rec < min_records:
        return default
    grid = np.arange(15.0, 90.1, 2.5) if cr_grid is None else cr_grid
    best: tuple[float, float, float] | None = None
    n_obs = 0
    for cr in grid:
        implied: list[np.ndarray] = []
        for c, g, b in zip(chill_daily, gdh_daily, bloom_obs, strict=True):
            ok = np.isfinite(b) & (b >= 0)
            if not ok.any():
                continue
            cum_cp = np.cumsum(c[ok], axis=1, dtype=np.float64)
            cum_g = np.cumsum(g[ok], axis=1, dtype=np.float64)
            cd = _first_reach(cum_cp, np.full(cum_cp.shape[0], cr))
            bi = b[ok].astype(int)
            rows = np.arange(cd.size)
            hs = np.where((cd >= 0) & (cd < bi), cum_g[rows, bi] - cum_g[rows, np.maximum(cd, 0)], np.nan)
            implied.append(hs)
        allh = np.concatenate(implied)
        if np.mean(np.isnan(allh)) > 0.2:
            continue
        hrs = [float(np.nanmedian(allh))]
        if hr_candidates > 0:
            hrs += [float(q) for q in np.nanquantile(allh, np.linspace(0.1, 0.9, hr_candidates))]
        for hr in hrs:
            errs: list[np.ndarray] = []
            for c, g, b in zip(chill_daily, gdh_daily, bloom_obs, strict=True):
                ok = np.isfinite(b) & (b >= 0)
                if not ok.any():
                    continue
                pred, _ = predict_bloom(c[ok], g[ok], BloomParams(cr, hr))
                errs.append(np.where(pred >= 0, pred - b[ok], 60.0))
            err = np.concatenate(errs)
            rmse = float(np.sqrt(np.mean(err ** 2)))
            n_obs = err.size
            if best is None or rmse < best[2]:
                best = (float(cr), hr, rmse)
    if best is None:
        return default
    return BloomParams(best[0], best[1], best[2], n_obs)


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
