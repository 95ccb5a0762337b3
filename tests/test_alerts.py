"""Alerts are idempotent by dedupe key and resolvable."""

from __future__ import annotations

import psycopg

from registry.alerts import Alert, raise_alerts, resolve_alerts


def test_raise_twice_is_one_alert_and_resolve_reopens(conn: psycopg.Connection) -> None:
    a = Alert("test-frost:WS-0001:d1", "test_frost", "warning", "霜冻风险", "Frost risk", orchard_id="WS-0001")
    raise_alerts(conn, [a])
    a.severity = "critical"
    raise_alerts(conn, [a])
    rows = conn.execute("SELECT severity, resolved_at FROM alerts WHERE kind = 'test_frost'").fetchall()
    assert rows == [("critical", None)]
    assert resolve_alerts(conn, kind="test_frost", keep_open=set()) == 1
    raise_alerts(conn, [a])
    assert conn.execute("SELECT count(*) FROM alerts WHERE kind='test_frost' AND resolved_at IS NULL"
                        ).fetchone()[0] == 1
    conn.rollback()
