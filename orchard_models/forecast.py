"""The supply forecast on plain numpy arrays: history in, per orchard x week x grade P10/P50/P90 kg out.

No database here (see :mod:`orchard_models.run` for that), so the backtest feeds simulated seasons
straight in. Flow for a season and an as-of day:

1. daily Tmin/Tmax up to the as-of day, gaps filled (:func:`orchard_models.weather.fill_gaps`),
   climatology of past seasons after it; hourly reconstruction and chill/heat/frost sums
   (:func:`orchard_models.thermal.daily_thermal`);
2. bloom (chill-then-heat model, fitted to recorded bloom dates) and harvest centroid
   (bloom + fruit development period from GDH30), :mod:`orchard_models.phenology`;
3. risk indices up to the as-of day (:mod:`orchard_models.risk`);
4. season kg with P10/P50/P90 (:mod:`orchard_models.yield_model`), grade shares and week split
   (:mod:`orchard_models.grading`).

Past seasons go through the same steps *at the same as-of day of their own season*, and the yield
and grade models are fitted on them, so every horizon is fitted for itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from orchard_models.et0 import reference_et0_mm
from orchard_models.fruit_counts import FruitCounts, assimilate_counts
from orchard_models.grading import (
    GradeModel,
    fit_grades,
    harvest_weeks,
    predict_grades,
    week_share_distribution,
)
from orchard_models.phenology import (
    BloomParams,
    HarvestParams,
    calibrate_bloom,
    calibrate_harvest,
    degree_day_centroid,
    gdh_after,
    predict_bloom,
)
from orchard_models.risk import (
    RiskIndices,
    RiskParams,
    crop_kc,
    estimate_field_capacity,
    projected_stress_sum,
    risk_indices,
    water_balance,
)
from orchard_models.thermal import DailyThermal, daily_thermal
from orchard_models.weather import SeasonWeather, chill_start_day, day_of_year, default_climate, fill_gaps, season_start
from orchard_models.yield_model import (
    FEATURES,
    KY_WATER,
    YieldFit,
    county_quantiles,
    design,
    fit_yield,
    fruit_set_log,
    orchard_log_sd,
    predict_yield,
)

__all__ = ["MODEL_VERSION", "Forecaster", "Observations", "OrchardTable", "SeasonForecast", "SeasonRecord"]

log = logging.getLogger(__name__)

MODEL_VERSION = ("om-1.2 (dynamic-cp+asymcur bloom, Miranda-2005 frost stages, FAO-56 PM/Hargreaves water balance "
                 "projected over past weather + persistence, EB-pooled log yield, ALR grades, fruit counts)")
N_DAYS_MAX = 366
_EL = FEATURES.index("elev_100m")
Z90_TIMING = 1.2815515655446004   #: normal 90 % quantile for the centroid's P10/P90
CHILL_END_MONTH_DAY = (6, 1)   #: chill is not needed after 1 June
TAW_MM = 90.0                  #: total available water of the root zone, mm (about 0.6 m of roots in a loam)
#: past seasons whose weather after the as-of day drives the water-balance ensemble (ensemble streamflow
#: prediction, Day 1985, J. Water Resour. Plann. Manage. 111:157-170): the most recent ones
ENSEMBLE_SEASONS = 8
PERSISTENCE_MIN_DAYS = 30                 #: days of the season's record (from 1 January) before its anomaly counts
PERSISTENCE_RAIN_CLIP = (0.1, 3.0)        #: bounds of the rain ratio carried forward (physical range, generous)
PERSISTENCE_ET0_CLIP = (0.7, 1.4)         #: bounds of the ET0 ratio carried forward


@dataclass
class OrchardTable:
    """Static orchard attributes, shape (orchard,)."""

    area_mu: np.ndarray          #: mu
    tree_count: np.ndarray       #: trees
    planting_year: np.ndarray    #: year
    elevation_m: np.ndarray      #: m
    latitude_deg: np.ndarray     #: decimal degrees north
    orchard_ids: list[str] | None = None

    @property
    def n(self) -> int:
        return int(self.area_mu.shape[0])

    def trees_per_mu(self) -> np.ndarray:
        return np.asarray(self.tree_count, dtype=np.float64) / np.asarray(self.area_mu, dtype=np.float64)

    def subset(self, idx: slice | np.ndarray) -> OrchardTable:
        ids = None if self.orchard_ids is None else list(np.asarray(self.orchard_ids, dtype=object)[idx])
        return OrchardTable(self.area_mu[idx], self.tree_count[idx], self.planting_year[idx],
                            self.elevation_m[idx], self.latitude_deg[idx], ids)


@dataclass
class Observations:
    """Grower observations of one season, shape (orchard,): value and the day index it was observed (-1: none).

    flower_density: 0-1 bloom score; fruit_set: fruits per metre of branch; bloom: observed full
    bloom (its day index is the value).
    """

    flower_density: np.ndarray
    flower_density_day: np.ndarray
    fruit_set: np.ndarray
    fruit_set_day: np.ndarray
    bloom_day: np.ndarray | None = None

    @classmethod
    def empty(cls, n: int) -> Observations:
        nan = np.full(n, np.nan)
        none = np.full(n, -1, dtype=np.int64)
        return cls(nan, none.copy(), nan.copy(), none.copy(), None)

    def upto(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flower_density, fruit_set, observed bloom day) known on day ``day`` (NaN / -1 otherwise)."""
        fd = np.where((self.flower_density_day >= 0) & (self.flower_density_day <= day), self.flower_density, np.nan)
        fs = np.where((self.fruit_set_day >= 0) & (self.fruit_set_day <= day), self.fruit_set, np.nan)
        if self.bloom_day is None:
            b = np.full(fd.shape[0], -1, dtype=np.int64)
        else:
            b = np.where((self.bloom_day >= 0) & (self.bloom_day <= day), self.bloom_day, -1).astype(np.int64)
        return fd, fs, b

    def subset(self, idx: slice | np.ndarray) -> Observations:
        return Observations(self.flower_density[idx], self.flower_density_day[idx], self.fruit_set[idx],
                            self.fruit_set_day[idx], None if self.bloom_day is None else self.bloom_day[idx])


