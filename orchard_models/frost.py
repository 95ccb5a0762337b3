"""Spring-frost kill of flower buds, flowers and fruitlets by phenological stage, (orchard, day) arrays.

Critical temperatures: Miranda, Santesteban & Royo (2005), "Variability in the relationship between
frost temperature and injury level for some cultivated *Prunus* species", HortScience 40:357-361 --
the LT10 / LT90 (°C; 30 minutes at that temperature kill 10 % / 90 % of the buds) of peach flower
buds for the seven stages they froze, from B (BBCH 51, bud swelling) to I (BBCH 72, ovary
surrounded by the dying sepal crown), as distributed with fruclimadapt (``Tcrits_peach``). Peach
stands in for Wushan crisp plum (*Prunus salicina*), which the same paper ranks a little hardier
than peach (its order, least to most hardy: sweet cherry, almond, peach, Japanese plum,
blackthorn): using peach errs on the side of more kill (*assumption*, configurable).

Kill at one temperature: Miranda et al. fitted the share of damaged buds against the frost
temperature by linear regression, so between the two critical temperatures the kill is linear:
``k = clip(0.1 + 0.8 (LT10 - T) / (LT10 - LT90), 0, 1)`` (0 at LT10 + (LT10 - LT90)/8).

Stage dates: the heat needed between stages is that of 'Big Top' nectarine (Miranda et al. 2013,
Agric. For. Meteorol. 178-179:129-139; fruclimadapt ``Bigtop_reqs``: GDH after the chill
requirement, 786 ... 9,457 °C·h), taken *relative to full bloom* (stage F, the fifth of the seven) so
that it transfers to an orchard whose own bloom model has another heat requirement: stage i is
reached when the heat summed since chill fulfilment reaches ``HR * GDH_i / GDH_F``. On the days
between two stages the critical temperatures are interpolated linearly, as in fruclimadapt's
``spring_frost`` and the FAO DEST.xls damage estimator (Snyder & de Melo-Abreu 2005, FAO
Environment and Natural Resources Series 10). Before stage B the buds are dormant and hardy (no
kill); the last stage's values hold for ``LAST_STAGE_HOLD_DAYS`` after it (young fruitlets), none
later. Daily kills combine multiplicatively (fruclimadapt ``spring_frost``): survival = prod(1 - k).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BIGTOP_STAGE_GDH", "FULL_BLOOM_STAGE", "MIRANDA_2005_PEACH_LT", "STAGE_LABELS", "daily_critical_temps",
           "frost_kill_linear", "season_frost", "stage_days"]

#: (LT10, LT90) °C per stage, Miranda et al. (2005), peach -- fruclimadapt ``Tcrits_peach``, row order
MIRANDA_2005_PEACH_LT: tuple[tuple[float, float], ...] = (
    (-6.6, -15.4), (-8.0, -13.8), (-4.7, -9.9), (-2.6, -6.6), (-2.6, -4.0), (-2.3, -3.6), (-1.7, -3.6))
#: heat after the chill requirement to reach each stage, GDH (linear, base 4.7 °C), 'Big Top' nectarine,
#: Miranda et al. (2013) -- fruclimadapt ``Bigtop_reqs``
BIGTOP_STAGE_GDH: tuple[float, ...] = (786.0, 1385.0, 2557.0, 4016.0, 5518.0, 7348.0, 9457.0)
FULL_BLOOM_STAGE = 4    #: index of stage F (BBCH 65, full bloom): the fifth of the seven from B to I
STAGE_LABELS: tuple[str, ...] = ("B", "C", "D", "E", "F", "G", "I")  #: Baggiolini letters (B ... I, in order)
LAST_STAGE_HOLD_DAYS = 10


def frost_kill_linear(tmin_c: np.ndarray, lt10_c: np.ndarray | float, lt90_c: np.ndarray | float) -> np.ndarray:
    """Killed share of buds at minimum temperature ``tmin_c`` (°C): linear through (LT10, 0.1) and
    (LT90, 0.9), clipped to 0-1 (Miranda et al. 2005's linear damage-temperature relation); NaN -> 0."""
    t = np.asarray(tmin_c, dtype=np.float64)
    lt10 = np.asarray(lt10_c, dtype=np.float64)
    lt90 = np.asarray(lt90_c, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = 0.1 + 0.8 * (lt10 - t) / (lt10 - lt90)
    return np.where(np.isfinite(k), np.clip(k, 0.0, 1.0), 0.0)


def stage_days(gdh_daily: np.ndarray, bloom_day: np.ndarray, heat_req_gdh: float) -> np.ndarray:
    """Day index at which each orchard reaches each of the seven stages, shape (o, 7), float (-1: unknown).

    The heat between a stage and full bloom is ``heat_req_gdh * (GDH_i / GDH_F - 1)`` (negative before
    bloom), counted on the orchard's daily heat ``gdh_daily`` (°C·h, (o, d)) from its bloom day."""
    g = np.nan_to_num(np.asarray(gdh_daily, dtype=np.float64), nan=0.0)
    cum = np.cumsum(g, axis=1)
    n_o, n_d = g.shape
    b = np.asarray(bloom_day, dtype=np.int64)
    known = b >= 0
    rows = np.arange(n_o)
    at_bloom = cum[rows, np.clip(b, 0, n_d - 1)]
    rel = np.asarray(BIGTOP_STAGE_GDH) / BIGTOP_STAGE_GDH[FULL_BLOOM_STAGE] - 1.0
    out = np.full((n_o, len(rel)), -1.0)
    for i, r in enumerate(rel):
        if i == FULL_BLOOM_STAGE:
            out[:, i] = np.where(known, b, -1)
            continue
        target = at_bloom + r * heat_req_gdh
        # first day whose cumulative heat reaches the target (searchsorted row by row, vectorised)
        hit = (cum < target[:, None]).sum(axis=1)
        out[:, i] = np.where(known & (hit < n_d), hit, -1)
    # a pre-bloom target before the record starts gives day 0 (the stage was reached by then at the latest)
    return out


def daily_critical_temps(n_days: int, stages: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(LT10, LT90, sensitive) per (orchard, day): stage values linearly interpolated between the
    orchards' stage days; NaN / False before stage B, after the hold period, or without a bloom date."""
    lo, lt10_w, lt90_w = _critical_window(n_days, stages)
    n_o = stages.shape[0]
    lt10 = np.full((n_o, n_days), np.nan)
    lt90 = np.full((n_o, n_days), np.nan)
    lt10[:, lo:lo + lt10_w.shape[1]] = lt10_w
    lt90[:, lo:lo + lt90_w.shape[1]] = lt90_w
    return lt10, lt90, np.isfinite(lt10)


def _critical_window(n_days: int, stages: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The critical temperatures on the days any orchard is sensitive only: (first day, LT10, LT90)
    of shape (orchard, window days) -- a few weeks instead of the season (speed)."""
    n_o = stages.shape[0]
    lt = np.asarray(MIRANDA_2005_PEACH_LT)
    s = stages
    valid = s[:, 0] >= 0
    if not valid.any():
        return 0, np.full((n_o, 0), np.nan), np.full((n_o, 0), np.nan)
    lo = int(max(0, np.min(s[valid, 0])))
    last_ok = s[:, -1] >= 0
    hi = int(min(n_days, (np.max(s[last_ok, -1]) if last_ok.any() else np.max(s[valid])) + LAST_STAGE_HOLD_DAYS))
    days = np.arange(lo, max(hi, lo), dtype=np.float64)[None, :]
    lt10 = np.full((n_o, days.shape[1]), np.nan)
    lt90 = np.full((n_o, days.shape[1]), np.nan)
    for i in range(len(lt) - 1):
        a, b = s[:, i:i + 1], s[:, i + 1:i + 2]
        m = (a >= 0) & (b >= 0) & (days >= a) & (days < b)
        f = (days - a) / np.maximum(b - a, 1e-9)
        lt10 = np.where(m, lt[i, 0] + f * (lt[i + 1, 0] - lt[i, 0]), lt10)
        lt90 = np.where(m, lt[i, 1] + f * (lt[i + 1, 1] - lt[i, 1]), lt90)
    last = s[:, -1:]
    m = (last >= 0) & (days >= last) & (days < last + LAST_STAGE_HOLD_DAYS)
    lt10 = np.where(m, lt[-1, 0], lt10)
    lt90 = np.where(m, lt[-1, 1], lt90)
    return lo, lt10, lt90


#: half-width of the 95 % confidence interval of LT10 (°C): Miranda et al. (2005) report intervals "as
#: high as about 3 °C" broad for LT10 (about 6 °C for LT90) -- the published critical temperatures'
#: own uncertainty, carried into the forecast interval
LT_CI_HALF_C = 1.5


def season_frost(tmin_hourly_c: np.ndarray, gdh_daily: np.ndarray, bloom_day: np.ndarray, heat_req_gdh: float,
                 as_of_day: int, *, shifts_c: tuple[float, ...] = (0.0,)
                 ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Per orchard, from each day's lowest hourly temperature (°C) up to ``as_of_day``: (season kill
    fraction 0-1 for each of ``shifts_c`` -- critical temperatures moved by that much, °C, negative =
    hardier buds; days below the day's LT10; stage index at ``as_of_day`` (-1 dormant, 0-6, 7 = past
    the table); the (orchard, day) LT10 with NaN where not sensitive)."""
    tmin = np.asarray(tmin_hourly_c, dtype=np.float64)
    n_o, n_d = tmin.shape
    st = stage_days(gdh_daily, bloom_day, heat_req_gdh)
    lo, lt10, lt90 = _critical_window(n_d, st)
    w = lt10.shape[1]
    t = tmin[:, lo:lo + w]
    upto = (np.arange(lo, lo + w) <= as_of_day)[None, :]
    sens = np.isfinite(lt10) & upto
    kills = []
    for sh in shifts_c:
        k = np.where(sens, frost_kill_linear(t, lt10 + sh, lt90 + sh), 0.0)
        kills.append(1.0 - np.prod(1.0 - k, axis=1))
    with np.errstate(invalid="ignore"):
        below = (sens & (t <= lt10)).sum(axis=1)
    reached = (st >= 0) & (st <= as_of_day)
    idx = np.where(reached.any(axis=1), reached.sum(axis=1) - 1, -1)
    past = (st[:, -1] >= 0) & (as_of_day >= st[:, -1] + LAST_STAGE_HOLD_DAYS)
    full = np.full((n_o, n_d), np.nan)
    full[:, lo:lo + w] = np.where(sens, lt10, np.nan)
    return kills, below.astype(np.float64), np.where(past, len(MIRANDA_2005_PEACH_LT), idx), full
