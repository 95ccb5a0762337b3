"""A drought under way moves the forecast and widens its interval before the harvest shows it:
the root-zone water balance is carried forward from today's depletion over past seasons' weather
(and, for half the members, this season's anomaly so far)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from orchard_models.forecast import Forecaster
from orchard_models.risk import projected_stress_sum, water_balance
from orchard_models.synthetic import make_season, make_world
from orchard_models.weather import season_start


def test_projection_from_a_dry_bucket_counts_the_stress_still_to_come() -> None:
    n_d = 60
    et0 = np.full((2, 3, n_d), 5.0)
    rain = np.zeros((2, 3, n_d))
    rain[1] = 20.0                              # member 1: rain every day, no stress ahead
    kc = np.full(n_d + 10, 0.9)
    depl0 = np.array([0.0, 45.0, 80.0])       # full, at RAW, nearly empty (TAW 90 mm, p 0.5)
    lo = np.zeros(3, dtype=int)
    hi = np.full(3, n_d)
    s = projected_stress_sum(et0, rain, kc, depl0, lo, hi, first_day=0)
    assert np.all(s[1, :2] == 0.0) and s[1, 2] < 2.0     # rain refills the bucket within days
    assert s[0, 0] < s[0, 1] < s[0, 2] <= n_d
    # the same as the full water balance started from that depletion
    ref, _ = water_balance(et0[0], rain[0], kc[:n_d], start_day=0, depletion0_mm=depl0)
    assert s[0] == pytest.approx(ref.sum(axis=1))


@pytest.fixture(scope="module")
def dry_and_normal() -> tuple:
    world = make_world(n=150, seasons=(2020, 2021, 2022, 2023), seed=3, frost_season=None, drought_season=None)
    fcr = Forecaster(world.orchards, world.seasons)
    dry = make_season(world.orchards, 2024, np.random.default_rng(5), drought=True)
    normal = make_season(world.orchards, 2024, np.random.default_rng(5), drought=False)
    as_of = (date(2024, 7, 1) - season_start(2024)).days   # six weeks into the dry spell, weeks before harvest
    return fcr, fcr.forecast(dry.weather, as_of, dry.observations), fcr.forecast(normal.weather, as_of,
                                                                                  normal.observations)


def test_a_drought_under_way_lowers_the_county_forecast_before_harvest(dry_and_normal: tuple) -> None:
    _fcr, dry, normal = dry_and_normal
    assert dry.risk.root_zone_stress.mean() > 2 * normal.risk.root_zone_stress.mean()
    assert dry.county_kg[1] < 0.9 * normal.county_kg[1]
    assert np.median(dry.total_p50_kg / np.maximum(normal.total_p50_kg, 1e-9)) < 0.9


def test_the_county_interval_widens_while_the_drought_can_still_end_or_go_on(dry_and_normal: tuple) -> None:
    _fcr, dry, normal = dry_and_normal
    w_dry = np.log(dry.county_kg[2] / dry.county_kg[0])
    w_normal = np.log(normal.county_kg[2] / normal.county_kg[0])
    assert w_dry > 1.2 * w_normal
