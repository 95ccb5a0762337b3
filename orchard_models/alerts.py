"""Turn the season's recent sensor data into grower alerts (frost, water stress, brown rot, heat).

Conditions look at the last days up to the as-of day (the same thresholds as :mod:`orchard_models.risk`):

* frost: lowest daily temperature of the last 3 days at or below the current stage's 10 % kill
  temperature + 1.5 °C while buds, flowers or fruitlets are sensitive -- warning; at or below the
  10 % kill temperature -- critical;
* water_stress: mean soil water (10 cm) of the last 5 days below the stress onset θc during fruit
  growth -- warning; below (θc + θw) / 2 -- critical (θc, θw per orchard, :func:`orchard_models.risk.soil_thresholds`);
* brown_rot: infection days (wetness hours >= the temperature's requirement) in the last 3 days
  from bloom - 7 d to harvest -- warning for one, critical for two or more;
* heat: daily maximum >= 35 °C in the last 3 days during fruit growth -- warning; >= 38 °C critical.

One open alert per orchard, kind and season (``dedupe_key = kind:orchard:season``): raising again
refreshes it; when the condition has passed it is resolved.
"""

from __future__ import annotations

import numpy as np

from orchard_models.risk import RiskParams, soil_thresholds, wetness_required_h
from registry.alerts import Alert

__all__ = ["ALERT_KINDS", "build_alerts"]

ALERT_KINDS = ("frost", "water_stress", "brown_rot", "heat")

_STAGE_ZH = {"tight_cluster": "花蕾期", "first_white": "露白期", "bloom": "盛花期", "fruit_set": "坐果期"}
_STAGE_EN = {"tight_cluster": "tight cluster", "first_white": "first white", "bloom": "full bloom",
             "fruit_set": "fruit set"}


def _nanmin(a: np.ndarray) -> np.ndarray:
    filled = np.where(np.isnan(a), np.inf, a)
    m = filled.min(axis=1)
    return np.where(np.isinf(m), np.nan, m)


def _nanmax(a: np.ndarray) -> np.ndarray:
    filled = np.where(np.isnan(a), -np.inf, a)
    m = filled.max(axis=1)
    return np.where(np.isinf(m), np.nan, m)


