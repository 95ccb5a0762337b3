"""Five-minute sensor physics: diurnal and seasonal cycles, lapse rate, rain, leaf wetness, soil."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from registry.metrics import GATEWAY_METRICS as METRICS
from registry.metrics import HEALTH_METRICS
from registry.seed import SeedParams, generate
from sim_sensors.faults import DayFaults, FaultConfig
from sim_sensors.fleet import make_fleet
from sim_sensors.history import generate_history
from sim_sensors.sensors import DayModel, local_midnight_epoch
from sim_sensors.weather import SeasonCache


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    reg = generate(SeedParams())
    orch = {o["orchard_id"]: o for o in reg.orchards}
    return [dict(d, elevation_m=orch[d["orchard_id"]]["elevation_m"], lat=orch[d["orchard_id"]]["lat"],
                 lon=orch[d["orchard_id"]]["lon"]) for d in reg.devices[:200]]


@pytest.fixture(scope="module")
def cache(rows: list[dict[str, Any]]) -> SeasonCache:
    return SeasonCache(make_fleet(rows, seed=9))


def _day(cache: SeasonCache, day: dt.date) -> dict[str, np.ndarray]:
    return DayModel(cache, day).block(0, 288).values


def _hours(local_from: float, local_to: float) -> slice:
    return slice(int(local_from * 12), int(local_to * 12))


def test_ranges_and_local_day(cache: SeasonCache) -> None:
    m = DayModel(cache, dt.date(2026, 5, 10))
    b = m.block(0, 288)
    assert b.times[0] == local_midnight_epoch(dt.date(2026, 5, 10))
    assert (np.diff(b.times) == 300).all()
    for k, v in b.values.items():
        spec = METRICS.get(k) or HEALTH_METRICS[k]
        assert v.shape == (200, 288)
        assert np.isfinite(v).all() and (v >= spec.lo).all() and (v <= spec.hi).all(), k
    # blocks compose: the second half computed alone equals the day's second half
    half = m.block(144, 288)
    assert np.allclose(half.values["air_temp_c"], b.values["air_temp_c"][:, 144:], atol=1.0)
    assert np.array_equal(half.values["rain_mm"], b.values["rain_mm"][:, 144:])


def test_diurnal_cycle(cache: SeasonCache) -> None:
    v = _day(cache, dt.date(2026, 4, 18))
    air = v["air_temp_c"]
    afternoon = air[:, _hours(14, 16)].mean(axis=1)
    dawn = air[:, _hours(5, 7)].mean(axis=1)
    assert (afternoon > dawn).mean() > 0.95
    assert 4.0 < np.median(afternoon - dawn) < 14.0
    solar = v["solar_wm2"]
    assert (solar[:, _hours(0, 5)] == 0).all() and (solar[:, _hours(21, 24)] == 0).all()
    assert (solar[:, _hours(12, 13)].mean(axis=1) > 50).all()
    assert solar.max() < 1400, "clear sky plus cloud-edge enhancement, within the sensor range"
    rh = v["air_rh_pct"]
    assert (rh[:, _hours(4, 6)].mean(axis=1) > rh[:, _hours(14, 16)].mean(axis=1)).mean() > 0.95
    # soil temperature: damped and lagged
    amp = lambda x: x.max(axis=1) - x.min(axis=1)  # noqa: E731
    assert (amp(v["soil_temp_10cm_c"]) < amp(air)).all()
    assert (amp(v["soil_temp_30cm_c"]) < amp(v["soil_temp_10cm_c"])).all()
    peak_air = np.argmax(air[:, _hours(8, 24)], axis=1)
    peak_soil = np.argmax(v["soil_temp_10cm_c"][:, _hours(8, 24)], axis=1)
    assert np.median(peak_soil - peak_air) > 12, "10 cm soil peaks hours after the air"


def test_seasonal_cycle_and_lapse_rate(cache: SeasonCache) -> None:
    jan = _day(cache, dt.date(2026, 1, 15))["air_temp_c"].mean(axis=1)
    jul = _day(cache, dt.date(2026, 7, 15))["air_temp_c"].mean(axis=1)
    assert np.median(jul - jan) > 15
    elev = cache.fleet.elevation_m
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=k) for k in range(0, 120, 10)]
    means = np.mean([_day(cache, d)["air_temp_c"].mean(axis=1) for d in days], axis=0)
    slope = np.polyfit(elev, means, 1)[0]
    assert -0.008 < slope < -0.004, f"lapse {slope * 100:.2f} °C/100 m"


def test_same_climate_as_history(rows: list[dict[str, Any]], cache: SeasonCache) -> None:
    fleet = cache.fleet
    h = generate_history(fleet.orchard_rows(), [2026], seed=9)
    day = dt.date(2026, 6, 20)
    j = int((np.datetime64(day) - h.dates[2026][0]).astype(int))
    v = _day(cache, day)
    assert np.allclose(v["air_temp_c"].min(axis=1), h.tmin_c[2026][:, j], atol=1.5)
    assert np.allclose(v["air_temp_c"].max(axis=1), h.tmax_c[2026][:, j], atol=1.5)
    assert np.allclose(v["rain_mm"].sum(axis=1), h.rain_mm[2026][:, j], atol=0.2 + 1e-9)


def test_rain_wets_leaves_and_air_and_soil(cache: SeasonCache) -> None:
    days = [dt.date(2026, 6, 1) + dt.timedelta(days=k) for k in range(20)]
    rained = 0
    for d in days:
        m = DayModel(cache, d)
        v = m.block(0, 288).values
        r = v["rain_mm"]
        assert np.allclose(r.sum(axis=1), m.d.rain_mm, atol=0.2 + 1e-9), "tipping bucket sums to the day"
        assert np.allclose(np.round(r / 0.2) * 0.2, r), "0.2 mm tips"
        wet = r > 0
        rained += int(wet.sum())
        if wet.any():
            assert (v["leaf_wetness_pct"][wet] >= 99).all()
            assert (v["air_rh_pct"][wet] >= 93).all()
            assert (v["solar_wm2"][wet] <= np.percentile(v["solar_wm2"], 99)).all()
            heavy = m.d.rain_mm >= 10
            if heavy.any():
                v10 = v["soil_vwc_10cm"][heavy]
                assert (v10[:, -1] > m.d.vwc10_prev[heavy] - 0.01).all()
    assert rained > 100


def test_soil_dries_without_rain(cache: SeasonCache) -> None:
    days = [dt.date(2026, 8, 1) + dt.timedelta(days=k) for k in range(25)]
    daily = []
    rain = []
    for d in days:
        m = DayModel(cache, d)
        v = m.block(0, 288).values
        daily.append(v["soil_vwc_10cm"].mean(axis=1))
        rain.append(m.d.rain_mm)
    vwc = np.array(daily).T
    rn = np.array(rain).T
    checked = 0
    for i in range(vwc.shape[0]):
        for a in range(1, 20):
            if (rn[i, a - 1:a + 5] == 0).all():
                assert vwc[i, a + 4] < vwc[i, a], "dry days dry the soil"
                checked += 1
                break
    assert checked > 10


def test_stuck_sensor_repeats_a_value(rows: list[dict[str, Any]], cache: SeasonCache) -> None:
    fleet = cache.fleet
    m = DayModel(cache, dt.date(2026, 6, 3))
    plan = DayFaults(fleet, 1, 288, 300, FaultConfig(stuck_prob=1.0, stuck_hours=(3.0, 3.0)), seed=1)
    first = plan.apply(m.block(0, 144), 0)
    second = plan.apply(m.block(144, 288), 144)
    vals = np.concatenate([first.values, second.values], axis=1)
    i, c = 0, 0          # gateway 0, air temperature
    a = int(plan.stuck_a[i, c])
    run = vals[i, a:min(288, a + 36), c]
    assert (run == run[0]).all() and len(run) > 1
