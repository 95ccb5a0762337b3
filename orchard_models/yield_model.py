"""Season yield per orchard (kg) with P10/P50/P90, pooled across orchards.

Model (log scale, per bearing orchard-season):
``log(kg / area_mu) = x·β + u_orchard + δ_season + ε``

* x: intercept; age 3 and age 4 indicators (economic yield from year 3, full bearing at 5: the
  age effects are fitted, with priors log 0.3 and log 0.7); log tree density (trees/mu over 45);
  frost survival log(1 - kill); water stress; heat degree-hours; brown-rot infection days;
  grower observations (log flower density, log fruit set, each with a missing indicator);
  elevation. Risk features are computed up to the forecast's as-of day *in every season alike*,
  so each horizon has its own coefficients (a direct forecast).
* β: Bayesian linear regression with Gaussian priors (agronomic prior means, e.g. frost survival
  coefficient 1 = yield proportional to surviving flowers) -- the data overrule the priors only
  where the history varies enough.
* u: orchard effect, empirical-Bayes shrinkage (James-Stein / Morris 1983): ``u = r̄ n τ² / (n τ² + σ²)``
  with τ² (between-orchard) and σ² (within-orchard) by the method of moments, so an orchard with
  one season borrows strength from all the others.
* δ: season effect common to all orchards, unknown in advance; its variance (with a weak prior of
  0.15² from 2 pseudo-seasons) enters every prediction.

Predictive SD = k · sqrt(σ² + σ_δ² + Var(u) + x Σβ xᵀ); k calibrated by leave-one-season-out so that
the P10-P90 interval covers 80 % of held-out orchard-seasons (k = 1 without 3 seasons of history).
Non-bearing orchards (age <= 2) take the empirical kg/mu quantiles of their age in the history
(0 without history).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FEATURES", "YieldFit", "design", "fit_yield", "predict_yield"]

Z90 = 1.2815515655446004  # standard normal 90 % quantile

FEATURES: tuple[str, ...] = (
    "intercept", "age3", "age4", "log_density", "log_frost_survival", "water_stress", "heat_kdh",
    "rot_days_10", "log_flower_density", "flower_missing", "log_fruit_set", "fruit_set_missing", "elev_100m",
)
PRIOR_MEAN = np.array([np.log(1200.0), np.log(0.3), np.log(0.7), 0.5, 1.0, -0.5, -0.1, -0.1,
                       0.7, 0.0, 0.7, 0.0, 0.0])
PRIOR_SD = np.array([2.0, 0.6, 0.4, 0.5, 0.4, 0.6, 0.3, 0.3, 0.6, 0.5, 0.6, 0.5, 0.3])
REF_DENSITY_PER_MU = 45.0
REF_FLOWER_DENSITY = 0.6


def design(age: np.ndarray, trees_per_mu: np.ndarray, elevation_m: np.ndarray, frost_kill: np.ndarray,
           water_stress: np.ndarray, heat_dh: np.ndarray, rot_days: np.ndarray, flower_density: np.ndarray,
           fruit_set: np.ndarray, fruit_set_ref: float) -> np.ndarray:
    """Design matrix (orchard, len(FEATURES)); NaN observations become 0 with the missing flag set."""
    n = np.asarray(age).shape[0]
    fd = np.asarray(flower_density, dtype=np.float64)
    fs = np.asarray(fruit_set, dtype=np.float64)
    fd_ok = np.isfinite(fd)
    fs_ok = np.isfinite(fs) & (fruit_set_ref > 0)
    x = np.zeros((n, len(FEATURES)))
    x[:, 0] = 1.0
    x[:, 1] = age == 3
    x[:, 2] = age == 4
    x[:, 3] = np.log(np.clip(np.asarray(trees_per_mu, dtype=np.float64), 1.0, 500.0) / REF_DENSITY_PER_MU)
    x[:, 4] = np.log(np.clip(1.0 - np.asarray(frost_kill, dtype=np.float64), 0.02, 1.0))
    x[:, 5] = water_stress
    x[:, 6] = np.asarray(heat_dh, dtype=np.float64) / 1000.0
    x[:, 7] = np.asarray(rot_days, dtype=np.float64) / 10.0
    x[:, 8] = np.where(fd_ok, np.log(np.clip(np.where(fd_ok, fd, 1.0), 0.05, 1.0) / REF_FLOWER_DENSITY), 0.0)
    x[:, 9] = ~fd_ok
    ref = fruit_set_ref if fruit_set_ref > 0 else 1.0
    x[:, 10] = np.where(fs_ok, np.log(np.clip(np.where(fs_ok, fs, ref), 0.05 * ref, 20 * ref) / ref), 0.0)
    x[:, 11] = ~fs_ok
    x[:, 12] = (np.asarray(elevation_m, dtype=np.float64) - 600.0) / 100.0
    return x


@dataclass
class YieldFit:
    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2_within: float
    sigma2_season: float
    tau2: float
    u: np.ndarray             #: orchard effect per orchard (index of the orchard axis), log scale
    var_u: np.ndarray         #: posterior variance of u per orchard
    n_seasons: np.ndarray     #: bearing seasons of history per orchard
    calib_k: float = 1.0
    young_kg_per_mu: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    n_rows: int = 0
    seasons: int = 0


def _solve_beta(x: np.ndarray, y: np.ndarray, s2: float) -> tuple[np.ndarray, np.ndarray]:
    prec_prior = 1.0 / PRIOR_SD ** 2
    a = x.T @ x / s2 + np.diag(prec_prior)
    b = x.T @ y / s2 + prec_prior * PRIOR_MEAN
    cov = np.linalg.inv(a)
    return cov @ b, cov


def _fit_core(x: np.ndarray, y: np.ndarray, orch: np.ndarray, seas: np.ndarray, n_orch: int,
              iters: int = 5) -> YieldFit:
    s2w, s2s = 0.1, 0.02
    u = np.zeros(n_orch)
    beta, cov = _solve_beta(x, y, s2w + s2s)
    tau2 = 0.05
    n_o = np.bincount(orch, minlength=n_orch).astype(np.float64)
    seasons = np.unique(seas)
    for _ in range(iters):
        beta, cov = _solve_beta(x, y - u[orch], s2w + s2s)
        r = y - x @ beta
        delta = np.zeros(seas.max() + 1)
        for s in seasons:
            m = seas == s
            delta[s] = np.mean(r[m] - u[orch[m]])
        r2 = r - delta[seas]
        sum_o = np.bincount(orch, weights=r2, minlength=n_orch)
        with np.errstate(invalid="ignore", divide="ignore"):
            rbar = np.where(n_o > 0, sum_o / np.maximum(n_o, 1), 0.0)
        e = r2 - rbar[orch]
        dof = max(1.0, y.size - np.count_nonzero(n_o) - len(seasons))
        s2w = max(float(np.sum(e ** 2) / dof), 1e-4)
        has = n_o > 0
        if has.sum() >= 3:
            tau2 = max(float(np.var(rbar[has]) - np.mean(s2w / n_o[has])), 1e-4)
        shrink = np.where(has, n_o * tau2 / (n_o * tau2 + s2w), 0.0)
        u = shrink * rbar
        ds = delta[seasons]
        k = len(seasons)
        ss = float(np.sum((ds - ds.mean()) ** 2)) if k >= 2 else 0.0
        s2s = (ss + 2 * 0.15 ** 2) / (max(k - 1, 0) + 2)
    var_u = np.where(n_o > 0, tau2 * s2w / (n_o * tau2 + s2w), tau2)
    return YieldFit(beta, cov, s2w, s2s, tau2, u, var_u, n_o, 1.0, {}, int(y.size), len(seasons))


def _pred_log(fit: YieldFit, x: np.ndarray, orch_idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    mu = x @ fit.beta
    if orch_idx is not None:
        mu = mu + fit.u[orch_idx]
        var_u = fit.var_u[orch_idx]
    else:
        var_u = np.full(x.shape[0], fit.tau2)
    var = fit.sigma2_within + fit.sigma2_season + var_u + np.einsum("ij,jk,ik->i", x, fit.cov_beta, x)
    return mu, np.sqrt(var)


def fit_yield(x_seasons: list[np.ndarray], kg_seasons: list[np.ndarray], age_seasons: list[np.ndarray],
              area_mu: np.ndarray, *, calibrate: bool = True) -> YieldFit:
    """Fit on past seasons. Each list item is one season over the SAME orchard axis (length o):
    design rows (o, k), harvested kg (o,) with NaN = unknown, orchard age (o,) in that season."""
    n_orch = int(area_mu.shape[0])
    xs, ys, os_, ss = [], [], [], []
    young: dict[int, list[np.ndarray]] = {}
    for si, (x, kg, age) in enumerate(zip(x_seasons, kg_seasons, age_seasons, strict=True)):
        ok = np.isfinite(kg)
        per_mu = np.where(ok, kg, 0.0) / area_mu
        for a in (0, 1, 2):
            m = ok & (age == a)
            if m.any():
                young.setdefault(a, []).append(per_mu[m])
        m = ok & (age >= 3)
        if not m.any():
            continue
        xs.append(x[m])
        ys.append(np.log(np.maximum(per_mu[m], 1.0)))
        os_.append(np.nonzero(m)[0])
        ss.append(np.full(int(m.sum()), si))
    young_q = {a: tuple(float(q) for q in np.quantile(np.concatenate(v), [0.1, 0.5, 0.9]))
               for a, v in young.items()}
    if not xs:
        z = np.zeros(n_orch)
        fit = YieldFit(PRIOR_MEAN.copy(), np.diag(PRIOR_SD ** 2), 0.1, 0.15 ** 2, 0.05, z, np.full(n_orch, 0.05),
                       z.copy(), 1.0, young_q, 0, 0)
        return fit
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    orch = np.concatenate(os_)
    seas = np.concatenate(ss)
    fit = _fit_core(x, y, orch, seas, n_orch)
    fit.young_kg_per_mu = young_q  # type: ignore[assignment]
    uniq = np.unique(seas)
    if calibrate and len(uniq) >= 3:
        zs = []
        for s in uniq:
            tr = seas != s
            f = _fit_core(x[tr], y[tr], orch[tr], seas[tr], n_orch, iters=3)
            te = ~tr
            mu, sd = _pred_log(f, x[te], orch[te])
            zs.append((y[te] - mu) / sd)
        z = np.abs(np.concatenate(zs))
        fit.calib_k = float(np.clip(np.quantile(z, 0.8) / Z90, 0.6, 3.0))
    return fit


def predict_yield(fit: YieldFit, x: np.ndarray, age: np.ndarray, area_mu: np.ndarray,
                  orch_idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P10, P50, P90) season yield in kg per orchard (orchard axis of ``x``).

    ``orch_idx`` maps each row to the fit's orchard axis (for the orchard effect); None = all new.
    """
    mu, sd = _pred_log(fit, x, orch_idx)
    sd = sd * fit.calib_k
    area = np.asarray(area_mu, dtype=np.float64)
    p50 = area * np.exp(mu)
    p10 = area * np.exp(mu - Z90 * sd)
    p90 = area * np.exp(mu + Z90 * sd)
    for a in (0, 1, 2):
        m = age == a
        if m.any():
            q = fit.young_kg_per_mu.get(a, (0.0, 0.0, 0.0))
            p10[m], p50[m], p90[m] = area[m] * q[0], area[m] * q[1], area[m] * q[2]
    young = age < 0
    p10[young] = p50[young] = p90[young] = 0.0
    return p10, p50, p90