@dataclass
class SeasonRecord:
    """A past season: weather, observations and outcomes over the same orchard axis as the table."""

    weather: SeasonWeather
    observations: Observations | None = None
    total_kg: np.ndarray | None = None            #: harvested kg (orchard,), NaN = unknown
    week_grade_kg: np.ndarray | None = None       #: kg (orchard, week, grade) when the harvest was graded
    week_starts: list[date] | None = None         #: Mondays of week_grade_kg's week axis
    bloom_day: np.ndarray | None = None           #: recorded full bloom day index (orchard,), -1 = unknown

    @property
    def season(self) -> int:
        return self.weather.season


@dataclass
class SeasonForecast:
    """One forecast: per orchard totals, phenology, risk; cells = total x week share x grade share."""

    season: int
    as_of_day: int
    bloom_day: np.ndarray           #: day index of full bloom (observed, else predicted; -1 unknown)
    centroid_day: np.ndarray        #: day index of the harvest centroid
    harvest_start_day: np.ndarray   #: centroid - 1.645 SD (5 % of the crop picked before), day index
    harvest_end_day: np.ndarray     #: centroid + 1.645 SD
    total_p10_kg: np.ndarray
    total_p50_kg: np.ndarray
    total_p90_kg: np.ndarray
    week_starts: list[date]
    week_share: np.ndarray          #: (orchard, week)
    grade_share: np.ndarray         #: (orchard, grade), grade order of registry.grades.GRADE_CODES
    risk: RiskIndices
    timings_s: dict[str, float] = field(default_factory=dict)
    #: county total (all orchards) P10/P50/P90 kg: not the sum of the orchards' quantiles -- the
    #: season-level shock is common to all orchards, the rest averages out (see yield_model.county_quantiles)
    county_kg: tuple[float, float, float] = (float("nan"), float("nan"), float("nan"))
    #: per orchard, SD (log scale) of its own noise given the season's common effect (bench diagnostics)
    orchard_log_sd: np.ndarray | None = None
    #: (orchard, week) the week's share if the harvest centroid fell at its P10 or P90, lowest / highest
    week_share_min: np.ndarray | None = None
    week_share_max: np.ndarray | None = None
    #: (grade,) SD of the grade shares' log-ratio residuals in the graded history (0: no history)
    grade_log_sd: np.ndarray | None = None

    def day_to_date(self, day: np.ndarray | int) -> list[date | None]:
        s = season_start(self.season)
        return [None if int(d) < 0 else s + timedelta(days=int(d)) for d in np.atleast_1d(day)]

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P10, P50, P90) kg per (orchard, week, grade). P50 = P50 total x week share x grade share (the
        P50 cells sum to the P50 total). The interval carries three uncertainties, added on the log
        scale in quadrature (independent): the total's (log P50/P10, log P90/P50), the week share's
        (its range when the harvest centroid falls at its own P10 or P90) and the grade share's
        (residual SD of the grade model, x z90); a week the centroid's P10-P90 may reach but the P50
        curve barely does gets at least P50 total x its highest share x grade share as its P90.
        P10 <= P50 <= P90 in every cell."""
        share = self.week_share[:, :, None] * self.grade_share[:, None, :]
        t10, t50, t90 = (a[:, None, None] for a in (self.total_p10_kg, self.total_p50_kg, self.total_p90_kg))
        p50 = t50 * share
        if self.week_share_min is None or self.week_share_max is None:
            return t10 * share, p50, t90 * share
        with np.errstate(divide="ignore", invalid="ignore"):
            d_lo_t = np.log(np.where(t10 > 0, t50 / t10, 1.0))
            d_hi_t = np.log(np.where(t50 > 0, t90 / t50, 1.0))
            w = self.week_share[:, :, None]
            d_lo_w = np.clip(np.log(w / self.week_share_min[:, :, None]), 0.0, 5.0)
            d_hi_w = np.clip(np.log(self.week_share_max[:, :, None] / w), 0.0, 5.0)
        d_lo_w = np.nan_to_num(d_lo_w, nan=5.0, posinf=5.0)
        d_hi_w = np.nan_to_num(d_hi_w, nan=0.0, posinf=0.0)
        g_sd = (np.zeros(share.shape[2]) if self.grade_log_sd is None else np.asarray(self.grade_log_sd)) * 1.2815515655
        g = g_sd[None, None, :]
        p10 = p50 * np.exp(-np.sqrt(d_lo_t ** 2 + d_lo_w ** 2 + g ** 2))
        p90 = p50 * np.exp(np.sqrt(d_hi_t ** 2 + d_hi_w ** 2 + g ** 2))
        p90 = np.maximum(p90, t50 * self.week_share_max[:, :, None] * self.grade_share[:, None, :])
        return np.minimum(p10, p50), p50, np.maximum(p90, p50)


def _pad(a: np.ndarray, n: int = N_DAYS_MAX) -> np.ndarray:
    if a.shape[1] >= n:
        return a[:, :n]
    return np.concatenate([a, np.full((a.shape[0], n - a.shape[1]), np.nan)], axis=1)


def _thermal_days(season: int, n_days: int) -> tuple[int, int]:
    """Days whose hourly temperature the models use: 1 November (chill start) to 30 September."""
    return chill_start_day(season), n_days


def _chill_window(season: int) -> tuple[int, int]:
    end = (date(season, *CHILL_END_MONTH_DAY) - season_start(season)).days
    return chill_start_day(season), end


@dataclass
class _Prepared:
    season: int
    thermal: DailyThermal
    tmean: np.ndarray
    soil: np.ndarray
    leaf: np.ndarray
    age: np.ndarray
    rain: np.ndarray
    root: np.ndarray
    et0: np.ndarray | None = None     #: reference ET, mm/day (o, d)
    rain_f: np.ndarray | None = None  #: rain with gaps filled, mm/day (o, d)
    depl: np.ndarray | None = None    #: root-zone depletion after each day, mm (o, d)


def _splice(obs: DailyThermal, clim: DailyThermal, as_of_day: int, idx: np.ndarray | None = None) -> DailyThermal:
    """Observed daily sums up to the as-of day, the climatology's after it (rows ``idx`` of ``clim``)."""
    n = obs.chill_portions.shape[1]
    cut = max(min(as_of_day + 1, n), 0)
    rows = slice(None) if idx is None else idx

    def sp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty(a.shape, dtype=a.dtype)
        out[:, :cut] = a[:, :cut]
        if cut < n:
            m = min(n, b.shape[1])
            out[:, cut:m] = b[rows, cut:m]
            if m < n:
                out[:, max(m, cut):] = b[rows, m - 1:m]
        return out

    return DailyThermal(sp(obs.chill_portions, clim.chill_portions), sp(obs.utah_units, clim.utah_units),
                        sp(obs.gdh, clim.gdh), obs.frost_hours, obs.heat_degree_hours, obs.tmin_hourly)


