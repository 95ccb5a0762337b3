"""Risk indices per orchard from the season's sensor data up to the as-of day (numpy, (orchard, day)).

* Frost by stage: :mod:`orchard_models.frost` -- the published critical temperatures of Miranda,
  Santesteban & Royo (2005, HortScience 40:357-361) for seven *Prunus* bud stages, stage dates from
  heat relative to bloom, linear kill between LT10 and LT90, season kill = 1 - prod(1 - daily kill).
  The four coarse stages of ``RiskParams.frost_stages`` (days relative to bloom) name the stage and
  drive the alerts; their temperatures are Miranda's for the nearest stage (D, E, F, I).
* Water stress (fruit growth, bloom + 20 d to harvest): daily stress ``1 - Ks = clip((θc - θ) / (θc - θw), 0, 1)``
  from the mean 10 cm soil water content θ (m³/m³) (FAO-56, Allen et al. 1998). Soils differ and the
  registry holds no texture, so each orchard's field capacity θfc is estimated from its own record as
  the 95th percentile of daily θ (drainage brings wet soil back to θfc within a day or two); θw =
  0.45 θfc (loam ratio) and θc = θw + (1 - p)(θfc - θw) with p = 0.5; without a record, θc = 0.21 and
  θw = 0.12. The index is the stress summed over observed days divided by the window length.
* Brown rot (Monilinia) pressure, bloom - 7 d to harvest: an infection day is a day whose leaf
  wetness hours W reach the wetness needed at the day's mean temperature T, ``Wreq = 5 + 0.0714 (T - 23.5)²``
  h for 5 <= T <= 35 °C -- a smooth fit of the wetness-temperature infection thresholds of
  Biggs & Northover (1988, Phytopathology 78:1352-1356) and Luo & Michailides (2001): about
  5 h at 22-25 °C, 10 h at 15 °C, 18 h at 10 °C.
* Heat stress, fruit growth: degree-hours above 35 °C (°C·h) from the hourly temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from orchard_models.thermal import FROST_THRESHOLDS_C

__all__ = ["FrostStage", "RiskIndices", "RiskParams", "risk_indices", "wetness_required_h"]


@dataclass(frozen=True)
class FrostStage:
    name: str
    start_rel_day: int   #: first day relative to full bloom (inclusive)
    end_rel_day: int     #: last day relative to full bloom (exclusive)
    t10_c: float         #: temperature killing 10 % of buds/flowers, °C
    t90_c: float         #: temperature killing 90 %, °C


@dataclass
class RiskParams:
    frost_stages: tuple[FrostStage, ...] = (   # LT10/LT90 of Miranda et al. 2005 stages D, E, F, I
        FrostStage("tight_cluster", -25, -8, -4.7, -9.9),
        FrostStage("first_white", -8, -3, -2.6, -6.6),
        FrostStage("bloom", -3, 6, -2.6, -4.0),
        FrostStage("fruit_set", 6, 30, -1.7, -3.6),
    )
    vwc_stress_onset: float = 0.21   #: θc, m³/m³ (default when the orchard's soil is not known)
    vwc_wilting: float = 0.12        #: θw, m³/m³
    wilting_to_fc: float = 0.45      #: θw / θfc of a loam (FAO-56 Table 19: 0.12 / 0.27)
    depletion_p: float = 0.5         #: FAO-56 p: stress starts when this share of the available water is used
    water_from_bloom_days: int = 20
    rot_from_bloom_days: int = -7
    heat_from_bloom_days: int = 20
    heat_threshold_c: float = 35.0
    thresholds: tuple[float, ...] = field(default=FROST_THRESHOLDS_C)


@dataclass
class RiskIndices:
    """Per-orchard indices up to the as-of day (shape (orchard,))."""

    frost_kill: np.ndarray          #: expected fraction of flowers/fruitlets killed by frost, 0-1
    frost_hours: np.ndarray         #: hours below the stage's 10 % kill temperature, h
    water_stress: np.ndarray        #: summed daily stress / fruit-growth window length, 0-1
    water_stress_days: np.ndarray   #: days with daily stress > 0.5
    rot_days: np.ndarray            #: brown-rot infection days
    heat_dh: np.ndarray             #: degree-hours above 35 °C in fruit growth, °C·h
    stage: np.ndarray               #: stage name at the as-of day (object array)
    bloom_rain_days: np.ndarray     #: days with >= 1 mm rain from bloom - 3 to bloom + 6 (pollination), days
    root_zone_stress: np.ndarray    #: FAO-56 root-zone water balance stress summed / window length, 0-1
    #: frost kill with the critical temperatures at the cold / warm end of their 95 % confidence interval
    #: (Miranda et al. 2005: buds hardier / tenderer than the table), 0-1
    frost_kill_hardy: np.ndarray
    frost_kill_tender: np.ndarray

    def as_dicts(self) -> list[dict[str, object]]:
        """One JSON-ready dict per orchard (for ``forecast_orchards.risk``)."""
        out = []
        for i in range(self.frost_kill.shape[0]):
            out.append({
                "frost_kill_frac": round(float(self.frost_kill[i]), 4),
                "frost_hours": round(float(self.frost_hours[i]), 1),
                "water_stress_index": round(float(self.water_stress[i]), 4),
                "water_stress_days": int(self.water_stress_days[i]),
                "brown_rot_infection_days": int(self.rot_days[i]),
                "heat_degree_hours": round(float(self.heat_dh[i]), 1),
                "stage": str(self.stage[i]),
                "bloom_rain_days": int(self.bloom_rain_days[i]),
                "root_zone_stress_index": round(float(self.root_zone_stress[i]), 4),
            })
        return out


def wetness_required_h(temp_c: np.ndarray) -> np.ndarray:
    """Leaf-wetness hours needed for a brown-rot infection at mean temperature ``temp_c`` (°C); inf outside 5-35 °C."""
    t = np.asarray(temp_c, dtype=np.float64)
    w = 5.0 + 0.0714 * (t - 23.5) ** 2
    return np.where((t >= 5.0) & (t <= 35.0), w, np.inf)


def kill_fraction(tmin_c: np.ndarray, t10: float, t90: float) -> np.ndarray:
    """Logistic kill fraction through (t10, 0.1) and (t90, 0.9); 0 above t10 + 2 °C or for NaN."""
    logit9 = np.log(9.0)
    b = 2.0 * logit9 / (t10 - t90)           # > 0: colder -> more kill
    z = b * (t10 - np.asarray(tmin_c, dtype=np.float64)) - logit9
    k = 1.0 / (1.0 + np.exp(-z))
    return np.where(np.isnan(tmin_c) | (tmin_c > t10 + 2.0), 0.0, k)


def _window_mask(n_d: int, start: np.ndarray, end: np.ndarray, upto: int) -> np.ndarray:
    days = np.arange(n_d)[None, :]
    return (days >= start[:, None]) & (days < end[:, None]) & (days <= upto)


#: FAO-56 Table 12, "apricots, peaches, stone fruit", no ground cover, killing frost: Kc ini / mid / end
STONE_FRUIT_KC: tuple[float, float, float] = (0.55, 0.90, 0.65)


def crop_kc(doy: np.ndarray, kc: tuple[float, float, float] = STONE_FRUIT_KC) -> np.ndarray:
    """Daily crop coefficient by calendar (FAO-56 Table 12 stone fruit): initial to March, rising
    through April, mid-season May-August, late season from September; shape (d,)."""
    month = ((np.asarray(doy) - 1) // 30.5).astype(int) + 1
    return np.where(month <= 3, kc[0], np.where(month <= 4, (kc[0] + kc[1]) / 2,
                                               np.where(month <= 8, kc[1], kc[2])))


def water_balance(et0_mm: np.ndarray, rain_mm: np.ndarray, kc_daily: np.ndarray, *, start_day: int,
                  taw_mm: float = 90.0, p: float = 0.5, end_day: int | None = None,
                  depletion0_mm: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FAO-56 single-layer root-zone water balance (Allen et al. 1998, ch. 8, eqs. 84-86), daily.

    Depletion ``Dr`` (mm) after day d: ``Dr = clip(Dr_prev - P + Ks Kc ET0, 0, TAW)`` with
    ``Ks = (TAW - Dr_prev) / ((1 - p) TAW)`` once ``Dr_prev > RAW = p TAW`` (eq. 84), else 1; rain
    above 60 mm a day is taken as run-off. Arrays have the day on the LAST axis and broadcast over
    the others (orchards, or ensemble x orchards). The bucket starts at ``depletion0_mm`` (default:
    full, after the winter recharge) on ``start_day``; days outside ``start_day <= d < end_day``
    stay 0. Returns (daily stress 1 - Ks after the day, 0-1; depletion after the day, mm).
    NaN rain counts as none, NaN ET0 as no evaporation."""
    et0 = np.nan_to_num(np.clip(np.asarray(et0_mm, dtype=np.float64), 0.0, None), nan=0.0)
    rain = np.nan_to_num(np.clip(np.asarray(rain_mm, dtype=np.float64), 0.0, 60.0), nan=0.0)
    shape = np.broadcast_shapes(et0.shape, rain.shape)
    n_d = shape[-1]
    end = n_d if end_day is None else min(int(end_day), n_d)
    raw = p * taw_mm
    dr = np.zeros(shape[:-1]) if depletion0_mm is None else np.broadcast_to(
        np.asarray(depletion0_mm, dtype=np.float64), shape[:-1]).copy()
    stress = np.zeros(shape)
    depl = np.zeros(shape)
    kc = np.asarray(kc_daily, dtype=np.float64)
    for d in range(max(0, start_day), end):
        ks = np.where(dr > raw, (taw_mm - dr) / ((1 - p) * taw_mm), 1.0)
        dr = np.clip(dr - rain[..., d] + kc[d] * et0[..., d] * ks, 0.0, taw_mm)
        depl[..., d] = dr
        stress[..., d] = np.where(dr > raw, 1.0 - (taw_mm - dr) / ((1 - p) * taw_mm), 0.0)
    return stress, depl


