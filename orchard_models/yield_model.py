"""Season yield per orchard (kg) with P10/P50/P90, pooled across orchards.

Model (log scale, per bearing orchard-season):
``log(kg / area_mu) = x·β + u_orchard + δ_season + ε``

* x: intercept; age 3 and age 4 indicators (economic yield from year 3, full bearing at 5: the
  age effects are fitted, with priors log 0.3 and log 0.7); log tree density (trees/mu over 45);
  risk indices (frost survival log(1 - kill), water stress, heat degree-hours, brown-rot infection
  days, rain at bloom) and grower observations (log flower density, log fruit set, each with a
  missing indicator) split within/between seasons (Mundlak 1978): the orchard's deviation from the
  season's county mean ("d_", learnt from orchard-to-orchard differences) and, for frost, water,
  flower density and fruit set, the county mean itself ("c_", learnt from season-to-season
  differences, one point per season, so with few seasons it stays near its agronomic prior); once
  the county fruit set is counted it supersedes the county frost index and flower density (the
  direct measure of what frost left; not counted twice); elevation; alternate bearing (within
  season). Features are computed up to the forecast's as-of day *in every season alike*, so each
  horizon has its own coefficients (a direct forecast).
* β: Bayesian linear regression with Gaussian priors (agronomic prior means, e.g. frost survival
  coefficient 1 = yield proportional to surviving flowers) -- the data overrule the priors only
  where the history varies enough.
* u: orchard effect, empirical-Bayes shrinkage (James-Stein / Morris 1983): ``u = r̄ n τ² / (n τ² + σ²)``
  with τ² (between-orchard) and σ² (within-orchard) by the method of moments, so an orchard with
  one season borrows strength from all the others.
* δ: season effect common to all orchards, unknown in advance; its variance σ_δ² (weak prior 0.15²
  from 2 pseudo-seasons) enters every prediction with a Student-t quantile (n_seasons + 2 dof: a
  variance estimated from a handful of seasons).
* ε: orchard noise within a season, variance ``σ₀² + ω² g²`` where g is the season's predicted
  county shock (county terms x coefficients): orchards differ in how hard a frost or drought hits
  them (random slope, Swamy 1970), so shock seasons are more dispersed than ordinary ones.

Predictive interval (log scale): P50 ± sqrt(z²(k²(Var ε + Var u + x_w Σ_w x_wᵀ) + x_b Σ_b x_bᵀ) + t² σ_δ²);
the part common to all orchards (δ, intercept and county coefficients b) does not average out over
orchards, so the county total has its own P10/P50/P90 (:func:`county_quantiles`). k scales the
orchards' own noise: calibrated by leave-one-season-out so that, given each held-out season's
realised common effect, 80 % of its orchards fall in the interval; never below 1 (k = 1 without 3
seasons of history).
Non-bearing orchards (age <= 2) take the empirical kg/mu quantiles of their age in the history
(0 without history).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FEATURES", "YieldFit", "county_quantiles", "design", "fit_yield", "fruit_set_log", "orchard_log_sd",
           "predict_yield"]

Z90 = 1.2815515655446004  # standard normal 90 % quantile

#: Risk indices enter as the orchard's deviation from the season's county mean ("d_") and, for frost
#: and water, also as the county mean itself ("c_") (Mundlak 1978 within/between decomposition).
#: Season-wide shocks (a drought, a frost night over the whole county) are then learnt from
#: season-to-season differences and orchard differences from orchard-to-orchard ones; with few
#: seasons the county terms stay close to the agronomic prior.
RISK_TERMS: tuple[str, ...] = ("log_frost_survival", "log_water_factor", "heat_kdh", "rot_days_10", "bloom_rain_days")
#: county (between-season) terms: only the two with a strong agronomic prior -- with a handful of
#: seasons every extra season-level term would explain season noise (e.g. "dry years have less rot")
COUNTY_TERMS: tuple[str, ...] = ("log_frost_survival", "log_water_factor")
#: county means of the growers' observations: a county-wide poor (or rich) fruit set is a season-level
#: signal like a frost night, so it is learnt between seasons too. The county fruit-set count is the
#: direct measure of what frost (and pollination) left; once it is known the county frost index and
#: flower density (indirect measures of the same thing) are set to 0 so the loss is not counted twice.
COUNTY_OBS: tuple[str, ...] = ("log_flower_density", "log_fruit_set")
FEATURES: tuple[str, ...] = (
    "intercept", "age3", "age4", "log_density",
    *(f"c_{t}" for t in COUNTY_TERMS), *(f"c_{t}" for t in COUNTY_OBS), *(f"d_{t}" for t in RISK_TERMS),
    "d_log_flower_density", "flower_missing", "d_log_fruit_set", "fruit_set_missing", "elev_100m", "prev_season_dev",
)
#: prior means: full bearing 1,200 kg/mu (SD 0.5 on the log scale: DOMAIN.md's 1,000-1,500 kg/mu with
#: room to spare); age 3 and 4 at 30 % and 70 % of it; yield ~ sqrt(density);
#: yield proportional to flowers surviving frost and to the FAO-33 water factor 1 - Ky * stress (Ky = 1,
#: Doorenbos & Kassam 1979); small losses per heat kilo-degree-hour, per 10 brown-rot infection days
#: and per rainy day at bloom (pollination); observations elastic 0.7 within a season; alternate
#: bearing: a crop heavier than the orchard's own recent level last season lowers this one (-0.2,
#: Monselise & Goldschmidt 1982 on alternate bearing in fruit trees). Missing-observation flags and
#: elevation (per 100 m) have narrow priors (0.15, 0.1): the data identify them easily, and without
#: data they should not widen every interval.
#: County terms (learnt from one point per season, so these priors carry a first frost year): frost
#: survival 1 +- 0.3 (my own kill table, not validated: wider than a measured count); county fruit
#: set 0.8 +- 0.3 (*assumption*: crop ~ fruit number x fruit mass, and fruit mass partly makes up for
#: fewer fruits -- the thinning response reviewed by Link 2000, Plant Growth Regul. 31:17-26);
#: county flower density 0.5 +- 0.3 (*assumption*: fruit set after bloom still varies).
_RISK_PRIOR = {"log_frost_survival": (1.0, 0.2, 1), "log_water_factor": (1.0, 0.4, 1), "heat_kdh": (-0.1, 0.3, -1),
               "rot_days_10": (-0.05, 0.2, -1), "bloom_rain_days": (-0.02, 0.05, -1)}
_COUNTY_PRIOR = {"log_frost_survival": (1.0, 0.3, 1), "log_water_factor": (1.0, 0.4, 1),
                 "log_flower_density": (0.5, 0.3, 1), "log_fruit_set": (0.8, 0.3, 1)}
_CT = (*COUNTY_TERMS, *COUNTY_OBS)
PRIOR_MEAN = np.array([np.log(1200.0), np.log(0.3), np.log(0.7), 0.5,
                       *(_COUNTY_PRIOR[t][0] for t in _CT), *(_RISK_PRIOR[t][0] for t in RISK_TERMS),
                       0.7, 0.0, 0.7, 0.0, 0.0, -0.2])
PRIOR_SD = np.array([0.5, 0.6, 0.4, 0.5, *(_COUNTY_PRIOR[t][1] for t in _CT),
                     *(_RISK_PRIOR[t][1] for t in RISK_TERMS), 0.6, 0.15, 0.6, 0.15, 0.1, 0.3])
#: agronomic signs the fit must respect (+1: >= 0, -1: <= 0, 0: free)
SIGN = np.array([0, 0, 0, 1, *(_COUNTY_PRIOR[t][2] for t in _CT), *(_RISK_PRIOR[t][2] for t in RISK_TERMS),
                 1, 0, 1, 0, 0, 0])
REF_DENSITY_PER_MU = 45.0
REF_FLOWER_DENSITY = 0.6
KY_WATER = 1.0          #: FAO-33 yield response factor over the fruit-growth period (assumption)
MIN_OBS_FOR_COUNTY_MEAN = 5
OMEGA_PRIOR = 0.5        #: prior SD of the orchards' relative sensitivity to a county shock (*assumption*)
OMEGA_PRIOR_SHOCK = 0.7  #: the prior counts as one season with a county shock of 0.7 log (half the crop lost)
SEASON_PRIOR_DOF = 2.0   #: pseudo-seasons behind SEASON_SD_PRIOR (the predictive Student-t has n_s + 2 dof)


def _obs_feature(v: np.ndarray, ref: float, lo: float, hi: float, rows: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, float | None]:
    """log(v / ref) where observed, clipped to [lo, hi] x ref. Returns (orchard deviation from the
    county mean, missing flag, county mean). The county mean is over the observing orchards among
    ``rows`` (bearing) when at least MIN_OBS_FOR_COUNTY_MEAN observed (a county-wide signal such as a
    poor fruit set after frost), else None; non-observing orchards get deviation 0."""
    ok = np.isfinite(v) & (ref > 0)
    f = np.zeros(v.shape[0])
    if ref > 0:
        f[ok] = np.log(np.clip(v[ok], lo * ref, hi * ref) / ref)
    use = ok & rows
    if use.sum() < MIN_OBS_FOR_COUNTY_MEAN:
        use = ok
    if use.sum() < MIN_OBS_FOR_COUNTY_MEAN:
        return np.where(ok, f, 0.0), (~ok).astype(np.float64), None
    c = float(np.mean(f[use]))
    return np.where(ok, f - c, 0.0), (~ok).astype(np.float64), c


def fruit_set_log(x: np.ndarray) -> np.ndarray:
    """The orchard's log fruit set relative to the reference (county mean + own deviation), per row."""
    return x[:, FEATURES.index("c_log_fruit_set")] + x[:, FEATURES.index("d_log_fruit_set")]