class Forecaster:
    """Holds the history (prepared once) and fits/applies the models for any as-of day."""

    def __init__(self, orchards: OrchardTable, history: list[SeasonRecord], *,
                 bloom: BloomParams | None = None, harvest: HarvestParams | None = None,
                 risk: RiskParams | None = None, min_week_share: float = 0.01,
                 cache: dict[int, _Prepared] | None = None) -> None:
        """``cache``: prepared past seasons to reuse across forecasters over the same orchards (a
        backtest); a season is cached only when its weather had no gap left after gap filling."""
        t0 = time.perf_counter()
        self.orchards = orchards
        self.history = sorted(history, key=lambda r: r.season)
        self.risk_params = risk or RiskParams()
        self.min_week_share = min_week_share
        n = orchards.n
        for rec in self.history:
            if rec.weather.n_orchards != n:
                raise ValueError(f"season {rec.season}: weather has {rec.weather.n_orchards} orchards, table has {n}")
        # climatology of daily Tmin/Tmax by day index of the season (NaN-mean over seasons)
        filled = [(fill_gaps(r.weather.tmin_c), fill_gaps(r.weather.tmax_c)) for r in self.history]
        ref_season = self.history[-1].season + 1 if self.history else date.today().year
        dc = default_climate(orchards.elevation_m, ref_season, N_DAYS_MAX)
        if filled:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self.clim_tmin = np.nanmean(np.stack([_pad(a) for a, _ in filled]), axis=0)
                self.clim_tmax = np.nanmean(np.stack([_pad(b) for _, b in filled]), axis=0)
            bad = np.isnan(self.clim_tmin) | np.isnan(self.clim_tmax)
            self.clim_tmin[bad] = dc["tmin_c"][bad]
            self.clim_tmax[bad] = dc["tmax_c"][bad]
        else:
            self.clim_tmin, self.clim_tmax = dc["tmin_c"], dc["tmax_c"]
        self.clim_source = "history" if filled else "default"
        # seasons (or orchards) without stored weather get the climatology, so bloom is still predicted
        raw_filled = filled
        filled = [(np.where(np.isnan(a), _pad(self.clim_tmin, a.shape[1]), a),
                   np.where(np.isnan(b), _pad(self.clim_tmax, b.shape[1]), b)) for a, b in filled]
        self._clim_thermal: dict[int, DailyThermal] = {}
        self.prepared: list[_Prepared] = []
        for rec, raw, (tn, tx) in zip(self.history, raw_filled, filled, strict=True):
            complete = not (np.isnan(raw[0]).any() or np.isnan(raw[1]).any())
            if cache is not None and complete and rec.season in cache:
                self.prepared.append(cache[rec.season])
                continue
            prep = self._prepare(rec.weather, tn, tx, None)
            if cache is not None and complete:
                cache[rec.season] = prep
            self.prepared.append(prep)
        # each orchard's field capacity from its soil-water record (history; else filled per forecast)
        self.field_capacity = (estimate_field_capacity([r.weather.soil_vwc for r in self.history]) if self.history
                               else np.full(n, np.nan))
        self.timings_s: dict[str, float] = {"prepare_history": time.perf_counter() - t0}

        t1 = time.perf_counter()
        blooms = [r.bloom_day.astype(np.float64) if r.bloom_day is not None else None for r in self.history]
        have = [(p.thermal.chill_portions, p.thermal.gdh, b) for p, b in zip(self.prepared, blooms, strict=True)
                if b is not None]
        self.bloom_params = bloom or (calibrate_bloom([h[0] for h in have], [h[1] for h in have],
                                                      [h[2] for h in have]) if have else BloomParams())
        self.harvest_params = harvest or self._calibrate_harvest()
        if harvest is None:
            # the in-sample centroid error knows the true bloom and weather; a forecast does not
            bl = self.bloom_params.rmse_days if np.isfinite(self.bloom_params.rmse_days) else 4.0
            self.harvest_params.centroid_err_sd_days = float(max(np.hypot(self.harvest_params.centroid_err_sd_days,
                                                                          bl), 2.0))
        self.timings_s["calibrate_phenology"] = time.perf_counter() - t1
        self._fits: dict[int, tuple[YieldFit, GradeModel, float]] = {}

    # -- preparation -------------------------------------------------------------------------
    def _clim(self, season: int, n_days: int) -> DailyThermal:
        key = n_days
        if key not in self._clim_thermal:
            self._clim_thermal[key] = daily_thermal(
                self.clim_tmin[:, :n_days], self.clim_tmax[:, :n_days], self.orchards.latitude_deg,
                day_of_year(season, n_days), chill_days=_chill_window(season), days=_thermal_days(season, n_days))
        return self._clim_thermal[key]

    def _prepare(self, w: SeasonWeather, tmin_f: np.ndarray, tmax_f: np.ndarray, hourly: np.ndarray | None,
                 tab: OrchardTable | None = None, thermal_until: int | None = None) -> _Prepared:
        """``thermal_until``: compute the hourly thermal sums only for days before it (a forecast: later
        days are the climatology's, spliced in by :func:`_splice`, and the risk indices read days up to
        the as-of day only)."""
        tab = tab or self.orchards
        n_d = w.n_days
        d_lo, d_hi = _thermal_days(w.season, n_d)
        if thermal_until is not None:
            d_hi = max(d_lo, min(d_hi, thermal_until + 1))   # + 1: the next day's dawn needs its minimum
        th = daily_thermal(tmin_f, tmax_f, tab.latitude_deg, day_of_year(w.season, n_d),
                           hourly_obs_c=hourly if hourly is not None else w.hourly_temp_c,
                           chill_days=_chill_window(w.season), days=(d_lo, d_hi))
        tmean = (tmin_f + tmax_f) / 2.0
        soil = _fill_observed(w.soil_vwc)
        leaf = _fill_observed(w.leaf_wet_h)
        age = w.season - np.asarray(tab.planting_year, dtype=np.int64)
        rain = np.asarray(w.rain_mm, dtype=np.float64)
        jan1 = (date(w.season, 1, 1) - season_start(w.season)).days
        doy = day_of_year(w.season, n_d)
        dates = np.datetime64(season_start(w.season).isoformat(), "D") + np.arange(n_d)
        # FAO-56 Penman-Monteith where humidity, wind and radiation are measured, Hargreaves elsewhere
        et0, _pm = reference_et0_mm(tmin_f, tmax_f, tab.latitude_deg, doy, dates=dates, rh_pct=w.rh_pct,
                                    wind2_ms=w.wind_ms, solar_mj_m2=w.solar_mj_m2, elevation_m=tab.elevation_m)
        rain_f = np.nan_to_num(_fill_observed(rain), nan=0.0)
        root, depl = water_balance(et0, rain_f, crop_kc(doy), start_day=jan1, taw_mm=TAW_MM)
        return _Prepared(w.season, th, tmean, soil, leaf, age, rain, root, et0.astype(np.float32),
                         rain_f.astype(np.float32), depl.astype(np.float32))

    def _calibrate_harvest(self) -> HarvestParams:
        blooms, g30, cents, spreads, tmeans = [], [], [], [], []
        for rec, prep in zip(self.history, self.prepared, strict=True):
            if rec.week_grade_kg is None or rec.week_starts is None:
                continue
            b = rec.bloom_day
            if b is None:
                b, _ = predict_bloom(prep.thermal.chill_portions, prep.thermal.gdh, self.bloom_params)
            b = np.asarray(b, dtype=np.int64)
            c, s = _centroid_spread(rec.week_grade_kg, rec.week_starts, rec.season)
            blooms.append(b.astype(np.float64))
            g30.append(gdh_after(prep.thermal.gdh, b))
            cents.append(c)
            spreads.append(s)
            tmeans.append(prep.tmean)
        return calibrate_harvest(blooms, g30, cents, spreads, tmean_c=tmeans) if blooms else HarvestParams()

    # -- features at an as-of day ---------------------------------------------------------------
    def _state(self, prep: _Prepared, obs: Observations | None, as_of_day: int, idx: np.ndarray | None = None
               ) -> dict[str, Any]:
        n_d = prep.thermal.chill_portions.shape[1]
        th = _splice(prep.thermal, self._clim(prep.season, n_d), as_of_day, idx)
        bloom_pred, _ = predict_bloom(th.chill_portions, th.gdh, self.bloom_params)
        n_o = bloom_pred.shape[0]
        if obs is not None:
            fd, fs, b_obs = obs.upto(as_of_day)
        else:
            fd = fs = np.full(n_o, np.nan)
            b_obs = np.full(n_o, -1, dtype=np.int64)
        # two blooms: the yield model's frost and water windows were fitted on past seasons with the
        # model's *predicted* bloom (past seasons' observations carry no bloom), so the target uses the
        # same for them (training and prediction alike); the harvest timing was fitted on *recorded*
        # blooms, so it uses the recorded bloom where there is one and the season-corrected prediction
        # elsewhere (the best estimate, also what the forecast reports)
        bloom_y = bloom_pred
        bloom = np.where(b_obs >= 0, b_obs, _season_bias_corrected(bloom_pred, b_obs))
        fc = self.field_capacity if idx is None else self.field_capacity[idx]
        if np.isnan(fc).any():  # orchards without a soil record: their season so far
            fc = np.where(np.isnan(fc), estimate_field_capacity([prep.soil]), fc)
        hp = self.harvest_params
        if hp.model == "degree_days":
            clim_tmean = (self.clim_tmin + self.clim_tmax) / 2.0
            clim_tmean = _pad(clim_tmean if idx is None else clim_tmean[idx], n_d)
            tmean = prep.tmean.copy()
            tmean[:, as_of_day + 1:] = clim_tmean[:, as_of_day + 1:]

            def cen_of(b: np.ndarray) -> np.ndarray:
                return degree_day_centroid(tmean, b, hp.dd_base_c, hp.dd_req)
        else:
            def cen_of(b: np.ndarray) -> np.ndarray:
                g30 = gdh_after(th.gdh, b)
                c = b + hp.fdp_intercept_days + hp.fdp_slope_days_per_kgdh * np.nan_to_num(g30) / 1000.0
                return np.where(b >= 0, c, np.nan)
        centroid = cen_of(bloom)
        centroid_y = centroid if np.array_equal(bloom, bloom_y) else cen_of(bloom_y)
        hv = np.where(np.isfinite(centroid_y), np.round(centroid_y + 1.645 * hp.spread_sd_days), -1).astype(np.int64)
        timing = self._timing_members(prep, th, bloom, as_of_day, idx)
        risk = risk_indices(tmin_hourly=th.tmin_hourly, frost_hours=th.frost_hours, heat_dh=th.heat_degree_hours,
                            soil_vwc=prep.soil, leaf_wet_h=prep.leaf, tmean_c=prep.tmean, bloom_day=bloom_y,
                            harvest_day=hv, as_of_day=as_of_day, rain_mm=prep.rain, p=self.risk_params,
                            field_capacity=fc, root_stress=prep.root, gdh_daily=th.gdh,
                            heat_req_gdh=self.bloom_params.heat_req_gdh)
        members = self._project_water(prep, as_of_day, bloom_y, hv, risk, idx)
        return {"bloom": bloom, "centroid": centroid, "fd": fd, "fs": fs, "risk": risk, "water_members": members,
                "timing_members": timing}

    def _timing_members(self, prep: _Prepared, th: DailyThermal, bloom: np.ndarray, as_of_day: int,
                        idx: np.ndarray | None) -> np.ndarray | None:
        """Harvest centroid (day index) per member of an ensemble of the past seasons' weather after the
        as-of day, (members, orchard); None without past seasons.

        What is known on the as-of day is used as it is (the observed or predicted bloom, the heat
        accumulated since bloom); only the days still to come are uncertain, and their temperatures
        are taken from each of the last ``ENSEMBLE_SEASONS`` past seasons in turn on the same days of
        the season (ensemble streamflow prediction, Day 1985, J. Water Resour. Plann. Manage.
        111:157-170).
        The centroid of each member comes from the fitted thermal-time model: degree-days from bloom
        (Ruml et al. 2010 for plum, base and requirement fitted) or FDP = a + b GDH30 (Ben Mimoun &
        DeJong 1999, Acta Hortic. 488:291-294). The members' spread is the timing uncertainty that the
        future weather leaves -- wide 60 days out, narrow once the heat has been lived -- and it is
        common to every orchard of the county (one weather)."""
        others = [q for q in self.prepared if q.season != prep.season][-ENSEMBLE_SEASONS:]
        if not others:
            return None
        hp = self.harvest_params
        n_o, n_d = prep.tmean.shape
        rows = slice(None) if idx is None else idx
        start = max(as_of_day + 1, 0)
        out = np.empty((len(others), n_o))
        if hp.model == "degree_days" and 0 < start < n_d:
            # degree-days known up to the as-of day once; each member only adds its own days after it
            dd = np.clip(np.nan_to_num(prep.tmean[:, :start], nan=0.0) - hp.dd_base_c, 0.0, None)
            cum = np.cumsum(dd, axis=1)
            r = np.arange(n_o)
            b = np.clip(bloom, 0, start - 1)
            need = np.where(bloom >= 0, cum[r, b] + hp.dd_req, np.nan)   # bloom after start: replaced below
            done = degree_day_centroid(prep.tmean[:, :start], np.where(bloom < start, bloom, -1), hp.dd_base_c,
                                       hp.dd_req)
            left = need - cum[:, -1]
            for k, q in enumerate(others):
                f = _pad(q.tmean[rows], n_d)[:, start:]
                cf = np.cumsum(np.clip(np.nan_to_num(f, nan=0.0) - hp.dd_base_c, 0.0, None), axis=1)
                hit = cf >= left[:, None]
                day = np.where(hit.any(axis=1), start + hit.argmax(axis=1), np.nan)
                # bloom after the as-of day: from its (predicted) day on, in this member's weather
                late = bloom >= start
                if late.any():
                    t = prep.tmean[late].copy()
                    t[:, start:] = f[late]
                    day[late] = degree_day_centroid(t, bloom[late], hp.dd_base_c, hp.dd_req)
                out[k] = np.where(np.isfinite(done), done, np.where(bloom >= 0, day, np.nan))
            return out
        for k, q in enumerate(others):
            if hp.model == "degree_days":
                t = prep.tmean.copy()
                if start < n_d:
                    t[:, start:] = _pad(q.tmean[rows], n_d)[:, start:]
                out[k] = degree_day_centroid(t, bloom, hp.dd_base_c, hp.dd_req)
            else:
                g = th.gdh.copy()
                if start < n_d:
                    g[:, start:] = _pad(q.thermal.gdh[rows], n_d)[:, start:]
                g30 = gdh_after(g, bloom)
                c = bloom + hp.fdp_intercept_days + hp.fdp_slope_days_per_kgdh * np.nan_to_num(g30) / 1000.0
                out[k] = np.where(bloom >= 0, c, np.nan)
        return out

    def _project_water(self, prep: _Prepared, as_of_day: int, bloom: np.ndarray, hv: np.ndarray,
                       risk: RiskIndices, idx: np.ndarray | None) -> np.ndarray | None:
        """Expected root-zone stress of the whole fruit-growth window given the soil water on the as-of
        day: the stress measured so far plus, for the days still to come, the mean over an ensemble of
        the past seasons' weather run from today's depletion (FAO-56 balance; FAO-33's yield response
        is to the season's relative ET deficit, not to the part already lived). Sets
        ``risk.root_zone_stress`` to that expectation and returns the members' window indices
        (members, orchard), or None without past seasons or a future window."""
        if prep.depl is None:
            return None
        others = [q for q in self.prepared if q.season != prep.season and q.et0 is not None][-ENSEMBLE_SEASONS:]
        n_o, n_d = prep.depl.shape
        known = (bloom >= 0) & (hv >= 0)
        w_lo = np.where(known, bloom + self.risk_params.water_from_bloom_days, n_d)
        w_hi = np.where(known, np.minimum(hv, n_d), 0)
        first = max(as_of_day + 1, (date(prep.season, 1, 1) - season_start(prep.season)).days)
        if not others or not (w_hi > max(first, 0)).any():
            return None
        d_end = min(n_d, int(w_hi.max()))
        rows = slice(None) if idx is None else idx

        def fut(a: np.ndarray) -> np.ndarray:
            v = a[rows, first:d_end]
            return v if v.shape[1] == d_end - first else np.pad(v, ((0, 0), (0, d_end - first - v.shape[1])), "edge")

        et0 = np.stack([fut(q.et0) for q in others])       # type: ignore[arg-type]
        rain = np.stack([fut(q.rain_f) for q in others])   # type: ignore[arg-type]
        # persistence: as many members again carry this season's rain and ET0 anomaly so far (ratio to
        # the same days of the past seasons) into the days to come -- dry spells persist, and an ensemble
        # of past weather alone would assume the drought ends today. Equal weights (no information which
        # is the likelier); in an ordinary season the ratios are near 1 and the two halves agree.
        jan1 = (date(prep.season, 1, 1) - season_start(prep.season)).days
        if as_of_day - jan1 >= PERSISTENCE_MIN_DAYS and prep.rain_f is not None and prep.et0 is not None:
            sl = slice(jan1, as_of_day + 1)

            def ratio(now: np.ndarray, past: list[np.ndarray], lo: float, hi: float) -> np.ndarray:
                ref = np.mean([a[rows, sl].sum(axis=1) for a in past], axis=0)
                return np.clip(now[:, sl].sum(axis=1) / np.maximum(ref, 1e-6), lo, hi)

            r_rain = ratio(prep.rain_f, [q.rain_f for q in others], *PERSISTENCE_RAIN_CLIP)  # type: ignore[misc]
            r_et0 = ratio(prep.et0, [q.et0 for q in others], *PERSISTENCE_ET0_CLIP)          # type: ignore[misc]
            et0 = np.concatenate([et0, et0 * r_et0[None, :, None]])
            rain = np.concatenate([rain, rain * r_rain[None, :, None]])
        d0 = prep.depl[:, as_of_day] if 0 <= as_of_day < n_d and as_of_day + 1 >= first else np.zeros(n_o)
        doy = day_of_year(prep.season, n_d)
        fut_sum = projected_stress_sum(et0, rain, crop_kc(doy), d0, w_lo, w_hi, first_day=first, taw_mm=TAW_MM)
        w_len = np.maximum(w_hi - w_lo, 1)
        members = (risk.root_zone_stress * w_len + fut_sum) / w_len
        risk.root_zone_stress = np.where(known, members.mean(axis=0), risk.root_zone_stress)
        return np.where(known[None, :], members, risk.root_zone_stress[None, :])

    def _x(self, st: dict, age: np.ndarray, fs_ref: float, tab: OrchardTable, prev_dev: np.ndarray | None = None
           ) -> np.ndarray:
        r: RiskIndices = st["risk"]
        return design(age, tab.trees_per_mu(), tab.elevation_m, r.frost_kill, r.root_zone_stress, r.heat_dh,
                      r.rot_days, st["fd"], st["fs"], fs_ref, r.bloom_rain_days, prev_dev)

    def prev_season_dev(self, season: int) -> np.ndarray:
        """Per history orchard: log kg/mu of ``season - 1`` minus the mean of seasons ``season - 4 .. - 2``,
        full-bearing seasons (age >= 5) with a recorded harvest only; NaN where either is unknown."""
        area = np.asarray(self.orchards.area_mu, dtype=np.float64)
        py = np.asarray(self.orchards.planting_year, dtype=np.int64)
        logs: dict[int, np.ndarray] = {}
        for r in self.history:
            kg = r.total_kg if r.total_kg is not None else (
                r.week_grade_kg.sum(axis=(1, 2)) if r.week_grade_kg is not None else None)
            if kg is None:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.log(np.asarray(kg, dtype=np.float64) / area)
            logs[r.season] = np.where((r.season - py >= 5) & np.isfinite(v), v, np.nan)
        n = self.orchards.n
        prev = logs.get(season - 1, np.full(n, np.nan))
        refs = [logs[s] for s in (season - 2, season - 3, season - 4) if s in logs]
        if not refs:
            return np.full(n, np.nan)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanmean(np.stack(refs), axis=0)
        return prev - ref

    def fit(self, as_of_day: int) -> tuple[YieldFit, GradeModel, float]:
        """Fit the yield and grade models on the history at ``as_of_day`` (cached per day)."""
        as_of_day = max(int(as_of_day), -1)
        if as_of_day in self._fits:
            return self._fits[as_of_day]
        tab = self.orchards
        fs_vals = [r.observations.fruit_set for r in self.history if r.observations is not None]
        allfs = np.concatenate(fs_vals) if fs_vals else np.array([])
        fs_ref = float(np.nanmedian(allfs)) if np.isfinite(allfs).any() else 0.0
        xs, kgs, ages, states = [], [], [], []
        for rec, prep in zip(self.history, self.prepared, strict=True):
            if rec.total_kg is None and rec.week_grade_kg is None:
                continue
            kg = rec.total_kg if rec.total_kg is not None else rec.week_grade_kg.sum(axis=(1, 2))  # type: ignore[union-attr]
            st = self._state(prep, rec.observations, as_of_day)
            xs.append(self._x(st, prep.age, fs_ref, tab, self.prev_season_dev(rec.season)))
            kgs.append(np.asarray(kg, dtype=np.float64))
            ages.append(prep.age)
            states.append((rec, st, prep))
        yfit = fit_yield(xs, kgs, ages, np.asarray(tab.area_mu, dtype=np.float64))
        # grade model on graded seasons
        rows_s, rows_load, rows_w, rows_fs, rows_el = [], [], [], [], []
        for (rec, st, prep), x in zip(states, xs, strict=True):
            if rec.week_grade_kg is None:
                continue
            g = rec.week_grade_kg.sum(axis=1)
            tot = g.sum(axis=1)
            ok = (tot > 0) & (prep.age >= 3)
            # crop load from the recorded season total where there is one (graded lots may be partial)
            load_kg = tot if rec.total_kg is None else np.where(np.isfinite(rec.total_kg), rec.total_kg, tot)
            ok &= load_kg > 0
            rows_s.append(g[ok] / tot[ok, None])
            rows_load.append(np.log(load_kg[ok] / tab.area_mu[ok]))
            rows_w.append(st["risk"].root_zone_stress[ok])
            rows_fs.append(fruit_set_log(x)[ok])
            rows_el.append(x[ok, _EL])
        gm = (fit_grades(np.concatenate(rows_s), np.concatenate(rows_load), np.concatenate(rows_w),
                         np.concatenate(rows_fs), np.concatenate(rows_el)) if rows_s else GradeModel())
        self._fits[as_of_day] = (yfit, gm, fs_ref)
        log.info("yield model fitted", extra={"as_of_day": as_of_day, "rows": yfit.n_rows, "seasons": yfit.seasons,
                                              "calib_k": round(yfit.calib_k, 3), "grade_rows": gm.n_rows})
        return self._fits[as_of_day]

    # -- the forecast ------------------------------------------------------------------------
    def forecast(self, weather: SeasonWeather, as_of_day: int, observations: Observations | None = None, *,
                 orchards: OrchardTable | None = None, ref_idx: np.ndarray | None = None,
                 chunk: int = 10000, counts: FruitCounts | None = None) -> SeasonForecast:
        """Forecast ``weather.season`` from data known on ``as_of_day`` (day index; later data are ignored).

        By default the orchards are the history's (same axis). Other orchards (``orchards``) need
        ``ref_idx``: for each, the history orchard whose climatology it shares; they get no orchard
        effect (new orchards). Work is done ``chunk`` orchards at a time (memory linear in orchards).
        ``counts``: growers' sample-tree fruit counts of the season, assimilated into the orchards'
        totals (:mod:`orchard_models.fruit_counts`) when recorded by ``as_of_day``.
        """
        as_of_day = max(int(as_of_day), -1)   # before the season began: nothing of it is known yet
        t0 = time.perf_counter()
        yfit, gm, fs_ref = self.fit(as_of_day)
        t_fit = time.perf_counter() - t0
        n = weather.n_orchards
        if orchards is None:
            if n != self.orchards.n:
                raise ValueError(f"weather has {n} orchards, the table {self.orchards.n}")
            ref = None
        else:
            if ref_idx is None or orchards.n != n or len(ref_idx) != n:
                raise ValueError("other orchards need a table and ref_idx matching the weather's orchards")
            ref = np.asarray(ref_idx, dtype=np.int64)
        n_d = weather.n_days
        cut = min(as_of_day + 1, n_d)
        t1 = time.perf_counter()
        parts = []
        for a in range(0, n, chunk):
            idx = np.arange(a, min(n, a + chunk))
            parts.append(self._forecast_chunk(weather, as_of_day, observations, idx, cut, orchards, ref))
        out: dict[str, np.ndarray] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]
                                      if k not in ("risk", "water_members", "timing_members")}
        members = ([p["water_members"] for p in parts] if all(p["water_members"] is not None for p in parts)
                   else None)
        risks = [p["risk"] for p in parts]
        risk = RiskIndices(*(np.concatenate([getattr(r, f) for r in risks]) for f in RiskIndices.__dataclass_fields__))
        # the yield model over the whole season at once (county means span every orchard)
        tab = orchards or self.orchards
        age = weather.season - np.asarray(tab.planting_year, dtype=np.int64)
        st = {"risk": risk, "fd": out["fd"], "fs": out["fs"]}
        pdev = self.prev_season_dev(weather.season)
        x = self._x(st, age, fs_ref, tab, pdev if ref is None else pdev[ref])
        area = np.asarray(tab.area_mu, dtype=np.float64)
        # the weather still to come is common to every orchard: the spread of the county water factor over
        # the ensemble of past seasons' weather widens the season-level interval (0 once the window is lived)
        extra_c = 0.0
        if members is not None:
            m = np.concatenate(members, axis=1)
            bear = age >= 3
            if bear.any() and m.shape[0] >= 2:
                g = np.log(np.clip(1.0 - KY_WATER * m[:, bear], 0.05, 1.0)).mean(axis=1)
                extra_c = float(yfit.beta[FEATURES.index("c_log_water_factor")] ** 2 * np.var(g, ddof=1))
        # the critical temperatures' own 95 % interval (Miranda et al. 2005) as a common uncertainty of the
        # county frost term, while that term is in use (a counted fruit set supersedes it)
        j_frost = FEATURES.index("c_log_frost_survival")
        bear = age >= 3
        if bear.any() and x[0, j_frost] != 0.0:
            surv = [np.log(np.clip(1.0 - k[bear], 0.02, 1.0)).mean() for k in (risk.frost_kill_hardy,
                                                                                 risk.frost_kill_tender)]
            extra_c += float(yfit.beta[j_frost] ** 2 * ((surv[0] - surv[1]) / (2 * 1.96)) ** 2)
        out["p10"], out["p50"], out["p90"] = predict_yield(yfit, x, age, area,
                                                           orch_idx=np.arange(n) if ref is None else None,
                                                           extra_var_c=extra_c)
        counted = np.zeros(n, dtype=bool)
        shift_kg = 0.0
        if counts is not None:
            before = out["p50"].copy()
            bearing = age >= 3
            q10, q50, q90, counted = assimilate_counts(out["p10"], out["p50"], out["p90"], counts,
                                                       np.asarray(tab.tree_count, dtype=np.float64), as_of_day)
            counted &= bearing
            for k, v in (("p10", q10), ("p50", q50), ("p90", q90)):
                out[k] = np.where(counted, v, out[k])
            shift_kg = float((out["p50"] - before)[counted].sum())
        log_load = np.log(np.maximum(out["p50"], 1e-9) / area)
        out["grades"] = predict_grades(gm, log_load, risk.root_zone_stress, fruit_set_log(x), x[:, _EL])
        # weeks: the share of each week integrated over the harvest-timing distribution (the ensemble of
        # centroids the weather still to come allows, each with the picking spread and the model's own
        # orchard-level error), not the shares of one point centroid
        hp = self.harvest_params
        cen = out["centroid"]
        tm = ([p["timing_members"] for p in parts] if all(p["timing_members"] is not None for p in parts)
              else None)
        members = np.concatenate(tm, axis=1) if tm is not None else cen[None, :]
        s0 = season_start(weather.season)
        sd_eff = float(np.hypot(hp.spread_sd_days, hp.centroid_err_sd_days))
        allc = np.concatenate([cen[np.isfinite(cen)], members[np.isfinite(members)]])
        if allc.size:
            lo = int(np.floor(allc.min() - 3 * sd_eff))
            hi = int(np.ceil(allc.max() + 3 * sd_eff))
            weeks = harvest_weeks(s0 + timedelta(days=lo), s0 + timedelta(days=hi))
        else:
            weeks = []
        wdays = np.array([(w - s0).days for w in weeks], dtype=np.float64)
        if weeks:
            wshare, w_min, w_max = np.zeros((n, len(weeks))), np.zeros((n, len(weeks))), np.zeros((n, len(weeks)))
            for a in range(0, n, chunk):
                sl = slice(a, min(n, a + chunk))
                wshare[sl], w_min[sl], w_max[sl] = week_share_distribution(
                    members[:, sl], cen[sl], hp.spread_sd_days, hp.centroid_err_sd_days, wdays, self.min_week_share)
        else:
            wshare = w_min = w_max = np.zeros((n, 0))
        keep = (wshare.sum(axis=0) > 0) | (w_max.sum(axis=0) > 0)
        weeks = [w for w, k in zip(weeks, keep, strict=True) if k]
        wshare, w_min, w_max = wshare[:, keep], w_min[:, keep], w_max[:, keep]
        no_weeks = wshare.sum(axis=1) == 0
        for k in ("p10", "p50", "p90"):
            out[k] = np.where(no_weeks, 0.0, out[k])
        county = county_quantiles(yfit, x, age, area, orch_idx=np.arange(n) if ref is None else None,
                                  include=~no_weeks, extra_var_c=extra_c)
        if shift_kg:
            county = tuple(max(v + shift_kg, 0.0) for v in county)  # type: ignore[assignment]
        half = 1.645 * hp.spread_sd_days
        fc = SeasonForecast(
            season=weather.season, as_of_day=as_of_day, bloom_day=out["bloom"].astype(np.int64), centroid_day=cen,
            harvest_start_day=np.where(np.isfinite(cen), np.floor(cen - half), -1).astype(np.int64),
            harvest_end_day=np.where(np.isfinite(cen), np.ceil(cen + half), -1).astype(np.int64),
            total_p10_kg=out["p10"], total_p50_kg=out["p50"], total_p90_kg=out["p90"], week_starts=weeks,
            week_share=wshare, grade_share=out["grades"], risk=risk, week_share_min=w_min, week_share_max=w_max,
            grade_log_sd=gm.log_sd(),
            timings_s={"fit": t_fit, "compute": time.perf_counter() - t1}, county_kg=county,
            orchard_log_sd=orchard_log_sd(yfit, x, np.arange(n) if ref is None else None))
        return fc

    def _forecast_chunk(self, weather: SeasonWeather, as_of_day: int, observations: Observations | None,
                        idx: np.ndarray, cut: int, orchards: OrchardTable | None, ref: np.ndarray | None) -> dict:
        """Phenology and risk for orchards ``idx`` (the heavy, per-orchard part)."""
        tab = (orchards or self.orchards).subset(idx)
        cidx = idx if ref is None else ref[idx]
        w = weather.subset(idx)
        n_d = w.n_days
        tn = w.tmin_c.astype(np.float64, copy=True)
        tx = w.tmax_c.astype(np.float64, copy=True)
        tn[:, cut:] = np.nan
        tx[:, cut:] = np.nan
        clim_n = _pad(self.clim_tmin[cidx], n_d)
        clim_x = _pad(self.clim_tmax[cidx], n_d)
        tn_f = clim_n.copy()
        tx_f = clim_x.copy()
        if cut > 0:
            tn_f[:, :cut] = fill_gaps(tn[:, :cut])
            tx_f[:, :cut] = fill_gaps(tx[:, :cut])
        tn_f = np.where(np.isnan(tn_f), clim_n, tn_f)
        tx_f = np.where(np.isnan(tx_f), clim_x, tx_f)
        hourly = None
        if w.hourly_temp_c is not None:
            hourly = w.hourly_temp_c.astype(np.float64, copy=True)
            hourly[:, cut:, :] = np.nan
        cut_w = SeasonWeather(w.season, tn, tx, _cut(w.rain_mm, cut), _cut(w.soil_vwc, cut),
                              _cut(w.leaf_wet_h, cut), _cut(w.rh_pct, cut),
                              wind_ms=None if w.wind_ms is None else _cut(w.wind_ms, cut),
                              solar_mj_m2=None if w.solar_mj_m2 is None else _cut(w.solar_mj_m2, cut))
        prep = self._prepare(cut_w, tn_f, tx_f, hourly, tab, thermal_until=cut)
        obs = observations.subset(idx) if observations is not None else None
        st = self._state(prep, obs, as_of_day, idx=cidx)
        return {"bloom": st["bloom"], "centroid": st["centroid"], "fd": st["fd"], "fs": st["fs"], "risk": st["risk"],
                "water_members": st["water_members"], "timing_members": st["timing_members"]}


