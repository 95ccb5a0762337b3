"""Read side of ``device_unmapped_keys`` (owned by ingest): keys a device sends that its profile neither
maps nor ignores."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def unmapped_keys(conn: psycopg.Connection, device_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """The device's unmapped keys, most frequent first: key, count, sample_value, first/last seen (UTC)."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT key, count, sample_value, first_seen_at, last_seen_at FROM device_unmapped_keys"
        " WHERE device_id = %s ORDER BY count DESC, key LIMIT %s", (device_id, limit)).fetchall()


def devices_storing_nothing(conn: psycopg.Connection, since: Any) -> list[tuple[str, str, str | None, Any, int]]:
    """Active devices heard since ``since`` whose messages stored no reading since then:
    (device_id, orchard_id, cooperative_id, last_reading_at, unmapped key count)."""
    return conn.execute(
        """SELECT d.device_id, d.orchard_id, o.cooperative_id, h.last_reading_at,
                  (SELECT count(*) FROM device_unmapped_keys u WHERE u.device_id = d.device_id)::int
             FROM device_health h JOIN devices d USING (device_id) JOIN orchards o USING (orchard_id)
            WHERE d.active AND h.last_seen_at >= %s AND (h.last_reading_at IS NULL OR h.last_reading_at < %s)
            ORDER BY d.device_id""", (since, since)).fetchall()
