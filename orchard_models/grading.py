"""Share of each fruit grade (size class, ``registry.grades``) in an orchard's crop, and the harvest-week split.

Grade shares: additive log-ratio regression (Aitchison 1986) of the grade shares on crop load
(log kg/mu relative to the history's mean: a heavier crop gives smaller fruit), water stress,
fruit-set observation and elevation, fitted by ridge least squares on past orchard-seasons with
graded harvests. Without graded history the default shares (*assumption*: 30 % premium, 45 %
grade 1, 25 % grade 2) are used.

Week split: picking dates ~ Normal(centroid, SD) (see :mod:`orchard_models.phenology`), integrated
over each Monday-to-Sunday week (Asia/Shanghai dates), weeks under ``min_share`` dropped. With an
ensemble of centroids (the weather still to come, :meth:`orchard_models.forecast.Forecaster._timing_members`)
the shares are integrated over the timing distribution as well (:func:`week_share_distribution`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from scipy.special import ndtr

__all__ = ["GradeModel", "fit_grades", "harvest_weeks", "predict_grades", "week_share_distribution", "week_shares"]

DEFAULT_SHARES = (0.30, 0.45, 0.25)


@dataclass
class GradeModel:
    coef: np.ndarray | None = None             #: (features, grades - 1) ALR coefficients
    default: tuple[float, ...] = DEFAULT_SHARES
    load_mean: float = 0.0
    n_rows: int = 0
    shares_mean: list[float] = field(default_factory=list)
    resid_sd: list[float] = field(default_factory=list)   #: SD of the ALR residuals per log-ratio

    def log_sd(self) -> np.ndarray:
        """Approximate SD of each grade's log share (grades,): the log-ratio residual SD of the non-base
        grades, and their mean for the base grade (its share moves with theirs); 0 without a fit."""
        n_g = len(self.default)
        if not self.resid_sd:
            return np.zeros(n_g)
        r = np.asarray(self.resid_sd, dtype=np.float64)
        return np.concatenate([r, [float(r.mean())]])


def _grade_x(log_load: np.ndarray, water: np.ndarray, fruit_set_x: np.ndarray, elev_100m: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(log_load), log_load, water, fruit_set_x, elev_100m])


def fit_grades(shares: np.ndarray, log_load: np.ndarray, water: np.ndarray, fruit_set_x: np.ndarray,
               elev_100m: np.ndarray, ridge: float = 1.0) -> GradeModel:
    """Fit from rows (orchard-seasons): shares (n, g) summing to 1 and their features (n,)."""
    ok = np.isfinite(shares).all(axis=1) & np.isfinite(log_load)
    if ok.sum() < 10:
        return GradeModel()
    s = np.clip(shares[ok], 0.005, 1.0)
    s = s / s.sum(axis=1, keepdims=True)
    z = np.log(s[:, :-1] / s[:, -1:])
    lm = float(np.mean(log_load[ok]))
    x = _grade_x(log_load[ok] - lm, water[ok], fruit_set_x[ok], elev_100m[ok])
    pen = ridge * np.eye(x.shape[1])
    pen[0, 0] = 0.0
    coef = np.linalg.solve(x.T @ x + pen, x.T @ z)
    resid = z - x @ coef
    return GradeModel(coef, DEFAULT_SHARES, lm, int(ok.sum()), [float(v) for v in s.mean(axis=0)],
                      [float(v) for v in resid.std(axis=0)])


def predict_grades(m: GradeModel, log_load: np.ndarray, water: np.ndarray, fruit_set_x: np.ndarray,
                   elev_100m: np.ndarray) -> np.ndarray:
    """Grade shares (orchard, grades), rows summing to 1."""
    n = log_load.shape[0]
    if m.coef is None:
        return np.tile(np.asarray(m.default, dtype=np.float64), (n, 1))
    x = _grade_x(log_load - m.load_mean, water, fruit_set_x, elev_100m)
    z = np.column_stack([x @ m.coef, np.zeros(n)])
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def harvest_weeks(first_day: date, last_day: date) -> list[date]:
    """Mondays of every week that overlaps [first_day, last_day]."""
    start = first_day - timedelta(days=first_day.weekday())
    out = []
    d = start
    while d <= last_day:
        out.append(d)
        d += timedelta(days=7)
    return out


def week_shares(centroid_day: np.ndarray, sd_days: np.ndarray | float, week_start_days: np.ndarray,
                min_share: float = 0.01) -> np.ndarray:
    """Share of each orchard's crop picked in each week (orchard, week), rows sum to 1 (0 if no centroid).

    ``centroid_day`` and ``week_start_days`` are day indices on the same axis; a week covers
    [start, start + 7) days; a picking day d counts the whole of [d, d + 1).
    """
    c = np.asarray(centroid_day, dtype=np.float64)[:, None]
    sd = np.maximum(np.asarray(sd_days, dtype=np.float64), 0.5)
    sd = sd[:, None] if np.ndim(sd) else sd
    lo = week_start_days[None, :].astype(np.float64)
    # centroid c is the mean of the picking day index; the day's mass spans [d, d + 1)
    w = ndtr((lo + 7.0 - 0.5 - c) / sd) - ndtr((lo - 0.5 - c) / sd)
    w = np.where(np.isfinite(c), w, 0.0)
    w = np.where(w < min_share, 0.0, w)
    tot = w.sum(axis=1, keepdims=True)
    return np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.0)


Z90 = 1.2815515655446004


def _raw_shares(c: np.ndarray, sd: float, lo: np.ndarray) -> np.ndarray:
    """Normal(c, sd) picking-day mass in each week [lo, lo + 7) (..., orchard, week); NaN c gives NaN."""
    c = c[..., None]
    return ndtr((lo + 7.0 - 0.5 - c) / sd) - ndtr((lo - 0.5 - c) / sd)


def week_share_distribution(members: np.ndarray, centroid_day: np.ndarray, spread_sd: float, err_sd: float,
                            week_start_days: np.ndarray, min_share: float = 0.01
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Week shares (orchard, week) integrated over the harvest-timing distribution, and their P10/P90-like
    envelope: (share, share_min, share_max).

    ``members`` (member, orchard): harvest centroids under each member of a weather ensemble (NaN where
    unknown); ``centroid_day`` (orchard,) the point centroid, used where no member has one. A picking
    day is Normal(member centroid, sqrt(spread^2 + err^2)) -- the picking spread around the centroid and
    the phenology model's own error -- and the members are equally likely, so the expected share of a
    week is the mean over members of the normal mass in it (the law of total probability: a mixture
    of normals, e.g. Raftery et al. 2005, Mon. Wea. Rev. 133:1155-1174, Bayesian model averaging of an
    ensemble). The P50 share of a week is the median over the members of that week's share (the median
    is the optimal point forecast under absolute error -- the cells are scored by wMAPE -- Gneiting 2011,
    J. Am. Stat. Assoc. 106:746-762), renormalised so that the orchard's shares sum to 1 after weeks
    under ``min_share`` are dropped; the ensemble mean was measured too and scored about the same.
    Envelope: per week the 10th/90th percentile of the members' shares, and the shares when
    the (ensemble-mean) centroid is moved by the model error's own P10/P90 (picking spread only),
    whichever is wider."""
    lo = np.asarray(week_start_days, dtype=np.float64)
    sd_eff = max(float(np.hypot(spread_sd, err_sd)), 0.5)
    cen = np.asarray(centroid_day, dtype=np.float64)
    m = np.asarray(members, dtype=np.float64)
    have = np.isfinite(m)
    m = np.where(have, m, cen[None, :])        # members without a centroid stand in with the point one
    ok = np.isfinite(m)
    # a member is NaN only where the point centroid is too (no bloom): such orchards get no weeks
    c_ok = ok.all(axis=0)
    raw = _raw_shares(np.where(c_ok[None, :], m, 0.0), sd_eff, lo)
    if m.shape[0] > 1:
        q10, mid, q90 = np.quantile(raw, [0.1, 0.5, 0.9], axis=0)
    else:
        q10 = mid = q90 = raw[0]
    c0 = np.where(c_ok, m.mean(axis=0), 0.0)
    sp = max(float(spread_sd), 0.5)
    shifted = [np.where(c_ok[:, None], _raw_shares(c0 + sgn * Z90 * err_sd, sp, lo), 0.0) for sgn in (-1.0, 1.0)]

    def norm(w: np.ndarray) -> np.ndarray:
        w = np.where(w < min_share, 0.0, w)
        tot = w.sum(axis=1, keepdims=True)
        return np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.0)

    share = norm(np.where(c_ok[:, None], mid, 0.0))
    w_min = np.minimum(share, np.minimum(np.minimum(*shifted), q10))
    w_max = np.maximum(share, np.maximum(np.maximum(*shifted), q90))
    return share, np.where(c_ok[:, None], w_min, 0.0), np.where(c_ok[:, None], w_max, 0.0)