def projected_stress_sum(et0_mm: np.ndarray, rain_mm: np.ndarray, kc_daily: np.ndarray, depletion0_mm: np.ndarray,
                         win_lo: np.ndarray, win_hi: np.ndarray, *, first_day: int, taw_mm: float = 90.0,
                         p: float = 0.5) -> np.ndarray:
    """Stress 1 - Ks summed over the days ``max(first_day, win_lo) <= d < win_hi`` of a water balance
    (:func:`water_balance`) started on ``first_day`` from depletion ``depletion0_mm`` (mm, (n,)).

    ``et0_mm``/``rain_mm``: (members, n, days) weather scenarios whose day axis starts at
    ``first_day`` -- each member a past season's weather after the as-of day (ensemble streamflow
    prediction, Day 1985), so the result (members, n) is the distribution of the stress still to come
    given the soil water today. Memory: O(members x n); the scenarios are read day by day."""
    k_m, n, n_d = et0_mm.shape
    raw = p * taw_mm
    dr = np.broadcast_to(np.asarray(depletion0_mm, dtype=np.float64), (k_m, n)).copy()
    out = np.zeros((k_m, n))
    lo = np.asarray(win_lo)[None, :]
    hi = np.asarray(win_hi)[None, :]
    last = min(n_d, int(np.max(win_hi)) - first_day) if np.size(win_hi) else 0
    if last <= 0:
        return out
    rain_all = np.clip(np.nan_to_num(np.asarray(rain_mm[:, :, :last], dtype=np.float64), nan=0.0), 0.0, 60.0)
    et0_all = np.clip(np.nan_to_num(np.asarray(et0_mm[:, :, :last], dtype=np.float64), nan=0.0), 0.0, None)
    for j in range(last):
        d = first_day + j
        ks = np.where(dr > raw, (taw_mm - dr) / ((1 - p) * taw_mm), 1.0)
        dr = np.clip(dr - rain_all[:, :, j] + kc_daily[d] * et0_all[:, :, j] * ks, 0.0, taw_mm)
        stress = np.where(dr > raw, 1.0 - (taw_mm - dr) / ((1 - p) * taw_mm), 0.0)
        out += np.where((d >= lo) & (d < hi), stress, 0.0)
    return out


