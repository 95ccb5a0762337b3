"""Historical seasons per orchard: daily weather, soil water, phenology and a harvest of true yields.

This is the "ground truth" the forecast models are back-tested against. It is generated from
physics and a yield process written here only (the forecast models never see this code):

Weather (per season, 1 Oct of the previous year to 30 Sep)
    Daily mean temperature from the Wushan normals (:mod:`sim_sensors.climate`) lowered by the
    lapse rate (0.6 °C per 100 m), plus a county-wide AR(1) anomaly (every orchard feels the same
    cold snap) and a smaller local AR(1) anomaly with a persistent orchard offset (slope, cold-air
    pooling). Rain occurrence is a county two-state Markov chain (Richardson 1981 style) with local
    showers; amounts are gamma-distributed with a local log-normal factor. Scenarios modify this:
    ``late_frost`` adds a three-night radiative frost around the county's mean full-bloom date,
    ``drought`` cuts April-August rain to about a third and warms the summer, ``wet`` raises
    June-September rain and rain days.
Soil water
    A two-layer bucket (0-10 cm and 10-40 cm; FAO-56 style field capacity, wilting point and
    stress coefficient Ks with p = 0.5): rain in (minus runoff on steep slopes), drainage above field
    capacity, evaporation from the top layer and transpiration by a crop coefficient that follows
    the deciduous canopy, driven by Hargreaves ET0.
Humidity and leaf wetness
    Dew point near the daily minimum (FAO-56: Tdew ≈ Tmin in humid climates), mean RH from the
    diurnal course; leaf-wet hours from rain duration and dew nights.
Phenology
    Chill hours (0-7.2 °C, Weinberger 1950) from 1 November; once the chill requirement is met,
    growing degree-days above 4.5 °C until the bloom requirement (sequential chill-forcing model);
    fruit maturity by degree-days above 7 °C after bloom, which puts harvest mid-July to mid-August
    (low orchards first).
Yield (kg per orchard per harvest week per grade)
    Full-bearing potential about 1,000-1,500 kg/mu (persistent orchard effect and tree density),
    bearing by tree age (0 before the 3rd leaf, ramp to full at 5), alternate bearing (a heavy crop
    suppresses next year's flowering), frost kill of flowers/fruitlets by stage-dependent critical
    temperatures (10 %/90 % kill, after Proebsting & Mills 1978), pollination lost to rain at bloom,
    drought stress during fruit growth (mean Ks), brown-rot (*Monilinia*) losses in warm wet harvest
    periods (infection rises with wetness hours at 15-30 °C, cf. Biggs & Northover 1988), and grades
    from a normal fruit-diameter distribution whose mean falls with fruit load and water stress.
    Off-grade fruit (< 35 mm) is not counted in ``yield_kg``.

Everything is vectorised over orchards (loops run over days, not orchards), and every random draw
comes from generators keyed by (seed, season, orchard_id), so a subset of orchards gets the same
weather and properties as in the full fleet.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from scipy.special import ndtr

from registry.grades import GRADES
from registry.metrics import GATEWAY_METRICS as METRICS
from sim_sensors import climate

SCENARIOS = ("normal", "late_frost", "drought", "wet")
SCENARIO_DEFAULT: dict[int, str] = {2021: "normal", 2022: "late_frost", 2023: "drought", 2024: "normal",
                                    2025: "wet"}
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# --- phenology parameters (assumptions calibrated to bloom in March, harvest mid-July..mid-August) ---
CHILL_START = (11, 1)           #: chill accumulation starts 1 November
CHILL_REQ_H = 450.0             #: chill hours (0-7.2 °C) needed before forcing (low-chill Chinese plum)
BLOOM_BASE_C = 4.5              #: base temperature of bloom forcing, °C
BLOOM_REQ_GDD = 150.0           #: degree-days (base 4.5 °C) from end of chill to full bloom
MATURITY_BASE_C = 7.0           #: base temperature of fruit development, °C
MATURITY_REQ_GDD = 1900.0       #: degree-days (base 7 °C) from full bloom to harvest maturity
PICK_SD_DAYS = 4.5              #: spread of picking around maturity (sd of a truncated normal), days
PICK_HALF_WINDOW_DAYS = 11      #: picking lasts at most maturity ± this many days

# --- yield parameters (assumptions) ---
FULL_BEARING_KG_PER_MU = 1400.0  #: median full-bearing yield, kg/mu
FULL_BEARING_SIGMA = 0.12        #: log-sd of the persistent orchard effect
BEARING_BY_AGE = {3: 0.25, 4: 0.65}  #: share of full bearing in the 3rd and 4th leaf; 0 before, 1 from 5
GRADE_SD_MM = 3.8               #: sd of fruit diameter within a pick, mm
BASE_DIAMETER_MM = 43.0         #: mean fruit diameter at normal load and no stress, mm
FROST_STAGES = (                #: (days from full bloom from, to, T10 °C, T90 °C)
    (-8, -1, -3.3, -6.0),       # white bud / first bloom
    (0, 6, -2.2, -4.4),         # full bloom
    (7, 20, -1.1, -3.0),        # petal fall / small green fruit
)
MAX_DAILY_RAIN_MM = 180.0       #: cap on a day's rain, mm (about the county's record daily falls)
FROST_NIGHTS_C = (-2.0, -4.0, -2.5)  #: minima of a late_frost year's three frost nights at 600 m, °C
ROT_RATE = 0.015                #: brown-rot loss rate per unit of (primary + secondary) infection index


@dataclass
class History:
    """Generated seasons (see module docstring). Arrays are (n_orchards, ...) in ``orchard_ids`` order."""

    orchard_ids: list[str]
    seasons: list[int]
    scenarios: dict[int, str]
    dates: dict[int, np.ndarray]
    tmin_c: dict[int, np.ndarray]
    tmax_c: dict[int, np.ndarray]
    rain_mm: dict[int, np.ndarray]
    soil_vwc: dict[int, np.ndarray]
    leaf_wet_h: dict[int, np.ndarray]
    rh_pct: dict[int, np.ndarray]
    bloom_date: dict[int, np.ndarray]
    week_starts: dict[int, np.ndarray]
    yield_kg: dict[int, np.ndarray]
    flower_density: dict[int, np.ndarray]
    fruit_set_per_m: dict[int, np.ndarray]
    #: extra truth for diagnostics (not part of the models' inputs): season -> name -> array
    truth: dict[int, dict[str, np.ndarray]] | None = None


def _key(orchard_id: str) -> int:
    return zlib.crc32(orchard_id.encode("utf-8"))


def _season_dates(season: int) -> np.ndarray:
    return np.arange(np.datetime64(f"{season - 1}-10-01"), np.datetime64(f"{season}-10-01"),
                     dtype="datetime64[D]")


def _doy(dates: np.ndarray) -> np.ndarray:
    years = dates.astype("datetime64[Y]")
    return (dates - years).astype(int) + 1


@dataclass
class _Orchards:
    ids: list[str]
    elev: np.ndarray
    lat: np.ndarray
    area_mu: np.ndarray
    planting_year: np.ndarray
    trees_per_mu: np.ndarray
    # persistent effects
    t_offset: np.ndarray        #: °C, slope / cold-air pooling
    fc: np.ndarray              #: field capacity, m³/m³
    potential: np.ndarray       #: full-bearing kg/mu
    alt_bearing: np.ndarray     #: alternate-bearing strength
    size_eff: np.ndarray        #: mm added to mean diameter
    observes: np.ndarray        #: probability this grower records observations


def _orchards(rows: list[dict[str, Any]], seed: int) -> _Orchards:
    n = len(rows)
    z = np.empty((n, 6))
    u = np.empty((n, 1))
    for i, r in enumerate(rows):
        g = np.random.default_rng([seed, _key(str(r["orchard_id"])), 7])
        z[i] = g.standard_normal(6)
        u[i] = g.random(1)
    area = np.array([float(r["area_mu"]) for r in rows])
    trees = np.array([float(r.get("tree_count") or 0) for r in rows])
    tpm = np.where(area > 0, trees / np.maximum(area, 1e-9), 45.0)
    tpm = np.where(tpm > 0, tpm, 45.0)
    density_eff = np.clip(tpm / 45.0, 0.6, 1.5) ** 0.3
    return _Orchards(
        ids=[str(r["orchard_id"]) for r in rows],
        elev=np.array([float(r["elevation_m"]) for r in rows]),
        lat=np.array([float(r["lat"]) for r in rows]),
        area_mu=area,
        planting_year=np.array([int(r["planting_year"]) for r in rows]),
        trees_per_mu=tpm,
        t_offset=0.4 * z[:, 0],
        fc=np.clip(0.32 + 0.02 * z[:, 1], 0.27, 0.37),
        potential=FULL_BEARING_KG_PER_MU * np.exp(FULL_BEARING_SIGMA * z[:, 2]) * density_eff,
        alt_bearing=np.clip(0.45 + 0.12 * z[:, 3], 0.15, 0.8),
        size_eff=0.9 * z[:, 4],
        observes=np.where(u[:, 0] < 0.75, 1.0, 0.0),
    )


def bearing_share(age_years: np.ndarray) -> np.ndarray:
    """Share of full bearing by tree age in years (season - planting year): 0 before 3, ramp to 1 at 5,
    gentle decline after 18."""
    age = np.asarray(age_years)
    out = np.where(age >= 5, 1.0, 0.0)
    for a, v in BEARING_BY_AGE.items():
        out = np.where(age == a, v, out)
    return np.where(age > 18, np.maximum(0.6, 1.0 - 0.02 * (age - 18)), out)


def chill_hours(tmin: np.ndarray, tmax: np.ndarray) -> np.ndarray:
    """Hours per day between 0 and 7.2 °C assuming a linear ramp between Tmin and Tmax (approx.)."""
    span = np.maximum(tmax - tmin, 0.5)
    below_hi = np.clip((7.2 - tmin) / span, 0.0, 1.0)
    below_lo = np.clip((0.0 - tmin) / span, 0.0, 1.0)
    return 24.0 * (below_hi - below_lo)


def frost_kill(tmin: np.ndarray, rel_day: np.ndarray) -> np.ndarray:
    """Fraction of flowers/fruitlets killed by a night at ``tmin`` °C, ``rel_day`` days from full bloom."""
    kill = np.zeros(np.broadcast(tmin, rel_day).shape)
    for lo, hi, t10, t90 in FROST_STAGES:
        c = (t10 + t90) / 2
        s = (t10 - t90) / (2 * np.log(9.0))
        k = 1.0 / (1.0 + np.exp((tmin - c) / s))
        kill = np.where((rel_day >= lo) & (rel_day <= hi), k, kill)
    return kill


def _first_crossing(cum: np.ndarray, req: float | np.ndarray) -> np.ndarray:
    """Index of the first day each row's cumulative sum reaches ``req`` (last day if never)."""
    req_arr = np.broadcast_to(np.asarray(req, dtype=float).reshape(-1, 1) if np.ndim(req) else req, cum.shape)
    hit = cum >= req_arr
    idx = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), idx, cum.shape[1] - 1)


