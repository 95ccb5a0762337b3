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

__all__ = ["BloomParams", "HarvestParams", "calibrate_bloom", "calibrate_harvest", "gdh_after", "predict_bloom"]


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
                    cr_grid: np.ndarray | None = None, default: BloomParams | None = None) -> BloomParams:
    """Fit CR and HR to recorded bloom day indices (NaN or < 0 = not recorded), several seasons."""
    default = default or BloomParams()
    cps = [c for c, b in zip(chill_daily, bloom_obs, strict=True) if np.any(np.isfinite(b) & (b >= 0))]
    if not cps:
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
        hr = float(np.nanmedian(allh))
        errs: list[np.ndarray] = []
        for c, g, b in zip(chill_daily, gdh_daily, bloom_obs, strict=True):
            ok = np.isfinite(b) & (b >= 0)
            if not ok.any():
                continue
            pred, _ = predict_bloom(c[ok], g[ok], BloomParams(cr, hr))
            e = np.where(pred >= 0, pred - b[ok], 60.0)
            errs.append(e)
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


def calibrate_harvest(bloom_day: list[np.ndarray], gdh30: list[np.ndarray], centroid_day: list[np.ndarray],
                      spread_day: list[np.ndarray], default: HarvestParams | None = None) -> HarvestParams:
    """Fit FDP = a + b * GDH30/1000 and the picking spread from past orchard-seasons (NaN = unknown)."""
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
