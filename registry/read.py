"""Read queries over the registry's tables (orchards, growers, townships, devices, alerts).

Every function takes an open psycopg connection and plain values; the tables are guaranteed by the
registry's migrations. Which orchards a reader may see is an :class:`OrchardScope` (built from the
signed-in user by ``yuncang.web.access``): the functions here only apply it.

Units: areas in mu, elevations in m, positions in degrees (WGS 84); times tz-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class OrchardScope:
    """Which orchards a reader may see: every one, one cooperative's, one grower's, or none."""

    everything: bool = False
    cooperative_id: str | None = None
    grower_id: str | None = None

    def sql(self, alias: str = "o") -> tuple[str, list[Any]]:
        """SQL condition (and params) on ``orchards`` rows aliased ``alias``."""
        if self.everything:
            return "TRUE", []
        if self.cooperative_id is not None:
            return f"{alias}.cooperative_id = %s", [self.cooperative_id]
        if self.grower_id is not None:
            return f"{alias}.grower_id = %s", [self.grower_id]
        return "FALSE", []

    def allows(self, grower_id: str, cooperative_id: str | None) -> bool:
        """Whether an orchard with these owners is inside the scope."""
        if self.everything:
            return True
        if self.cooperative_id is not None:
            return cooperative_id == self.cooperative_id
        return self.grower_id is not None and grower_id == self.grower_id


EVERYTHING = OrchardScope(everything=True)
NOTHING = OrchardScope()

ORCHARD_COLS = """o.orchard_id, o.name, o.grower_id, g.name AS grower_name, o.cooperative_id, o.township_id,
       t.name_zh AS township_zh, t.name_en AS township_en, o.area_mu::float8 AS area_mu, o.elevation_m,
       o.lat, o.lon, o.planting_year, o.tree_count, o.variety"""
ORCHARD_FROM = "FROM orchards o JOIN townships t USING (township_id) JOIN growers g ON g.grower_id = o.grower_id"


def list_orchards(
    conn: psycopg.Connection,
    *,
    scope: OrchardScope,
    township: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Orchards visible in ``scope``, in id order; returns (page, total)."""
    where, params = scope.sql()
    if township:
        where += " AND o.township_id = %s"
        params.append(township)
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        f"SELECT {ORCHARD_COLS} {ORCHARD_FROM} WHERE {where} ORDER BY o.orchard_id LIMIT %s OFFSET %s",
        [*params, limit, offset],
    ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM orchards o WHERE {where}", params).fetchone()[0]  # type: ignore[index]
    return rows, int(total)


def orchards_area_mu(conn: psycopg.Connection, *, scope: OrchardScope) -> float:
    """Total area of the orchards in ``scope``, mu."""
    where, params = scope.sql()
    row = conn.execute(f"SELECT coalesce(sum(area_mu), 0)::float8 FROM orchards o WHERE {where}", params).fetchone()
    return float(row[0]) if row else 0.0


def get_orchard(conn: psycopg.Connection, orchard_id: str) -> dict[str, Any] | None:
    """One orchard with its grower's name and township (None if there is no such orchard)."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(f"SELECT {ORCHARD_COLS} {ORCHARD_FROM} WHERE o.orchard_id = %s", (orchard_id,))
        .fetchone()
    )


def orchard_owners(conn: psycopg.Connection, orchard_id: str) -> tuple[str, str | None] | None:
    """(grower_id, cooperative_id) of an orchard, None if there is no such orchard."""
    row = conn.execute("SELECT grower_id, cooperative_id FROM orchards WHERE orchard_id = %s", (orchard_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def orchard_devices(conn: psycopg.Connection, orchard_id: str) -> list[str]:
    """The orchard's active gateways, in id order."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT device_id FROM devices WHERE orchard_id = %s AND active ORDER BY device_id", (orchard_id,)
        ).fetchall()
    ]


def devices_and_open_alerts(conn: psycopg.Connection, orchard_id: str) -> tuple[list[str], int] | None:
    """One round trip for the hot reads: the orchard's active gateways and its open alert count
    (None if there is no such orchard)."""
    row = conn.execute(
        """SELECT ARRAY(SELECT device_id FROM devices d WHERE d.orchard_id = o.orchard_id AND d.active
                        ORDER BY device_id),
                  (SELECT count(*) FROM alerts a WHERE a.orchard_id = o.orchard_id AND a.resolved_at IS NULL)
           FROM orchards o WHERE o.orchard_id = %s""",
        (orchard_id,),
    ).fetchone()
    return None if row is None else (list(row[0]), int(row[1]))


def cooperative_orchard_ids(conn: psycopg.Connection, cooperative_id: str | None) -> set[str]:
    """Ids of one cooperative's orchards."""
    return {
        r[0]
        for r in conn.execute("SELECT orchard_id FROM orchards WHERE cooperative_id = %s", (cooperative_id,)).fetchall()
    }


def grower_cooperative(conn: psycopg.Connection, grower_id: str) -> tuple[bool, str | None]:
    """(exists, cooperative_id) of a grower."""
    row = conn.execute("SELECT cooperative_id FROM growers WHERE grower_id = %s", (grower_id,)).fetchone()
    return (row is not None, row[0] if row else None)


def orchard_points(conn: psycopg.Connection, *, scope: OrchardScope) -> list[dict[str, Any]]:
    """Every orchard in scope with position (°), elevation (m), area (mu) and open alert count, id order."""
    where, params = scope.sql()
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""SELECT o.orchard_id, o.name, o.elevation_m, o.lat, o.lon, o.area_mu::float8 AS area_mu,
                   (SELECT count(*) FROM alerts a
                     WHERE a.orchard_id = o.orchard_id AND a.resolved_at IS NULL) AS open_alerts
            FROM orchards o WHERE {where} ORDER BY o.orchard_id""",
            params,
        )
        .fetchall()
    )


# ----------------------------------------------------------------------------- alerts

ALERT_COLS = """a.alert_id, a.kind, a.severity, a.orchard_id, a.device_id, a.cooperative_id, a.title_zh, a.title_en,
       a.advice_zh, a.advice_en, a.detail, a.raised_at, a.updated_at, a.resolved_at"""


def list_alerts(
    conn: psycopg.Connection,
    *,
    scope: OrchardScope,
    orchard_id: str | None = None,
    open_only: bool = True,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Alerts on orchards in ``scope`` (a cooperative's scope also has its cooperative-wide alerts),
    newest first; returns (page, total)."""
    conds: list[str] = []
    params: list[Any] = []
    if scope.everything:
        pass
    elif scope.cooperative_id is not None:
        conds.append("(o.cooperative_id = %s OR a.cooperative_id = %s)")
        params += [scope.cooperative_id, scope.cooperative_id]
    else:
        where, ps = scope.sql()
        conds.append(where)
        params += ps
    if orchard_id:
        conds.append("a.orchard_id = %s")
        params.append(orchard_id)
    if open_only:
        conds.append("a.resolved_at IS NULL")
    if kind:
        conds.append("a.kind = %s")
        params.append(kind)
    where = " AND ".join(conds) or "TRUE"
    base = f"FROM alerts a LEFT JOIN orchards o ON o.orchard_id = a.orchard_id WHERE {where}"
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {ALERT_COLS} {base} ORDER BY a.raised_at DESC, a.alert_id DESC LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        .fetchall()
    )
    total = conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]  # type: ignore[index]
    return rows, int(total)