def _ar1(innov: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) filter along the last axis: x_t = phi x_{t-1} + e_t (a loop over time, vectorised over rows)."""
    out = np.empty_like(innov, dtype=float)
    prev = np.zeros(innov.shape[:-1])
    for t in range(innov.shape[-1]):
        prev = phi * prev + innov[..., t]
        out[..., t] = prev
    return out


@dataclass
class _Season:
    dates: np.ndarray
    tmin: np.ndarray
    tmax: np.ndarray
    rain: np.ndarray
    vwc10: np.ndarray
    ks_root: np.ndarray
    leaf_wet_h: np.ndarray
    rh: np.ndarray
    bloom_idx: np.ndarray
    maturity_idx: np.ndarray
    draws: np.ndarray           #: per-orchard scalar normals for the yield process
    tdew: np.ndarray            #: daily dew point, °C
    vwc30: np.ndarray           #: daily mean soil moisture 10-40 cm layer, m³/m³


def _weather(o: _Orchards, season: int, scenario: str, seed: int) -> _Season:
    dates = _season_dates(season)
    nd = len(dates)
    n = len(o.ids)
    doy = _doy(dates).astype(float)
    month = (dates.astype("datetime64[M]").astype(int) % 12) + 1

    # county-wide draws (same for every subset of orchards)
    gc = np.random.default_rng([seed, season, 1])
    county_t = _ar1(gc.standard_normal(nd) * 1.45, 0.75)           # °C, stationary sd ≈ 2.2
    county_u = gc.random(nd)
    county_amt = gc.gamma(0.75, 1.0 / 0.75, nd)                     # mean 1, multiplies the climatology
    # local draws, one generator per orchard and season
    zl = np.empty((n, 3, nd))
    ul = np.empty((n, 2, nd))
    sc = np.empty((n, 8))
    for i, oid in enumerate(o.ids):
        g = np.random.default_rng([seed, season, _key(oid), 2])
        zl[i] = g.standard_normal((3, nd))
        ul[i] = g.random((2, nd))
        sc[i] = g.standard_normal(8)

    # --- rain: county Markov chain, local showers ---
    p = climate.wet_day_probability(doy)
    amt_mean = climate.mean_wet_day_rain_mm(doy)
    if scenario == "drought":
        dry = (month >= 4) & (month <= 8)
        p = np.where(dry, p * 0.6, p)
        amt_mean = np.where(dry, amt_mean * 0.55, amt_mean)
    elif scenario == "wet":
        wet = (month >= 6) & (month <= 9)
        p = np.where(wet, np.minimum(0.85, p * 1.9), p)
        amt_mean = np.where(wet, amt_mean * 1.3, amt_mean)
    r = np.full(nd, 0.35)                                           # lag-1 persistence of wet days
    if scenario == "wet":
        r = np.where((month >= 6) & (month <= 9), 0.5, r)            # long wet spells
    county_wet = np.zeros(nd, dtype=bool)
    prev = False
    for d in range(nd):
        pw = p[d] + r[d] * (1 - p[d]) if prev else p[d] * (1 - r[d])
        prev = bool(county_u[d] < pw)
        county_wet[d] = prev
    local_wet = np.where(county_wet[None, :], ul[:, 0] < 0.9, ul[:, 0] < 0.03)
    amount = np.where(county_wet[None, :], amt_mean * county_amt * np.exp(0.35 * zl[:, 1] - 0.06),
                      0.4 + 1.5 * np.abs(zl[:, 1]))
    rain = np.where(local_wet, np.round(np.clip(amount, 0.2, MAX_DAILY_RAIN_MM), 1), 0.0)
    wetday = rain >= 1.0

    # --- temperature ---
    tmean = climate.mean_temp_c(doy[None, :], o.elev[:, None]) + county_t[None, :] + o.t_offset[:, None]
    tmean = tmean + _ar1(zl[:, 0] * 0.45, 0.6)
    dtr = climate.diurnal_range_c(doy)[None, :] * np.where(wetday, 0.55, 1.0)
    if scenario == "drought":
        summer = ((month >= 5) & (month <= 8))[None, :]
        tmean = tmean + np.where(summer, 1.5, 0.0)
        dtr = dtr + np.where(summer & ~wetday, 1.5, 0.0)
    tmin = tmean - dtr / 2
    tmax = tmean + dtr / 2

    # --- phenology (before a scenario frost, to place it around the county's mean bloom) ---
    chill_start = np.datetime64(f"{season - 1}-{CHILL_START[0]:02d}-{CHILL_START[1]:02d}")
    chill0 = int((chill_start - dates[0]).astype(int))
    bloom_idx = _bloom(tmin, tmax, chill0)
    if scenario == "late_frost":
        # the frost comes around the county's typical full bloom: that of a reference orchard at the
        # median elevation (600 m) under the county weather, so it does not depend on the orchard set
        ref_mean = climate.mean_temp_c(doy, 600.0) + county_t
        ref_dtr = climate.diurnal_range_c(doy) * np.where(county_wet, 0.55, 1.0)
        ref_bloom = int(_bloom((ref_mean - ref_dtr / 2)[None, :], (ref_mean + ref_dtr / 2)[None, :], chill0)[0])
        centre = ref_bloom + int(gc.integers(-1, 3))
        # three clear, calm nights behind a cold front: radiative minima that reach FROST_NIGHTS_C at
        # 600 m, lower uphill (lapse rate) and in cold-air pools (the orchard's offset)
        for off, target in zip((-1, 0, 1), FROST_NIGHTS_C, strict=True):
            d = centre + off
            t_night = (target - climate.LAPSE_C_PER_M * (o.elev - 600.0) + o.t_offset + 0.5 * zl[:, 2, d])
            tmin[:, d] = np.minimum(tmin[:, d], t_night)
            tmax[:, d] = np.minimum(tmax[:, d], t_night + 10.0)
            rain[:, d] = 0.0
        wetday = rain >= 1.0
        bloom_idx = _bloom(tmin, tmax, chill0)
    tmax = np.maximum(tmax, tmin + 0.5)
    gdd7 = np.maximum((tmin + tmax) / 2 - MATURITY_BASE_C, 0.0)
    cum = np.cumsum(gdd7, axis=1)
    at_bloom = np.take_along_axis(cum, bloom_idx[:, None], axis=1)
    maturity_idx = _first_crossing(cum - at_bloom, MATURITY_REQ_GDD)

    # --- humidity, dew and leaf wetness ---
    dep = np.where(wetday, 0.3, 1.6) + (1.5 if scenario == "drought" else 0.0) + 0.4 * np.abs(zl[:, 2])
    tdew = tmin - dep
    ea = climate.sat_vapour_pressure_kpa(tdew)
    quarters = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 0.5, 0.0, -0.5])
    tm = (tmin + tmax) / 2
    rh = np.zeros_like(tmin)
    for q in quarters:
        rh += ea / climate.sat_vapour_pressure_kpa(tm + q * (tmax - tmin) / 2)
    rh = np.clip(100.0 * rh / len(quarters), 20.0, 100.0)
    rain_h = np.where(rain > 0, np.minimum(20.0, 1.0 + 2.0 * np.sqrt(rain)), 0.0)
    dew_h = np.clip(11.0 * (1.0 - dep / 3.2), 0.0, 11.0)
    leaf_wet_h = np.clip(rain_h + np.where(rain > 0, 2.0, 0.0) + dew_h * (1 - rain_h / 24.0), 0.0, 24.0)
    leaf_wet_h = np.round(leaf_wet_h * 4) / 4                      # sensor counts quarter hours

    # --- soil water balance, two layers ---
    ra = climate.extraterrestrial_radiation_mj(doy[None, :], o.lat[:, None])
    et0 = climate.hargreaves_et0_mm(tmin, tmax, ra)
    kc = _crop_coefficient(doy)
    fc = o.fc
    wp = fc - 0.17
    sat = fc + 0.13
    d1, d2 = 100.0, 300.0                                           # layer depths, mm
    s1 = (fc - 0.03) * d1
    s2 = (fc - 0.02) * d2
    vwc10 = np.empty_like(tmin)
    ks_root = np.empty_like(tmin)
    vwc30 = np.empty_like(tmin)
    for d in range(nd):
        rn = rain[:, d]
        runoff = 0.05 * rn + 0.5 * np.maximum(rn - 40.0, 0.0)
        s1 = s1 + rn - runoff
        over1 = np.maximum(s1 - sat * d1, 0.0)                      # saturation excess runs off
        s1 = s1 - over1
        drain1 = 0.6 * np.maximum(s1 - fc * d1, 0.0)
        s1 = s1 - drain1
        s2 = np.minimum(s2 + drain1, sat * d2)
        s2 = s2 - 0.3 * np.maximum(s2 - fc * d2, 0.0)               # deep drainage
        ks1 = np.clip((s1 / d1 - wp) / (0.5 * (fc - wp)), 0.0, 1.0)
        ks2 = np.clip((s2 / d2 - wp) / (0.5 * (fc - wp)), 0.0, 1.0)
        et = et0[:, d] * kc[d]
        evap = 0.35 * et * ks1
        transp = 0.65 * et * (0.3 * ks1 + 0.7 * ks2)
        s1 = np.maximum(s1 - evap - 0.3 * transp, (wp - 0.05) * d1)
        s2 = np.maximum(s2 - 0.7 * transp, (wp - 0.03) * d2)
        vwc10[:, d] = s1 / d1
        ks_root[:, d] = 0.3 * ks1 + 0.7 * ks2
        vwc30[:, d] = s2 / d2
    return _Season(dates, np.round(tmin, 2), np.round(tmax, 2), rain, np.round(vwc10, 4), ks_root,
                   leaf_wet_h, np.round(rh, 1), bloom_idx, maturity_idx, sc, tdew, vwc30)


def _crop_coefficient(doy: np.ndarray) -> np.ndarray:
    """Orchard crop coefficient Kc by day of year: about 0.45 leafless (Dec-Feb, sod cover), 0.95
    at full canopy (June-August), after FAO-56 table 12 for stone fruit with ground cover."""
    return 0.7 + 0.25 * np.cos(2 * np.pi * (doy - 195.0) / 365.25)


def _bloom(tmin: np.ndarray, tmax: np.ndarray, chill0: int) -> np.ndarray:
    """Full-bloom day index: chill hours from ``chill0``, then degree-days above 4.5 °C."""
    ch = chill_hours(tmin, tmax)
    ch[:, :chill0] = 0.0
    chill_done = _first_crossing(np.cumsum(ch, axis=1), CHILL_REQ_H)
    gdd = np.maximum((tmin + tmax) / 2 - BLOOM_BASE_C, 0.0)
    days = np.arange(tmin.shape[1])[None, :]
    gdd = np.where(days > chill_done[:, None], gdd, 0.0)
    return _first_crossing(np.cumsum(gdd, axis=1), BLOOM_REQ_GDD)


def generate_history(orchards: list[dict[str, Any]], seasons: list[int],
                     scenarios: dict[int, str] | None = None, seed: int = 0) -> History:
    """Generate ``seasons`` for the registry rows ``orchards`` (see module docstring).

    ``scenarios`` maps season -> 'normal' | 'late_frost' | 'drought' | 'wet'; missing seasons take
    :data:`SCENARIO_DEFAULT` or 'normal'. Seasons are generated in ascending order because alternate
    bearing carries each orchard's crop load into the next season.
    """
    seasons = sorted(int(s) for s in seasons)
    scen = {s: (scenarios or {}).get(s) or SCENARIO_DEFAULT.get(s, "normal") for s in seasons}
    for s, v in scen.items():
        if v not in SCENARIOS:
            raise ValueError(f"season {s}: unknown scenario {v!r} (expected one of {SCENARIOS})")
    o = _orchards(orchards, seed)
    h = History(orchard_ids=o.ids, seasons=seasons, scenarios=scen, dates={}, tmin_c={}, tmax_c={},
                rain_mm={}, soil_vwc={}, leaf_wet_h={}, rh_pct={}, bloom_date={}, week_starts={},
                yield_kg={},
                flower_density={}, fruit_set_per_m={}, truth={})
    # relative crop load (1 = normal) of the season before the first, drawn per orchard
    prev_load = np.array([np.exp(0.25 * np.random.default_rng([seed, _key(i), 5]).standard_normal())
                          for i in o.ids])
    for s in seasons:
        w = _weather(o, s, scen[s], seed)
        prev_load = _yield(h, o, s, w, prev_load, seed)
        h.dates[s] = w.dates
        h.tmin_c[s] = w.tmin
        h.tmax_c[s] = w.tmax
        h.rain_mm[s] = w.rain
        h.soil_vwc[s] = w.vwc10
        h.leaf_wet_h[s] = w.leaf_wet_h
        h.rh_pct[s] = w.rh
        h.bloom_date[s] = w.dates[w.bloom_idx]
    return h


def _yield(h: History, o: _Orchards, season: int, w: _Season, prev_load: np.ndarray, seed: int) -> np.ndarray:
    """Fill yields and observations of ``season`` into ``h``; return this season's relative crop load."""
    n, nd = w.tmin.shape
    z = w.draws
    age = season - o.planting_year
    bearing = bearing_share(age)
    young = age < 5

    # flowering: alternate bearing from last season's load (young trees flower normally)
    flower = np.exp(-o.alt_bearing * np.log(np.maximum(prev_load, 0.05)) * 0.9 + 0.12 * z[:, 0])
    flower = np.where(young, np.exp(0.08 * z[:, 0]), np.clip(flower, 0.25, 1.8))

    # frost kill of flowers and fruitlets around bloom
    days = np.arange(nd)[None, :]
    rel = days - w.bloom_idx[:, None]
    in_window = (rel >= -8) & (rel <= 20)
    kill = np.where(in_window, frost_kill(w.tmin, rel), 0.0)
    survive = np.prod(1.0 - kill, axis=1)

    # pollination: rainy days in the bloom window keep bees home
    bloom_win = (rel >= -2) & (rel <= 6)
    rainy_bloom = np.sum(bloom_win & (w.rain >= 2.0), axis=1)
    pollination = np.clip(1.0 - 0.05 * rainy_bloom, 0.6, 1.0)

    fruit_load = flower * survive * pollination                     # relative fruit number per tree

    # water stress during fruit growth (bloom + 30 d to maturity)
    grow = (rel >= 30) & (days <= w.maturity_idx[:, None])
    ks = np.sum(np.where(grow, w.ks_root, 0.0), axis=1) / np.maximum(np.sum(grow, axis=1), 1)
    drought_factor = 0.45 + 0.55 * ks ** 0.8

    # brown rot: infection index over the two weeks before maturity and the picking window
    tmean = (w.tmin + w.tmax) / 2
    suit = np.exp(-(((tmean - 23.0) / 6.0) ** 2))
    wet_eff = 1.0 - np.exp(-np.maximum(w.leaf_wet_h - 7.0, 0.0) / 6.0)
    rel_m = days - w.maturity_idx[:, None]
    rot_win = (rel_m >= -14) & (rel_m <= PICK_HALF_WINDOW_DAYS)
    x = np.where(rot_win, suit * wet_eff, 0.0)                     # daily infection opportunity
    inoculum = _ar1(x, 0.7)                                          # sporulating lesions carry over
    rot_index = np.sum(x[:, 1:] * inoculum[:, :-1], axis=1) + 0.3 * np.sum(x, axis=1)
    rot_loss = 1.0 - np.exp(-ROT_RATE * rot_index)                  # wet spells feed secondary infection

    # fruit number compensation: fewer fruit grow larger, so kg fall less than fruit number
    kg_factor = np.minimum(fruit_load, 1.6) ** 0.75
    total = (o.area_mu * o.potential * bearing * kg_factor * drought_factor * (1.0 - rot_loss)
             * np.exp(0.07 * z[:, 1]))
    total = np.where(bearing > 0, total, 0.0)

    # mean diameter: load and water stress shrink fruit
    mean_d = (BASE_DIAMETER_MM + o.size_eff - 3.5 * (np.minimum(fruit_load, 1.8) - 1.0)
              - 7.0 * (1.0 - ks) + 0.4 * z[:, 2])

    # picking: truncated normal around maturity; later picks slightly larger fruit
    first = max(0, int(w.maturity_idx.min()) - PICK_HALF_WINDOW_DAYS)
    last = min(nd - 1, int(w.maturity_idx.max()) + PICK_HALF_WINDOW_DAYS)
    dates = w.dates[first:last + 1]
    rel_p = np.arange(first, last + 1)[None, :] - w.maturity_idx[:, None]
    wts = np.where(np.abs(rel_p) <= PICK_HALF_WINDOW_DAYS, np.exp(-0.5 * (rel_p / PICK_SD_DAYS) ** 2), 0.0)
    wts = wts / np.maximum(wts.sum(axis=1, keepdims=True), 1e-12)
    # harvest weeks: Mondays from the week of the first pick to the week of the last
    weekday = (dates.astype("datetime64[D]").astype(int) - 4) % 7           # 1970-01-01 was a Thursday
    mondays = dates - weekday.astype("timedelta64[D]")
    week_starts = np.unique(mondays)
    week_of_day = np.searchsorted(week_starts, mondays)
    d_day = mean_d[:, None] + 0.12 * rel_p                                   # mm
    bounds = [(g.min_diameter_mm, g.max_diameter_mm) for g in GRADES]
    frac = np.stack([ndtr((hi - d_day) / GRADE_SD_MM) - ndtr((lo - d_day) / GRADE_SD_MM)
                     for lo, hi in bounds], axis=-1)                          # (n, days, grades)
    # off-grade (<35 mm) share of each day's pick is dropped; kg are of the whole pick
    daily = total[:, None, None] * wts[:, :, None] * frac
    y = np.zeros((n, len(week_starts), len(GRADES)))
    for k in range(len(week_starts)):
        y[:, k, :] = daily[:, week_of_day == k, :].sum(axis=1)
    h.week_starts[season] = week_starts
    h.yield_kg[season] = np.round(y, 1)

    # grower observations (NaN where not recorded): flower density 0-1, fruit set per metre of branch
    gob = np.random.default_rng([seed, season, 4])
    obs_fd = (o.observes > 0) & (bearing > 0) & (gob.random(n) < 0.9)
    fd = np.clip(0.55 * flower + 0.06 * z[:, 3], 0.0, 1.0)
    h.flower_density[season] = np.where(obs_fd, np.round(fd, 2), np.nan)
    obs_fs = (o.observes > 0) & (bearing > 0) & (gob.random(n) < 0.75)
    fs = 14.0 * fruit_load * np.exp(0.12 * z[:, 4])
    h.fruit_set_per_m[season] = np.where(obs_fs, np.round(fs, 1), np.nan)

    assert h.truth is not None
    h.truth[season] = {"flower_index": flower, "frost_survival": survive, "pollination": pollination,
                       "water_ks": ks, "rot_loss": rot_loss, "mean_diameter_mm": mean_d,
                       "maturity_date": w.dates[w.maturity_idx], "bearing": bearing,
                       "potential_kg": o.area_mu * o.potential * bearing}
    load = np.where(bearing > 0, fruit_load * drought_factor, 1.0)
    return load


