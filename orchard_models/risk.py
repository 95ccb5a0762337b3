"""Risk indices per orchard from the season's sensor data up to the as-of day (numpy, (orchard, day)).

* Frost at bloom: for each day in a sensitive stage (days relative to full bloom) the kill fraction
  of buds/flowers/fruitlets from the day's lowest hourly temperature, by a logistic curve through
  the stage's 10 % and 90 % kill temperatures; season kill = 1 - prod(1 - daily kill). Critical
  temperatures are those of the WSU table for prune/plum after Proebsting & Mills (1978, J. Amer.
  Soc. Hort. Sci. 103:192-198), rounded (*assumption* for Wushan crisp plum, configurable).
* Water stress (fruit growth, bloom + 20 d to harvest): daily stress ``clip((θc - θ) / (θc - θw), 0, 1)``
  from the mean 10 cm soil water content θ (m³/m³), with θc = 0.21 (onset, about half of the plant
  available water of a loam depleted, FAO-56 p = 0.5, Allen et al. 1998) and θw = 0.12 (wilting
  point of a loam); the index is the stress summed over observed days divided by the window length.
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
    frost_stages: tuple[FrostStage, ...] = (
        FrostStage("tight_cluster", -25, -8, -5.0, -11.0),
        FrostStage("first_white", -8, -3, -3.5, -8.0),
        FrostStage("bloom", -3, 6, -2.5, -5.5),
        FrostStage("fruit_set", 6, 30, -1.5, -3.5),
    )
    vwc_stress_onset: float = 0.21   #: θc, m³/m³
    vwc_wilting: float = 0.12        #: θw, m³/m³
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


def risk_indices(*, tmin_hourly: np.ndarray, frost_hours: np.ndarray, heat_dh: np.ndarray, soil_vwc: np.ndarray,
                 leaf_wet_h: np.ndarray, tmean_c: np.ndarray, bloom_day: np.ndarray, harvest_day: np.ndarray,
                 as_of_day: int, p: RiskParams | None = None) -> RiskIndices:
    """Indices from daily arrays (orchard, day) using only days <= ``as_of_day``.

    ``frost_hours`` has shape (orchard, day, len(thresholds)); ``bloom_day``/``harvest_day`` are
    day indices (predicted or observed; -1 = unknown, then no window applies).
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
        m = _window_mask(n_d, b + st.start_rel_day, b + st.end_rel_day, as_of_day) & known[:, None]
        k = kill_fraction(tmin_hourly, st.t10_c, st.t90_c) * m
        kill_keep *= np.prod(1.0 - k, axis=1)
        ti = int(np.argmin(np.abs(thr - st.t10_c)))
        f_hours += np.where(m, frost_hours[:, :, ti], 0.0).sum(axis=1)
        in_stage = known & (as_of_day >= b + st.start_rel_day) & (as_of_day < b + st.end_rel_day)
        stage[in_stage] = st.name
    after = known & (as_of_day >= b + p.frost_stages[-1].end_rel_day)
    stage[after & (as_of_day < hv)] = "fruit_growth"
    stage[after & (hv >= 0) & (as_of_day >= hv)] = "harvest"

    # water stress in fruit growth
    w_start = b + p.water_from_bloom_days
    w_len = np.maximum(hv - w_start, 1)
    m = _window_mask(n_d, w_start, hv, as_of_day) & known[:, None] & (hv >= 0)[:, None]
    theta = soil_vwc
    daily = np.clip((p.vwc_stress_onset - theta) / (p.vwc_stress_onset - p.vwc_wilting), 0.0, 1.0)
    daily = np.where(np.isnan(theta), 0.0, daily) * m
    water = daily.sum(axis=1) / w_len
    water_days = (daily > 0.5).sum(axis=1)

    m = _window_mask(n_d, b + p.rot_from_bloom_days, hv, as_of_day) & known[:, None] & (hv >= 0)[:, None]
    inf = (np.nan_to_num(leaf_wet_h, nan=0.0) >= wetness_required_h(np.nan_to_num(tmean_c, nan=-99.0))) & m
    rot = inf.sum(axis=1)

    m = _window_mask(n_d, b + p.heat_from_bloom_days, hv, as_of_day) & known[:, None] & (hv >= 0)[:, None]
    heat = np.where(m, heat_dh, 0.0).sum(axis=1)
    return RiskIndices(1.0 - kill_keep, f_hours, water, water_days, rot, heat, stage)
