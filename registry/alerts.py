"""Raise and resolve alerts (table ``alerts``); every module uses these two functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

SEVERITIES = ("info", "warning", "critical")


@dataclass
class Alert:
    dedupe_key: str        #: identifies the condition, e.g. 'frost:WS-0001:2026-03-14'
    kind: str
    severity: str
    title_zh: str
    title_en: str
    advice_zh: str = ""
    advice_en: str = ""
    orchard_id: str | None = None
    device_id: str | None = None
    cooperative_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def raise_alerts(conn: psycopg.Connection, alerts: list[Alert]) -> int:
    """Insert new alerts or refresh open ones with the same ``dedupe_key`` (re-opening resolved ones).

    Returns the number of rows written. Runs in the caller's transaction.
    """
    if not alerts:
        return 0
    for a in alerts:
        if a.severity not in SEVERITIES:
            raise ValueError(f"severity {a.severity!r} not in {SEVERITIES}")
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO alerts (dedupe_key, kind, severity, orchard_id, device_id, cooperative_id,
                                title_zh, title_en, advice_zh, advice_en, detail)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (dedupe_key) DO UPDATE SET
                severity = EXCLUDED.severity, title_zh = EXCLUDED.title_zh, title_en = EXCLUDED.title_en,
                advice_zh = EXCLUDED.advice_zh, advice_en = EXCLUDED.advice_en, detail = EXCLUDED.detail,
                updated_at = now(), resolved_at = NULL
            """,
            [(a.dedupe_key, a.kind, a.severity, a.orchard_id, a.device_id, a.cooperative_id,
              a.title_zh, a.title_en, a.advice_zh, a.advice_en, Jsonb(a.detail)) for a in alerts],
        )
    return len(alerts)


def resolve_alerts(conn: psycopg.Connection, *, kind: str, keep_open: set[str]) -> int:
    """Resolve open alerts of ``kind`` whose dedupe_key is not in ``keep_open``; returns how many."""
    cur = conn.execute(
        "UPDATE alerts SET resolved_at = now(), updated_at = now() "
        "WHERE kind = %s AND resolved_at IS NULL AND NOT (dedupe_key = ANY(%s))",
        (kind, list(keep_open)),
    )
    return cur.rowcount