# ---------------------------------------------------------------- writing to the database

#: metrics written to readings_daily for every orchard-day
DAILY_METRICS = ("air_temp_c", "air_rh_pct", "rain_mm", "soil_vwc_10cm", "leaf_wetness_pct")
SAMPLES_PER_DAY = 288                                                          #: 5-minute readings


def _local_midnight(d: np.datetime64) -> dt.datetime:
    day = d.astype(dt.date)
    return dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def iter_daily_rows(history: History, device_ids: dict[str, str] | None = None,
                    bucket_text: bool = False) -> Iterator[tuple[Any, ...]]:
    """Rows ``(device_id, metric, bucket, n, min, max, avg, sum)`` of ``readings_daily``, streamed.

    Each row is what an hourly-then-daily rollup of 288 five-minute readings would give:
    ``sum = avg x n``. ``bucket`` is local midnight (Asia/Shanghai). Leaf wetness is reported by the
    sensor as 0 (dry) or about 100 (wet) per sample, so ``avg = 100 x wet hours / 24`` and
    wet hours = ``24 x avg / 100``. Rain: ``sum`` is the day's total in mm.
    ``device_ids`` maps orchard_id -> device_id (default ``gw-NNNN`` for ``WS-NNNN``).
    ``bucket_text``: buckets as PostgreSQL text (for COPY) instead of datetimes.
    """
    n = SAMPLES_PER_DAY
    devs = [(device_ids or {}).get(oid) or default_device_id(oid) for oid in history.orchard_ids]
    for s in history.seasons:
        buckets: list[Any] = [_local_midnight(d) for d in history.dates[s]]
        if bucket_text:
            buckets = [b.isoformat() for b in buckets]
        tmin, tmax, rain = history.tmin_c[s], history.tmax_c[s], history.rain_mm[s]
        vwc, rh, lw = history.soil_vwc[s], history.rh_pct[s], history.leaf_wet_h[s]
        for i, dev in enumerate(devs):
            tn, tx, rn, vw, rr, ll = (a[i].tolist() for a in (tmin, tmax, rain, vwc, rh, lw))
            for j, b in enumerate(buckets):
                ta = round((tn[j] + tx[j]) / 2, 3)
                yield (dev, "air_temp_c", b, n, tn[j], tx[j], ta, round(ta * n, 2))
                r = rr[j]
                yield (dev, "air_rh_pct", b, n, max(0.0, round(r - 18.0, 1)), min(100.0, round(r + 15.0, 1)),
                       r, round(r * n, 1))
                rain_d = rn[j]
                peak = round(min(rain_d, max(rain_d / 12.0, rain_d * 0.08)), 2) if rain_d > 0 else 0.0
                yield (dev, "rain_mm", b, n, 0.0, peak, round(rain_d / n, 5), rain_d)
                v = vw[j]
                yield (dev, "soil_vwc_10cm", b, n, round(v - 0.004, 4), round(v + 0.004, 4), v,
                       round(v * n, 3))
                wet = ll[j]
                lwa = round(100.0 * wet / 24.0, 3)
                yield (dev, "leaf_wetness_pct", b, n, 0.0 if wet < 24 else 100.0, 100.0 if wet > 0 else 0.0,
                       lwa, round(lwa * n, 2))


