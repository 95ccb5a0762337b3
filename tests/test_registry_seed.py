"""The seeded registry has the real deployment's shape and is deterministic."""

from __future__ import annotations

import numpy as np
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.seed import SeedParams, exact_areas, generate
from registry.townships import TOWNSHIPS


def test_counts_area_and_elevation() -> None:
    d = generate(SeedParams(seed=7))
    assert len(d.orchards) == 1546
    assert round(sum(o["area_mu"] for o in d.orchards) * 100) == 176_000 * 100
    assert all(400 <= o["elevation_m"] <= 800 for o in d.orchards)
    assert {o["township_id"] for o in d.orchards} <= {t[0] for t in TOWNSHIPS}
    assert len({dv["device_id"] for dv in d.devices}) == 1546
    assert len({dv["dev_eui"] for dv in d.devices}) == 1546


def test_size_distribution_is_family_orchard_heavy() -> None:
    areas = np.array([o["area_mu"] for o in generate(SeedParams(seed=7)).orchards])
    assert abs(areas.mean() - 176_000 / 1546) < 0.01
    assert np.median(areas) < 0.75 * areas.mean(), "right-skewed: median well below the mean"
    assert (areas < 50).mean() > 0.35, "many family orchards of a few dozen mu"
    assert areas.max() > 500, "a few large cooperative bases"


def test_same_seed_same_registry_other_seed_other_registry() -> None:
    a, b, c = generate(SeedParams(seed=1)), generate(SeedParams(seed=1)), generate(SeedParams(seed=2))
    assert a.orchards == b.orchards and a.devices == b.devices and a.households == b.households
    assert a.orchards != c.orchards


def test_poverty_households_present_and_orchards_have_trees() -> None:
    d = generate()
    share = np.mean([h["poverty_alleviated"] for h in d.households])
    assert 0.15 < share < 0.30
    assert all(o["tree_count"] > 0 for o in d.orchards)
    assert all(o["planting_year"] <= SeedParams().reference_year - 1 for o in d.orchards)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), total=st.integers(3000, 1_000_000), seed=st.integers(0, 2**32 - 1))
def test_exact_areas_always_sum_exactly(n: int, total: int, seed: int) -> None:
    p = SeedParams(orchard_count=n, total_area_mu=float(total), min_area_mu=min(1.0, int(total / n / 2 * 100) / 100))
    areas = exact_areas(np.random.default_rng(seed), p)
    assert len(areas) == n
    assert round(float(np.round(areas * 100).sum())) == total * 100
    assert (areas >= p.min_area_mu - 1e-9).all()


def test_seeded_database_matches(conn: psycopg.Connection) -> None:
    n, area, lo, hi = conn.execute(
        "SELECT count(*), sum(area_mu), min(elevation_m), max(elevation_m) FROM orchards").fetchone()
    assert n == 1546 and float(area) == 176_000.0 and lo >= 400 and hi <= 800
    assert conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 1546