def build_alerts(*, orchard_ids: list[str], season: int, as_of_day: int, bloom_day: np.ndarray,
                 harvest_end_day: np.ndarray, tmin_c: np.ndarray, tmax_c: np.ndarray, soil_vwc: np.ndarray,
                 leaf_wet_h: np.ndarray, p: RiskParams | None = None,
                 field_capacity: np.ndarray | None = None) -> list[Alert]:
    """Alerts for conditions in the days up to ``as_of_day`` (arrays (orchard, day) of the season)."""
    p = p or RiskParams()
    out: list[Alert] = []
    onset, wilt = soil_thresholds(np.full(len(orchard_ids), np.nan) if field_capacity is None else field_capacity, p)
    if as_of_day < 0:
        return out
    d1 = as_of_day + 1
    d3 = max(0, d1 - 3)
    d5 = max(0, d1 - 5)
    b = np.asarray(bloom_day)
    hv = np.asarray(harvest_end_day)
    rel = as_of_day - b
    known = b >= 0
    tmin3 = _nanmin(tmin_c[:, d3:d1])
    tmax3 = _nanmax(tmax_c[:, d3:d1])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        soil5 = np.nanmean(soil_vwc[:, d5:d1], axis=1)
    tmean = (tmin_c[:, d3:d1] + tmax_c[:, d3:d1]) / 2.0
    infect = (np.nan_to_num(leaf_wet_h[:, d3:d1], nan=0.0)
              >= wetness_required_h(np.nan_to_num(tmean, nan=-99.0))).sum(axis=1)
    growth = known & (rel >= p.water_from_bloom_days) & (hv >= 0) & (as_of_day <= hv)
    rot_window = known & (rel >= p.rot_from_bloom_days) & (hv >= 0) & (as_of_day <= hv)
    date_key = f"{season}"
    for i, oid in enumerate(orchard_ids):
        if known[i]:
            for st in p.frost_stages:
                if st.start_rel_day <= rel[i] < st.end_rel_day and np.isfinite(tmin3[i]) and tmin3[i] <= st.t10_c + 1.5:
                    crit = tmin3[i] <= st.t10_c
                    t = round(float(tmin3[i]), 1)
                    out.append(Alert(
                        dedupe_key=f"frost:{oid}:{date_key}", kind="frost", severity="critical" if crit else "warning",
                        orchard_id=oid,
                        title_zh=f"霜冻{'危害' if crit else '风险'}：{_STAGE_ZH[st.name]}最低气温 {t}°C",
                        title_en=f"Frost {'damage' if crit else 'risk'}: {t} °C at {_STAGE_EN[st.name]}",
                        advice_zh=("低温来临前果园灌水、熏烟或喷水防霜，幼园可覆盖；霜后检查花器和幼果受冻情况，"
                                   "受冻较重时加强人工授粉、喷施叶面肥促坐果，并相应调整产量预期。"),
                        advice_en=("Before a cold night irrigate, smoke or sprinkle the orchard and cover young trees; "
                                   "afterwards check flowers and fruitlets for damage, hand-pollinate and feed foliar "
                                   "nutrients where damage is heavy, and lower the crop estimate."),
                        detail={"season": season, "stage": st.name, "min_temp_c": t, "t10_c": st.t10_c,
                                "t90_c": st.t90_c, "as_of_day": as_of_day}))
                    break
        if growth[i] and np.isfinite(soil5[i]) and soil5[i] < onset[i]:
            crit = soil5[i] < (onset[i] + wilt[i]) / 2.0
            v = round(float(soil5[i]), 3)
            out.append(Alert(
                dedupe_key=f"water_stress:{oid}:{date_key}", kind="water_stress",
                severity="critical" if crit else "warning", orchard_id=oid,
                title_zh=f"土壤干旱{'严重' if crit else ''}：10厘米土壤含水量 {v} m³/m³",
                title_en=f"{'Severe ' if crit else ''}soil drought: {v} m³/m³ at 10 cm",
                advice_zh=("果实膨大期缺水会减产、果个变小：尽快灌溉（滴灌或树盘穴灌，少量多次），"
                           "树盘覆草保墒；久旱后勿一次大水漫灌，以防裂果。"),
                advice_en=("Water shortage during fruit growth cuts yield and fruit size: irrigate soon (drip or "
                           "basin, little and often) and mulch the tree rows; after a long drought avoid one heavy "
                           "flood irrigation, which splits fruit."),
                detail={"season": season, "soil_vwc_5d": v, "onset": round(float(onset[i]), 3),
                        "as_of_day": as_of_day}))
        if rot_window[i] and infect[i] >= 1:
            crit = infect[i] >= 2
            out.append(Alert(
                dedupe_key=f"brown_rot:{oid}:{date_key}", kind="brown_rot", severity="critical" if crit else "warning",
                orchard_id=oid,
                title_zh=f"褐腐病侵染{'高' if crit else ''}风险：近3天 {int(infect[i])} 个侵染日",
                title_en=(f"{'High ' if crit else ''}brown rot infection risk: "
                          f"{int(infect[i])} infection day(s) in 3 days"),
                advice_zh=("雨后叶面湿润时间长、温度适宜，褐腐病易侵染：天晴后及时喷施登记用于李褐腐病的杀菌剂，"
                           "遵守标签用量和采前安全间隔期；摘除病果、僵果，疏枝通风。"),
                advice_en=("Long leaf wetness at mild temperature favours brown rot: spray a fungicide registered for "
                           "plum brown rot when the weather clears, respecting label rate and pre-harvest interval; "
                           "remove rotten and mummified fruit and open the canopy."),
                detail={"season": season, "infection_days_3d": int(infect[i]), "as_of_day": as_of_day}))
        if growth[i] and np.isfinite(tmax3[i]) and tmax3[i] >= 35.0:
            crit = tmax3[i] >= 38.0
            t = round(float(tmax3[i]), 1)
            out.append(Alert(
                dedupe_key=f"heat:{oid}:{date_key}", kind="heat", severity="critical" if crit else "warning",
                orchard_id=oid,
                title_zh=f"高温{'热害' if crit else '预警'}：最高气温 {t}°C",
                title_en=f"Heat {'stress' if crit else 'warning'}: maximum {t} °C",
                advice_zh=("高温易致果实日灼、落果：清晨或傍晚灌溉降温，果园生草或覆盖，避免中午喷药和作业；"
                           "已成熟的果实尽早在清晨采收并及时预冷入库。"),
                advice_en=("Heat causes sunburn and fruit drop: irrigate early morning or evening, keep ground cover, "
                           "avoid spraying and field work at midday; pick ripe fruit early in the morning and "
                           "pre-cool it promptly."),
                detail={"season": season, "max_temp_c": t, "as_of_day": as_of_day}))
    return out