def iter_yield_rows(history: History, source: str = "sim") -> Iterator[tuple[str, int, float, str]]:
    """Rows ``(orchard_id, season, harvested_kg, source)`` of ``yield_history`` (graded kg, all weeks)."""
    for s in history.seasons:
        tot = history.yield_kg[s].sum(axis=(1, 2))
        for oid, kg in zip(history.orchard_ids, tot.tolist(), strict=True):
            yield (oid, s, round(kg, 1), source)


def history_rows(history: History,
                 device_ids: dict[str, str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """All rows :func:`write_history` writes, as lists keyed by table (small fleets; big ones stream)."""
    return {"yield_history": list(iter_yield_rows(history)),
            "readings_daily": list(iter_daily_rows(history, device_ids))}


def default_device_id(orchard_id: str) -> str:
    """``gw-NNNN`` for ``WS-NNNN`` (the seeded registry's one gateway per orchard)."""
    return "gw-" + orchard_id.split("-", 1)[-1]


def iter_compact_readings(history: History, device_ids: dict[str, str] | None = None
                          ) -> Iterator[tuple[str, str, dt.datetime, float]]:
    """Raw ``readings`` rows ``(device_id, metric, time, value)`` whose daily rollup reproduces the
    history's daily values: Tmin at 05:00 and Tmax at 14:00 local (so min/max/avg = Tmin/Tmax/mean),
    and one noon reading of RH, VWC and leaf wetness (avg) and one 23:55 reading of the day's rain
    (sum). Used where ``readings_daily`` is a continuous aggregate that cannot be written directly."""
    devs = [(device_ids or {}).get(oid) or default_device_id(oid) for oid in history.orchard_ids]
    h5, h12, h14, h2355 = (dt.timedelta(hours=5), dt.timedelta(hours=12), dt.timedelta(hours=14),
                           dt.timedelta(hours=23, minutes=55))
    for s in history.seasons:
        mids = [_local_midnight(d) for d in history.dates[s]]
        arrays = (history.tmin_c[s], history.tmax_c[s], history.rain_mm[s], history.soil_vwc[s],
                  history.rh_pct[s], history.leaf_wet_h[s])
        for i, dev in enumerate(devs):
            tn, tx, rn, vw, rr, ll = (a[i].tolist() for a in arrays)
            for j, b in enumerate(mids):
                yield (dev, "air_temp_c", b + h5, tn[j])
                yield (dev, "air_temp_c", b + h14, tx[j])
                yield (dev, "air_rh_pct", b + h12, rr[j])
                yield (dev, "soil_vwc_10cm", b + h12, vw[j])
                yield (dev, "leaf_wetness_pct", b + h12, round(100.0 * ll[j] / 24.0, 3))
                yield (dev, "rain_mm", b + h2355, rn[j])


def _copy_daily_text(cp: Any, history: History, devmap: dict[str, str]) -> None:
    """Stream the daily rows to a COPY in text format, in chunks (much faster than ``write_row``)."""
    buf: list[str] = []
    for row in iter_daily_rows(history, devmap, bucket_text=True):
        buf.append("\t".join(map(str, row)) + "\n")          # str(float) round-trips exactly
        if len(buf) >= 20000:
            cp.write("".join(buf))
            buf.clear()
    if buf:
        cp.write("".join(buf))


def _relkind(conn: Any, name: str) -> str | None:
    row = conn.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)", (name,)).fetchone()
    return None if row is None else (row[0].decode() if isinstance(row[0], bytes) else str(row[0]))


def iter_observation_rows(history: History) -> Iterator[tuple[str, dt.date, str, float]]:
    """Grower observations as ``farm_records`` rows ``(orchard_id, observed_on, kind, value)``: the
    flower-density score two days after full bloom and the fruit-set count 30 days after (where the
    grower recorded one)."""
    for s in history.seasons:
        bloom = history.bloom_date[s]
        for i, oid in enumerate(history.orchard_ids):
            fd = float(history.flower_density[s][i])
            if fd == fd:                                             # not NaN
                yield (oid, (bloom[i] + np.timedelta64(2, "D")).astype(dt.date), "flower_density", fd)
            fs = float(history.fruit_set_per_m[s][i])
            if fs == fs:
                yield (oid, (bloom[i] + np.timedelta64(30, "D")).astype(dt.date), "fruit_set", fs)


def write_history(conn: Any, history: History, *, source: str = "sim", daily: bool = True,
                  observations: bool = False) -> None:
    """Write past yields into ``yield_history`` and daily weather into ``readings_daily``.

    Yields upsert by (orchard, season). Daily rows upsert by (device, metric, bucket) where
    ``readings_daily`` is a table (plain PostgreSQL path; ingest's refresh leaves buckets without raw
    readings alone). Where it is a TimescaleDB continuous aggregate (a view), the compact raw readings
    of :func:`iter_compact_readings` go into ``readings`` and the aggregate is refreshed over the
    history's range; that refresh cannot run in a transaction, so on that path this function commits.
    Devices come from the registry ``devices`` table (first active gateway of each orchard; ``gw-NNNN``
    if none). ``observations``: also write the growers' flower-density and fruit-set records into
    ``farm_records`` (``recorded_by = 'sim-history'``; earlier such rows of these orchards and
    seasons are replaced).
    """
    devmap: dict[str, str] = {}
    for oid, did in conn.execute(
            "SELECT DISTINCT ON (orchard_id) orchard_id, device_id FROM devices "
            "WHERE orchard_id = ANY(%s) ORDER BY orchard_id, active DESC, kind <> 'gateway', device_id",
            (history.orchard_ids,)):
        devmap[oid] = did
    kind: str | None = _relkind(conn, "readings_daily") if daily else None
    if daily and kind is None:
        raise RuntimeError("readings_daily does not exist: apply the ingest migrations first")
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS _hist_yield (orchard_id text, season int, "
                     "harvested_kg float8, source text)")
        conn.execute("TRUNCATE _hist_yield")
        with conn.cursor().copy("COPY _hist_yield FROM STDIN") as cp:
            for row in iter_yield_rows(history, source):
                cp.write_row(row)
        conn.execute("INSERT INTO yield_history (orchard_id, season, harvested_kg, source) "
                     "SELECT orchard_id, season, harvested_kg, source FROM _hist_yield "
                     "ON CONFLICT (orchard_id, season) DO UPDATE SET harvested_kg = EXCLUDED.harvested_kg, "
                     "source = EXCLUDED.source")
        conn.execute("DROP TABLE _hist_yield")
        if observations:
            first = min(history.dates[s][0] for s in history.seasons).astype(dt.date)
            last = max(history.dates[s][-1] for s in history.seasons).astype(dt.date)
            conn.execute("DELETE FROM farm_records WHERE recorded_by = 'sim-history' AND orchard_id = ANY(%s) "
                         "AND observed_on BETWEEN %s AND %s", (history.orchard_ids, first, last))
            with conn.cursor().copy("COPY farm_records (orchard_id, observed_on, kind, value, recorded_by, "
                                    "recorded_at) FROM STDIN") as cp:
                for oid, day, obs_kind, value in iter_observation_rows(history):
                    cp.write_row((oid, day, obs_kind, value, "sim-history",
                                  dt.datetime(day.year, day.month, day.day, 19, tzinfo=LOCAL_TZ)))
        if not daily:
            return
        if kind in ("r", "p"):
            devs = [devmap.get(o) or default_device_id(o) for o in history.orchard_ids]
            lo = _local_midnight(min(history.dates[s][0] for s in history.seasons))
            hi = _local_midnight(max(history.dates[s][-1] for s in history.seasons))
            clash = conn.execute("SELECT 1 FROM readings_daily WHERE device_id = ANY(%s) AND bucket BETWEEN %s "
                                 "AND %s LIMIT 1", (devs, lo, hi)).fetchone()
            if clash is None:       # nothing there yet (first seed): COPY straight in, no upsert pass
                with conn.cursor().copy("COPY readings_daily (device_id, metric, bucket, n, min, max, avg, sum) "
                                        "FROM STDIN") as cp:
                    _copy_daily_text(cp, history, devmap)
                return
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS _hist_daily (LIKE readings_daily)")
            conn.execute("TRUNCATE _hist_daily")
            with conn.cursor().copy("COPY _hist_daily (device_id, metric, bucket, n, min, max, avg, sum) "
                                    "FROM STDIN") as cp:
                _copy_daily_text(cp, history, devmap)
            conn.execute("INSERT INTO readings_daily (device_id, metric, bucket, n, min, max, avg, sum) "
                         "SELECT device_id, metric, bucket, n, min, max, avg, sum FROM _hist_daily "
                         "ON CONFLICT (device_id, metric, bucket) DO UPDATE SET n = EXCLUDED.n, "
                         "min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg, sum = EXCLUDED.sum")
            conn.execute("DROP TABLE _hist_daily")
            return
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS _hist_raw (device_id text, metric text, "
                     "time timestamptz, value float8)")
        conn.execute("TRUNCATE _hist_raw")
        with conn.cursor().copy("COPY _hist_raw FROM STDIN") as cp:
            for raw in iter_compact_readings(history, devmap):
                cp.write_row(raw)
        # raw readings are stored as wide sample rows (ingest's `samples`: a column per metric)
        cols = ", ".join(METRICS)
        pivot = ", ".join(f"max(value) FILTER (WHERE metric = '{m}')" for m in METRICS)
        fill = ", ".join(f"{m} = COALESCE(EXCLUDED.{m}, samples.{m})" for m in METRICS)
        conn.execute(f"INSERT INTO samples (device_id, time, {cols}) "
                     f"SELECT device_id, time, {pivot} FROM _hist_raw GROUP BY device_id, time "
                     f"ON CONFLICT (device_id, time) DO UPDATE SET {fill}")
        conn.execute("DROP TABLE _hist_raw")
    conn.commit()
    lo = _local_midnight(min(history.dates[s][0] for s in history.seasons))
    hi = _local_midnight(max(history.dates[s][-1] for s in history.seasons)) + dt.timedelta(days=1)
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("CALL refresh_continuous_aggregate('samples_daily', %s, %s)", (lo, hi))
    finally:
        conn.autocommit = autocommit