def root_zone_stress(tmin_c: np.ndarray, tmax_c: np.ndarray, rain_mm: np.ndarray, latitude_deg: np.ndarray,
                     doy: np.ndarray, *, start_day: int, taw_mm: float = 90.0, p: float = 0.5,
                     kc: tuple[float, float, float] = STONE_FRUIT_KC, et0_mm: np.ndarray | None = None
                     ) -> np.ndarray:
    """Daily root-zone water stress 1 - Ks (0-1), shape (o, d), by :func:`water_balance` with crop ET
    = Kc ET0 Ks, the stone-fruit Kc of FAO-56 Table 12, total available water ``taw_mm`` (about 0.6 m
    of roots in a loam, *assumption*) and p = 0.5 (FAO-56 Table 22 for stone fruit). ``et0_mm``: the
    reference ET (FAO-56 Penman-Monteith where measured, :func:`orchard_models.et0.reference_et0_mm`);
    without it Hargreaves from Tmin/Tmax (FAO-56 eq. 52). The bucket starts full on ``start_day``."""
    from orchard_models.et0 import hargreaves_et0_mm

    et0 = hargreaves_et0_mm(tmin_c, tmax_c, latitude_deg, doy) if et0_mm is None else et0_mm
    stress, _ = water_balance(et0, rain_mm, crop_kc(doy, kc), start_day=start_day, taw_mm=taw_mm, p=p)
    return stress