def design(age: np.ndarray, trees_per_mu: np.ndarray, elevation_m: np.ndarray, frost_kill: np.ndarray,
           water_stress: np.ndarray, heat_dh: np.ndarray, rot_days: np.ndarray, flower_density: np.ndarray,
           fruit_set: np.ndarray, fruit_set_ref: float, bloom_rain_days: np.ndarray | None = None,
           prev_season_dev: np.ndarray | None = None) -> np.ndarray:
    """Design matrix (orchard, len(FEATURES)) for ONE season's orchards (county means are taken over
    its bearing orchards). ``water_stress``: stress index (0-1) of the fruit-growth period so far;
    observations NaN where not recorded; ``prev_season_dev``: last season's log kg/mu minus the
    orchard's own mean of the three seasons before (full-bearing seasons only; NaN/0 unknown)."""
    n = np.asarray(age).shape[0]
    x = np.zeros((n, len(FEATURES)))
    x[:, 0] = 1.0
    x[:, 1] = age == 3
    x[:, 2] = age == 4
    x[:, 3] = np.log(np.clip(np.asarray(trees_per_mu, dtype=np.float64), 1.0, 500.0) / REF_DENSITY_PER_MU)
    raw = {
        "log_frost_survival": np.log(np.clip(1.0 - np.asarray(frost_kill, dtype=np.float64), 0.02, 1.0)),
        "log_water_factor": np.log(np.clip(1.0 - KY_WATER * np.asarray(water_stress, dtype=np.float64), 0.05, 1.0)),
        "heat_kdh": np.asarray(heat_dh, dtype=np.float64) / 1000.0,
        "rot_days_10": np.asarray(rot_days, dtype=np.float64) / 10.0,
        "bloom_rain_days": np.zeros(n) if bloom_rain_days is None else np.asarray(bloom_rain_days, dtype=np.float64),
    }
    bearing = np.asarray(age) >= 3
    ref_rows = bearing if bearing.any() else np.ones(n, dtype=bool)
    fd_d, fd_miss, fd_c = _obs_feature(np.asarray(flower_density, dtype=np.float64), REF_FLOWER_DENSITY, 0.05, 1.7,
                                       ref_rows)
    fs_d, fs_miss, fs_c = _obs_feature(np.asarray(fruit_set, dtype=np.float64), fruit_set_ref, 0.05, 20.0, ref_rows)
    county = {t: float(np.mean(raw[t][ref_rows])) if n else 0.0 for t in RISK_TERMS}
    # once the county fruit set is counted, frost index and flower density are superseded at county level
    cvals = {"log_frost_survival": county["log_frost_survival"] if fs_c is None else 0.0,
             "log_water_factor": county["log_water_factor"],
             "log_flower_density": (fd_c or 0.0) if fs_c is None else 0.0,
             "log_fruit_set": fs_c or 0.0}
    for j, t in enumerate(_CT):
        x[:, 4 + j] = cvals[t]
    o = 4 + len(_CT)
    for j, t in enumerate(RISK_TERMS):
        x[:, o + j] = raw[t] - county[t]
    o += len(RISK_TERMS)
    x[:, o], x[:, o + 1] = fd_d, fd_miss
    x[:, o + 2], x[:, o + 3] = fs_d, fs_miss
    x[:, o + 4] = (np.asarray(elevation_m, dtype=np.float64) - 600.0) / 100.0
    if prev_season_dev is not None:
        # within the season only: a county-wide rebound after a lost crop shows in the county flower and
        # fruit-set counts (heavy return bloom); its county mean would count it a second time
        pd = np.asarray(prev_season_dev, dtype=np.float64)
        known = np.isfinite(pd) & ref_rows
        c = float(np.mean(pd[known])) if known.any() else 0.0
        x[:, o + 5] = np.where(np.isfinite(pd), pd - c, 0.0)
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
    #: training mean of the design (within-season columns): their uncertainty counts only for the
    #: departure from it, the mean itself being absorbed by the season intercepts
    x_center: np.ndarray | None = None
    #: within-season variance of an ordinary season (no county shock), log scale
    sigma2_base: float | None = None
    #: variance of the orchards' sensitivity to the season's county shock g (random slope): the
    #: within-season variance of a season is sigma2_base + omega2 * g**2
    omega2: float = OMEGA_PRIOR ** 2

    def common_shock(self, x: np.ndarray) -> float:
        """The season's predicted county shock g (log scale): county terms x coefficients, row 0."""
        return float(x[0, _C] @ self.beta[_C]) if x.shape[0] else 0.0


