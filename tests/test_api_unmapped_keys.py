# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""GET /api/v1/devices/{device_id}/unmapped-keys: what a device sends that its profile does not account
for, in the caller's scope; and the device-health list flags devices that report but store nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from test_web_fixtures import SAMPLE_GROWER, bearer, client, token_for, web_app, web_db  # noqa: F401


def test_unmapped_keys_endpoint_and_stores_nothing_flag(client: TestClient, web_db: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(web_db) as c:
        dev, = c.execute("SELECT d.device_id FROM devices d JOIN orchards o USING (orchard_id) WHERE o.grower_id = %s"
                         " ORDER BY d.device_id DESC LIMIT 1", (SAMPLE_GROWER,)).fetchone()  # type: ignore[misc]
        c.execute("UPDATE devices SET profile = 'sensecap-s2120' WHERE device_id = %s", (dev,))
        c.execute("INSERT INTO device_unmapped_keys (device_id, key, first_seen_at, last_seen_at, count, sample_value)"
                  " VALUES (%s, 'messages[4120]', %s, %s, 12, '3.5'), (%s, 'leaf_temp', %s, %s, 3, '19.0')",
                  (dev, now - timedelta(hours=5), now, dev, now - timedelta(hours=1), now))
        # heard a minute ago, newest stored reading a day old: it reports but stores nothing
        c.execute("INSERT INTO device_health (device_id, first_seen_at, last_seen_at, last_reading_at, messages)"
                  " VALUES (%s, %s, %s, %s, 40) ON CONFLICT (device_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,"
                  " last_reading_at = EXCLUDED.last_reading_at",
                  (dev, now - timedelta(days=3), now - timedelta(minutes=1), now - timedelta(days=1)))
        c.commit()
    grower = bearer(token_for(client, SAMPLE_GROWER))
    r = client.get(f"/api/v1/devices/{dev}/unmapped-keys", headers=grower)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["device_id"] == dev and body["profile"] == "sensecap-s2120"
    assert [(i["key"], i["count"], i["sample_value"]) for i in body["items"]] == [
        ("messages[4120]", 12, "3.5"), ("leaf_temp", 3, "19.0")]
    # another grower's scope does not contain the device; an unknown device is a 404 with a message
    other = bearer(token_for(client, "G-00002"))
    assert client.get(f"/api/v1/devices/{dev}/unmapped-keys", headers=other).status_code == 404
    r = client.get("/api/v1/devices/nope/unmapped-keys", headers=grower)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert client.get(f"/api/v1/devices/{dev}/unmapped-keys").status_code == 401
    h = client.get("/api/v1/devices/health?limit=500", headers=grower).json()
    row = next(d for d in h["items"] if d["device_id"] == dev)
    assert row["stores_nothing"] is True and row["unmapped_keys"] == 2
    # listed among the devices needing attention (it is not silent: it is heard)
    flagged = client.get("/api/v1/devices/health?only_silent=true&limit=500", headers=grower).json()
    assert dev in {d["device_id"] for d in flagged["items"]}