def soil_thresholds(field_capacity: np.ndarray, p: RiskParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(θc stress onset, θw wilting), m³/m³, per orchard from estimated field capacity (NaN -> defaults)."""
    p = p or RiskParams()
    fc = np.asarray(field_capacity, dtype=np.float64)
    wp = p.wilting_to_fc * fc
    onset = wp + (1.0 - p.depletion_p) * (fc - wp)
    ok = np.isfinite(fc) & (fc > 0.05)
    return np.where(ok, onset, p.vwc_stress_onset), np.where(ok, wp, p.vwc_wilting)


def estimate_field_capacity(soil_vwc_seasons: list[np.ndarray]) -> np.ndarray:
    """95th percentile of each orchard's daily 10 cm soil water over the given (orchard, day) arrays (NaN: no data)."""
    import warnings

    a = np.concatenate([np.asarray(x, dtype=np.float64) for x in soil_vwc_seasons], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(a, 95, axis=1)


def risk_indices(*, tmin_hourly: np.ndarray, frost_hours: np.ndarray, heat_dh: np.ndarray, soil_vwc: np.ndarray,
                 leaf_wet_h: np.ndarray, tmean_c: np.ndarray, bloom_day: np.ndarray, harvest_day: np.ndarray,
                 as_of_day: int, rain_mm: np.ndarray | None = None, p: RiskParams | None = None,
                 field_capacity: np.ndarray | None = None, root_stress: np.ndarray | None = None,
                 gdh_daily: np.ndarray | None = None, heat_req_gdh: float = 5000.0) -> RiskIndices:
    """Indices from daily arrays (orchard, day) using only days <= ``as_of_day``.

    ``frost_hours`` has shape (orchard, day, len(thresholds)); ``bloom_day``/``harvest_day`` are
    day indices (predicted or observed; -1 = unknown, then no window applies). With ``gdh_daily``
    (°C·h per day) and the bloom model's heat requirement, frost kill follows the seven stages of
    :mod:`orchard_models.frost` (Miranda et al. 2005); without, the coarse day-window stages.
    """
    p = p or RiskParams()
    n_o, n_d = tmin_hourly.shape
    b = np.asarray(bloom_day, dtype=np.int64)
    hv = np.asarray(harvest_day, dtype=np.int64)
    known = b >= 0
    kill_keep = np.ones(n_o)
    f_hours = np.zeros(n_o)
    thr = np.asarray(p.thresholds)
    stage = np.full(n_o, "dormant", dtype=object)
    for st in p.frost_stages:
        if gdh_daily is None:
            m = _window_mask(n_d, b + st.start_rel_day, b + st.end_rel_day, as_of_day) & known[:, None]
            k = kill_fraction(tmin_hourly, st.t10_c, st.t90_c) * m
            kill_keep *= np.prod(1.0 - k, axis=1)
            ti = int(np.argmin(np.abs(thr - st.t10_c)))
            f_hours += np.where(m, frost_hours[:, :, ti], 0.0).sum(axis=1)
        in_stage = known & (as_of_day >= b + st.start_rel_day) & (as_of_day < b + st.end_rel_day)
        stage[in_stage] = st.name
    if gdh_daily is not None:
        from orchard_models.frost import LT_CI_HALF_C, season_frost

        (kill, kill_hardy, kill_tender), _days_below, _stage, lt10 = season_frost(
            tmin_hourly, gdh_daily, b, heat_req_gdh, as_of_day, shifts_c=(0.0, -LT_CI_HALF_C, LT_CI_HALF_C))
        kill_keep = 1.0 - kill
        # hours below the day's LT10 (sensitive days up to the as-of day): the counted threshold nearest to it
        sens_days = np.nonzero(np.isfinite(lt10).any(axis=0))[0]
        f_hours = np.zeros(n_o)
        if sens_days.size:
            d0, d1 = int(sens_days[0]), int(sens_days[-1]) + 1
            lw = lt10[:, d0:d1]
            ti = np.abs(np.nan_to_num(lw, nan=99.0)[:, :, None] - thr[None, None, :]).argmin(axis=2)
            hours = np.take_along_axis(frost_hours[:, d0:d1], ti[:, :, None], axis=2)[:, :, 0]
            f_hours = np.where(np.isfinite(lw), hours, 0.0).sum(axis=1)
    after = known & (as_of_day >= b + p.frost_stages[-1].end_rel_day)
    stage[after & (as_of_day < hv)] = "fruit_growth"
    stage[after & (hv >= 0) & (as_of_day >= hv)] = "harvest"

    # water stress in fruit growth
    w_start = b + p.water_from_bloom_days
    w_len = np.maximum(hv - w_start, 1)
    m = _window_mask(n_d, w_start, hv, as_of_day) & known[:, None] & (hv >= 0)[:, None]
    theta = soil_vwc
    if field_capacity is not None:
        onset, wilt = soil_thresholds(field_capacity, p)
        onset, wilt = onset[:, None], wilt[:, None]
    else:
        onset = np.full((n_o, 1), p.vwc_stress_onset)
        wilt = np.full((n_o, 1), p.vwc_wilting)
    daily = np.clip((onset - theta) / (onset - wilt), 0.0, 1.0)
    daily = np.where(np.isnan(theta), 0.0, daily) * m
    water = daily.sum(axis=1) / w_len
    water_days = (daily > 0.5).sum(axis=1)
    root = (np.where(m, root_stress, 0.0).sum(axis=1) / w_len) if root_stress is not None else water
    m = _window_mask(n_d, b + p.rot_from_bloom_days, hv, as_of_day) & known[:, None] & (hv >= 0)[:, None]
    inf = (np.nan_to_num(leaf_wet_h, nan=0.0) >= wetness_required_h(np.nan_to_num(tmean_c, nan=-99.0))) & m
    rot = inf.sum(axis=1)

    m = _window_mask(n_d, b + p.heat_from_bloom_days, hv, as_of_day) & known[:, None] & (hv >= 0)[:, None]
    heat = np.where(m, heat_dh, 0.0).sum(axis=1)
    if rain_mm is not None:
        m = _window_mask(n_d, b - 3, b + 7, as_of_day) & known[:, None]
        bloom_rain = ((np.nan_to_num(rain_mm, nan=0.0) >= 1.0) & m).sum(axis=1)
    else:
        bloom_rain = np.zeros(n_o, dtype=np.int64)
    if gdh_daily is None:
        kill_hardy = kill_tender = 1.0 - kill_keep
    return RiskIndices(1.0 - kill_keep, f_hours, water, water_days, rot, heat, stage, bloom_rain, root,
                       kill_hardy, kill_tender)
