"""Pure pieces of the web layer: the string catalogue covers every template key in both languages,
series resolution by range, and the supply-vs-demand gap rule (hypothesis)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ingest.read import resolution_for
from yuncang.web.i18n import CATALOGUE
from yuncang.web.pages.manager import UNSOLD_GAP_SHARE, risk_score, supply_demand

TEMPLATES = Path(__file__).resolve().parent.parent / "yuncang" / "web" / "templates"


def test_every_template_string_is_in_the_catalogue_in_zh_and_en() -> None:
    keys: set[str] = set()
    for f in TEMPLATES.glob("*.html"):
        keys |= set(re.findall(r"(?<![\w.])t\('([a-z0-9_]+)'\)", f.read_text("utf-8")))
        # keys built as t('prefix_' + value): check every value the templates can produce
        for prefix in re.findall(r"t\('([a-z_]+_)' \+", f.read_text("utf-8")):
            assert any(k.startswith(prefix) for k in CATALOGUE), prefix
    assert len(keys) > 50
    missing = sorted(k for k in keys if k not in CATALOGUE)
    assert not missing, missing
    for k, v in CATALOGUE.items():
        assert v.get("zh") and v.get("en"), k
    for kind in ("work", "flower_density", "fruit_set", "pest", "note"):
        assert f"kind_{kind}" in CATALOGUE
    for role in ("grower", "buyer", "manager", "admin"):
        assert f"role_{role}" in CATALOGUE


@given(st.floats(min_value=0.01, max_value=800 * 24, allow_nan=False))
def test_resolution_grows_with_range(hours: float) -> None:
    end = datetime(2026, 7, 1, tzinfo=UTC)
    res = resolution_for(end - timedelta(hours=hours), end)
    assert res == ("raw" if hours <= 36 else "hour" if hours <= 16 * 24 else "day")
    # bounded points per metric for hourly and daily buckets (raw is bounded by 36 h of readings)
    if res == "hour":
        assert hours <= 16 * 24 + 1e-9
    if res == "day":
        assert hours / 24 <= 800


rows_st = st.lists(
    st.fixed_dictionaries(
        {
            "week_start": st.sampled_from(["2026-07-13", "2026-07-20", "2026-07-27"]),
            "grade": st.sampled_from(["XL", "L", "M"]),
            "p10_kg": st.floats(0, 1e5),
            "p50_kg": st.floats(0, 1e5),
            "p90_kg": st.floats(0, 1e5),
            "committed_kg": st.floats(0, 1e5),
            "expected_kg": st.floats(0, 1e5),
        }
    ),
    max_size=12,
)


@given(rows_st)
def test_supply_demand_sums_and_flags_gaps(rows: list[dict[str, object]]) -> None:
    weeks = supply_demand(rows)  # type: ignore[arg-type]
    assert [w["week_start"] for w in weeks] == sorted({str(r["week_start"]) for r in rows})
    for w in weeks:
        mine = [r for r in rows if r["week_start"] == w["week_start"]]
        p50 = sum(float(r["p50_kg"]) for r in mine)  # type: ignore[arg-type]
        matched = sum(float(r["committed_kg"]) + float(r["expected_kg"]) for r in mine)  # type: ignore[arg-type]
        assert abs(w["p50_kg"] - p50) <= 1e-6 * max(1.0, p50)
        assert abs(w["committed_kg"] - matched) <= 1e-6 * max(1.0, matched)
        assert (
            w["gap"] == (p50 > 0 and (p50 - matched) / p50 > UNSOLD_GAP_SHARE)
            or abs((p50 - matched) / max(p50, 1e-9) - UNSOLD_GAP_SHARE) < 1e-9
        )


def test_risk_score_is_the_largest_index() -> None:
    assert risk_score({"frost": 0.2, "brown_rot": 0.7, "note": "x", "flag": True}) == 0.7
    assert risk_score({}) is None and risk_score(None) is None
