"""Week x grade cells carry their own uncertainty: harvest timing and grade shares widen the cell
intervals beyond the orchard total's, the P50 cells still sum to the P50 total."""

from __future__ import annotations

from datetime import date

import numpy as np

from orchard_models.forecast import Forecaster
from orchard_models.synthetic import make_season, make_world
from orchard_models.weather import season_start


def test_cells_are_ordered_sum_to_the_total_and_are_wider_than_the_total() -> None:
    world = make_world(n=120, seasons=(2020, 2021, 2022, 2023), seed=2, frost_season=None, drought_season=None)
    fcr = Forecaster(world.orchards, world.seasons)
    target = make_season(world.orchards, 2024, np.random.default_rng(8))
    fc = fcr.forecast(target.weather, (date(2024, 6, 15) - season_start(2024)).days, target.observations)
    p10, p50, p90 = fc.cells()
    assert np.all(p10 <= p50 + 1e-9) and np.all(p50 <= p90 + 1e-9) and np.all(p10 >= 0)
    assert np.allclose(p50.sum(axis=(1, 2)), fc.total_p50_kg)
    big = p50 > 0.05 * fc.total_p50_kg[:, None, None]
    rel_cell = np.log(p90[big] / p10[big])
    rel_total = np.log(np.broadcast_to((fc.total_p90_kg / fc.total_p10_kg)[:, None, None], p50.shape)[big])
    assert np.all(rel_cell >= rel_total - 1e-9)
    assert np.median(rel_cell - rel_total) > 0.05, "timing and grade uncertainty widen the cells"
    # a week the centroid's own P10-P90 reaches gets a P90 even where the P50 curve is thin
    edge = (fc.week_share < 0.02) & (fc.week_share_max > 0.1)
    if edge.any():
        assert np.all(p90.sum(axis=2)[edge] >= 0.1 * fc.total_p50_kg[np.nonzero(edge)[0]] * 0.999)