def _bayes(x: np.ndarray, y: np.ndarray, s2: float, mean: np.ndarray, sd: np.ndarray, sign: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and covariance of a Gaussian-prior linear regression with noise variance ``s2``,
    with sign constraints: a coefficient whose posterior mean has the wrong sign is pinned at 0 and
    the rest refitted (at most a few rounds)."""
    prec = 1.0 / sd ** 2
    m = mean.copy()
    xtx = x.T @ x / s2
    xty = x.T @ y / s2
    for _ in range(4):
        cov = np.linalg.inv(xtx + np.diag(prec))
        beta = cov @ (xty + prec * m)
        bad = (sign * beta < 0) & (prec < 1e8)
        if not bad.any():
            break
        prec = np.where(bad, 1e12, prec)
        m = np.where(bad, 0.0, m)
    return beta, cov


_C = np.array([i for i, f in enumerate(FEATURES) if f.startswith("c_")])
_B = np.concatenate([[0], _C])                                     # between-season columns
_W = np.array([i for i in range(len(FEATURES)) if i not in set(_B.tolist())])  # within-season columns
SEASON_SD_PRIOR = 0.15   #: prior SD of the unexplained season effect (log scale), weight 2 pseudo-seasons




def _shock_dispersion(e: np.ndarray, s_idx: np.ndarray, g: np.ndarray, s2w: float) -> tuple[float, float]:
    """Within-season variance as ``s2_0 + omega2 * g_s**2`` over the training seasons (a random-slope
    model, Swamy 1970: each orchard's response to the season's county shock g_s varies with SD omega).
    ``e``: within residuals (season effects and orchard effects removed), ``g``: county shock per
    season (log). A frost that costs the county half its crop costs some orchards nearly all and
    others little (cold-air pooling, stage at the frost), so shock seasons are more dispersed; pooled
    into one sigma2 they would widen ordinary seasons' intervals and narrow the shock seasons'.
    omega2 is a least-squares fit through the origin weighted by g**4, with the prior OMEGA_PRIOR as
    one pseudo-season of shock OMEGA_PRIOR_SHOCK; s2_0 the median over seasons of the rest."""
    n_s = g.shape[0]
    v = np.array([float(np.mean(e[s_idx == k] ** 2)) if np.any(s_idx == k) else s2w for k in range(n_s)])
    g2 = g ** 2
    s2_0 = float(np.median(v))
    omega2 = OMEGA_PRIOR ** 2
    for _ in range(2):
        g0 = OMEGA_PRIOR_SHOCK ** 2
        omega2 = float((np.sum(g2 * np.maximum(v - s2_0, 0.0)) + g0 * g0 * OMEGA_PRIOR ** 2)
                       / (np.sum(g2 * g2) + g0 * g0))
        s2_0 = max(float(np.median(v - omega2 * g2)), 1e-4)
    return s2_0, omega2


def _fit_core(x: np.ndarray, y: np.ndarray, orch: np.ndarray, seas: np.ndarray, n_orch: int,
              iters: int = 5) -> YieldFit:
    """Within/between fit. Within seasons (season dummies absorb everything common to a season):
    orchard-level coefficients and the empirical-Bayes orchard effects. Between seasons: the season
    intercepts regressed on the county-level features, one point per season, so a county term is
    learnt only from as many seasons as there are (and stays near its prior with few)."""
    seasons, s_idx = np.unique(seas, return_inverse=True)
    n_s = len(seasons)
    d = np.zeros((y.size, n_s))
    d[np.arange(y.size), s_idx] = 1.0
    xw = np.concatenate([x[:, _W], d], axis=1)
    mw = np.concatenate([PRIOR_MEAN[_W], np.full(n_s, float(np.mean(y)))])
    sdw = np.concatenate([PRIOR_SD[_W], np.full(n_s, 10.0)])
    sgw = np.concatenate([SIGN[_W], np.zeros(n_s)])
    # county features are constant within a season: one row per season
    first = np.array([np.nonzero(s_idx == k)[0][0] for k in range(n_s)])
    zb = x[first][:, _B]
    s2w, s2s, tau2 = 0.1, SEASON_SD_PRIOR ** 2, 0.05
    u = np.zeros(n_orch)
    n_o = np.bincount(orch, minlength=n_orch).astype(np.float64)
    has = n_o > 0
    bw, cw = _bayes(xw, y, s2w, mw, sdw, sgw)
    bb, cb = _bayes(zb, bw[len(_W):], s2s, PRIOR_MEAN[_B], PRIOR_SD[_B], SIGN[_B])
    for _ in range(iters):
        bw, cw = _bayes(xw, y - u[orch], s2w, mw, sdw, sgw)
        alpha = bw[len(_W):]
        bb, cb = _bayes(zb, alpha, s2s, PRIOR_MEAN[_B], PRIOR_SD[_B], SIGN[_B])
        rb = alpha - zb @ bb
        s2s = (float(np.sum(rb ** 2)) + 2 * SEASON_SD_PRIOR ** 2) / (n_s + 2)
        r2 = y - xw @ bw                       # season effects removed
        sum_o = np.bincount(orch, weights=r2, minlength=n_orch)
        rbar = np.where(has, sum_o / np.maximum(n_o, 1), 0.0)
        e = r2 - rbar[orch]
        dof = max(1.0, y.size - np.count_nonzero(n_o) - n_s)
        s2w = max(float(np.sum(e ** 2) / dof), 1e-4)
        if has.sum() >= 3:
            tau2 = max(float(np.var(rbar[has]) - np.mean(s2w / n_o[has])), 1e-4)
        u = np.where(has, n_o * tau2 / (n_o * tau2 + s2w), 0.0) * rbar
    beta = np.zeros(len(FEATURES))
    cov = np.zeros((len(FEATURES), len(FEATURES)))
    beta[_W] = bw[:len(_W)]
    beta[_B] = bb
    cov[np.ix_(_W, _W)] = cw[:len(_W), :len(_W)]
    cov[np.ix_(_B, _B)] = cb
    var_u = np.where(has, tau2 * s2w / (n_o * tau2 + s2w), tau2)
    s2w0, omega2 = _shock_dispersion(y - xw @ bw - u[orch], s_idx, zb[:, 1:] @ bb[1:], s2w)
    center = np.zeros(len(FEATURES))
    center[_W] = x[:, _W].mean(axis=0)
    return YieldFit(beta, cov, s2w, s2s, tau2, u, var_u, n_o, 1.0, {}, int(y.size), n_s, center, s2w0, omega2)


def _pred_log(fit: YieldFit, x: np.ndarray, orch_idx: np.ndarray | None, extra_var_c: float = 0.0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-scale mean, idiosyncratic SD and common (season-level) SD per row of ONE season.

    Idiosyncratic: within-season noise of a season with this county shock (sigma2_base + omega2 g²),
    the orchard effect's posterior variance and the within-season coefficients' uncertainty.
    Common to every orchard of the season: the unexplained season effect and the uncertainty of the
    intercept and county coefficients -- a frost or a drought moves all orchards together, so this
    part does not average out in the county total. ``extra_var_c``: a further common variance (log
    scale) known at forecast time, e.g. the spread of the county water factor over the weather still
    to come; it enters like the coefficients' uncertainty (normal, not Student-t)."""
    mu = x @ fit.beta
    if orch_idx is not None:
        mu = mu + fit.u[orch_idx]
        var_u = fit.var_u[orch_idx]
    else:
        var_u = np.full(x.shape[0], fit.tau2)
    xc = x if fit.x_center is None else x - fit.x_center
    cw = fit.cov_beta[np.ix_(_W, _W)]
    cb = fit.cov_beta[np.ix_(_B, _B)]
    base = fit.sigma2_within if fit.sigma2_base is None else fit.sigma2_base
    g = fit.common_shock(x)
    var_i = base + fit.omega2 * g * g + var_u + np.einsum("ij,jk,ik->i", xc[:, _W], cw, xc[:, _W])
    var_c = fit.sigma2_season + np.einsum("ij,jk,ik->i", x[:, _B], cb, x[:, _B]) + max(extra_var_c, 0.0)
    return mu, np.sqrt(var_i), np.sqrt(var_c)


def _t90(dof: float) -> float:
    """90 % quantile of Student's t with ``dof`` degrees of freedom (Cornish-Fisher expansion in
    1/dof, Abramowitz & Stegun 26.7.5; error < 0.005 for dof >= 3)."""
    z = Z90
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    d = max(dof, 1.0)
    return float(z + g1 / d + g2 / d ** 2 + g3 / d ** 3)


def _half_width(fit: YieldFit, sd_i: np.ndarray, sd_c: np.ndarray) -> np.ndarray:
    """P90 - P50 on the log scale. The unexplained season effect's variance is estimated from few
    seasons, so its quantile is Student-t with n_seasons + SEASON_PRIOR_DOF dof; the idiosyncratic
    part and the coefficients' (Gaussian posterior) uncertainty are normal."""
    t = _t90(fit.seasons + SEASON_PRIOR_DOF)
    coef = np.maximum(sd_c ** 2 - fit.sigma2_season, 0.0)
    return np.sqrt(Z90 ** 2 * ((fit.calib_k * sd_i) ** 2 + coef) + t ** 2 * fit.sigma2_season)


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
    young_q: dict[int, tuple[float, float, float]] = {}
    for a, v in young.items():
        q10, q50, q90 = (float(q) for q in np.quantile(np.concatenate(v), [0.1, 0.5, 0.9]))
        young_q[a] = (q10, q50, q90)
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
    fit.young_kg_per_mu = young_q
    uniq = np.unique(seas)
    if calibrate and len(uniq) >= 3:
        zs = []
        for s in uniq:
            tr = seas != s
            f = _fit_core(x[tr], y[tr], orch[tr], seas[tr], n_orch, iters=3)
            te = ~tr
            mu, sd_i, _sd_c = _pred_log(f, x[te], orch[te])
            r = y[te] - mu
            # given the held-out season's realised common effect: k calibrates the orchards' own
            # noise only (the season term has its own variance estimate; scaling it by a k that a
            # held-out disaster season inflated would count that season twice)
            zs.append((r - np.mean(r)) / sd_i)
        z = np.abs(np.concatenate(zs))
        # never narrower than the model's own variance (k >= 1): held-out seasons of the history
        # cannot show the extremes it has not seen
        fit.calib_k = float(np.clip(np.quantile(z, 0.8) / Z90, 1.0, 3.0))
    return fit


def predict_yield(fit: YieldFit, x: np.ndarray, age: np.ndarray, area_mu: np.ndarray,
                  orch_idx: np.ndarray | None = None, extra_var_c: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P10, P50, P90) season yield in kg per orchard (orchard axis of ``x``).

    ``orch_idx`` maps each row to the fit's orchard axis (for the orchard effect); None = all new.
    """
    mu, sd_i, sd_c = _pred_log(fit, x, orch_idx, extra_var_c)
    h = _half_width(fit, sd_i, sd_c)
    area = np.asarray(area_mu, dtype=np.float64)
    p50 = area * np.exp(mu)
    p10 = area * np.exp(mu - h)
    p90 = area * np.exp(mu + h)
    for a in (0, 1, 2):
        m = age == a
        if m.any():
            q = fit.young_kg_per_mu.get(a, (0.0, 0.0, 0.0))
            p10[m], p50[m], p90[m] = area[m] * q[0], area[m] * q[1], area[m] * q[2]
    young = age < 0
    p10[young] = p50[young] = p90[young] = 0.0
    return p10, p50, p90


def county_quantiles(fit: YieldFit, x: np.ndarray, age: np.ndarray, area_mu: np.ndarray,
                     orch_idx: np.ndarray | None = None, include: np.ndarray | None = None,
                     extra_var_c: float = 0.0) -> tuple[float, float, float]:
    """(P10, P50, P90) of the county total kg over the ``include``d orchards of ONE season.

    Total = exp(δ) · S with δ the common season term (Student-t scaled by its SD, as in
    :func:`predict_yield`) and S the sum of the orchards' idiosyncratic lognormals; S is matched by
    a lognormal with its mean and variance (Fenton 1960) -- over a thousand orchards it is nearly
    a constant, so the interval is essentially the season-level one. Young orchards (age <= 2) add
    their empirical quantiles comonotonically (a small, conservative part)."""
    inc = np.ones(x.shape[0], dtype=bool) if include is None else np.asarray(include, dtype=bool)
    area = np.asarray(area_mu, dtype=np.float64)
    bear = inc & (np.asarray(age) >= 3)
    young = inc & (np.asarray(age) >= 0) & (np.asarray(age) <= 2)
    q_young = np.zeros(3)
    for a in (0, 1, 2):
        m = young & (age == a)
        if m.any():
            q_young += np.asarray(fit.young_kg_per_mu.get(a, (0.0, 0.0, 0.0))) * area[m].sum()
    if not bear.any():
        return float(q_young[0]), float(q_young[1]), float(q_young[2])
    mu, sd_i, sd_c = _pred_log(fit, x[bear], None if orch_idx is None else orch_idx[bear], extra_var_c)
    vi = (fit.calib_k * sd_i) ** 2
    m_i = area[bear] * np.exp(mu + vi / 2)
    mean_s = float(m_i.sum())
    var_s = float(np.sum(m_i ** 2 * np.expm1(vi)))
    s2_log = np.log1p(var_s / mean_s ** 2)
    med_s = mean_s / np.sqrt(1.0 + var_s / mean_s ** 2)
    # the season-level part as in _half_width, without the idiosyncratic variance (it is in s2_log)
    common = float(np.median(_half_width(fit, np.zeros(1), sd_c)))
    h = np.sqrt((Z90 ** 2) * s2_log + common ** 2)
    return (float(med_s * np.exp(-h) + q_young[0]), float(med_s + q_young[1]), float(med_s * np.exp(h) + q_young[2]))


def orchard_log_sd(fit: YieldFit, x: np.ndarray, orch_idx: np.ndarray | None = None) -> np.ndarray:
    """Per row, the calibrated SD (log scale) of the orchard's own noise *given* the season's common
    effect: what the interval would be if the county total were known. A check of the orchard-level
    dispersion season by season (coverage of ``P50 · exp(±z·sd)`` shifted by the county's realised
    log error), which the pooled coverage cannot give because the season effect is shared."""
    _mu, sd_i, _sd_c = _pred_log(fit, x, orch_idx)
    return fit.calib_k * sd_i