#: orchards with a recorded bloom this season needed before their residuals correct the others' predictions
MIN_BLOOM_RESIDUALS = 10


def _season_bias_corrected(pred: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Predicted bloom days shifted by this season's median error of the model where bloom was recorded.

    A thermal-time bloom model's error has a large season component common to every orchard (one
    weather, one model: the year-to-year error of chill/heat models is what their RMSE mostly measures,
    Chuine et al. 1999, J. Theor. Biol. 200:29-43, and Luedeling et al. 2009 for chillR's models). The
    orchards whose growers recorded full bloom (a few hundred a season) measure that component, so the
    other orchards' predictions are shifted by their median residual (robust to a few mis-recorded
    dates) -- the idea of model output statistics (Glahn & Lowry 1972, J. Appl. Meteor. 11:1203-1211)
    applied within the season; with fewer than ``MIN_BLOOM_RESIDUALS`` records nothing is shifted."""
    ok = (observed >= 0) & (pred >= 0)
    if ok.sum() < MIN_BLOOM_RESIDUALS:
        return pred
    shift = int(np.round(np.median(observed[ok] - pred[ok])))
    return np.where(pred >= 0, pred + shift, pred)


def _fill_observed(a: np.ndarray) -> np.ndarray:
    """Gap-fill the days up to the last day any orchard reported; later days stay NaN."""
    a = np.asarray(a, dtype=np.float64)
    has = ~np.isnan(a).all(axis=0)
    if not has.any():
        return a.copy()
    last = int(np.nonzero(has)[0][-1]) + 1
    out = np.full(a.shape, np.nan)
    out[:, :last] = fill_gaps(a[:, :last])
    return out


def _cut(a: np.ndarray, cut: int) -> np.ndarray:
    out = np.asarray(a, dtype=np.float64).copy()
    out[:, cut:] = np.nan
    return out


def _centroid_spread(week_grade_kg: np.ndarray, week_starts: list[date], season: int) -> tuple[np.ndarray, np.ndarray]:
    """Harvest centroid (day index) and picking SD (days) per orchard from weekly kg; NaN without harvest."""
    s0 = season_start(season)
    mid = np.array([(w - s0).days + 3.0 for w in week_starts])
    kg = week_grade_kg.sum(axis=2)
    tot = kg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (kg * mid[None, :]).sum(axis=1) / tot
        var = (kg * (mid[None, :] - c[:, None]) ** 2).sum(axis=1) / tot - 49.0 / 12.0
    ok = tot > 0
    return np.where(ok, c, np.nan), np.where(ok, np.sqrt(np.maximum(var, 1.0)), np.nan)
