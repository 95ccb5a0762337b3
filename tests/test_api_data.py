# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Conditions and series through the API on real ingest tables: values, bucketing by range, scoping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from test_web_fixtures import SAMPLE_DAYS, SAMPLE_GROWER, bearer, client, sample, token_for, web_app, web_db  # noqa: F401


def test_conditions_latest_values(client: TestClient, sample: dict[str, Any]) -> None:
    h = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    c = client.get(f"/api/v1/orchards/{sample['orchard_id']}/conditions", headers=h).json()
    assert c["source"] == "readings" and c["open_alerts"] >= 1
    assert set(c["metrics"]) >= {"air_temp_c", "soil_vwc_10cm", "rain_mm"}
    assert c["metrics"]["soil_vwc_10cm"]["value"] == 0.28 and c["metrics"]["soil_vwc_10cm"]["unit"] == "m³/m³"
    assert c["rain_24h_mm"] == 1.0  # one 1 mm reading at 03:00 local each day
    # a grower without data: honest empty state
    h2 = bearer(token_for(client, "G-00002", role="grower"))
    own = client.get("/api/v1/orchards", headers=h2).json()["items"][0]["orchard_id"]
    empty = client.get(f"/api/v1/orchards/{own}/conditions", headers=h2).json()
    assert empty["source"] is None and empty["metrics"] == {}


def test_series_resolution_follows_range(client: TestClient, sample: dict[str, Any]) -> None:
    h = bearer(token_for(client, "admin", role="admin"))
    base = f"/api/v1/orchards/{sample['orchard_id']}/series"
    week = client.get(f"{base}?days=7&metric=air_temp_c&metric=rain_mm", headers=h).json()
    assert week["resolution"] == "hour" and week["source"] == "readings_hourly"
    pts = week["series"][0]["points"]
    assert 160 <= len(pts) <= 169 and all(p["n"] == 1 for p in pts)
    assert sum(p["sum"] for p in week["series"][1]["points"]) == 7.0  # 7 days x 1 mm
    year = client.get(f"{base}?days=365&metric=air_temp_c", headers=h).json()
    assert year["resolution"] == "day" and year["source"] == "readings_daily"
    assert SAMPLE_DAYS <= len(year["series"][0]["points"]) <= SAMPLE_DAYS + 1
    assert all(p["n"] <= 24 for p in year["series"][0]["points"])
    day = client.get(f"{base}?days=1&metric=soil_vwc_30cm", headers=h).json()
    assert day["resolution"] == "raw" and day["source"] == "readings"
    assert all(p["avg"] == 0.31 for p in day["series"][0]["points"]) and len(day["series"][0]["points"]) == 24
    end = (sample["end"] - timedelta(days=2)).isoformat()
    explicit = client.get(f"{base}", params={"end": end, "days": 3, "metric": "air_temp_c"}, headers=h).json()
    assert len(explicit["series"][0]["points"]) == 72
    assert client.get(f"{base}?days=30&resolution=raw", headers=h).status_code == 422
