"""Product certification and the supplier blacklist (质量监管: 认证, 黑名单).

A blacklist entry names an orchard, a grower or a cooperative; while it is active (not lifted), fruit
from every orchard it covers is left out of allocation and its warehouse lots cannot be shipped.
Certifications (county quality certification, green food, geographic indication, ...) are recorded
per orchard, grower or cooperative and shown on trace pages while valid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trading.errors import Conflict, Invalid, NotFound

SUBJECT_KINDS = ("orchard", "grower", "cooperative")
SCHEMES = ("county_quality", "green_food", "organic", "geographic_indication", "pollution_free")

#: orchards covered by an active blacklist entry (directly, through their grower or their cooperative)
BLACKLISTED_ORCHARDS_SQL = """
SELECT o.orchard_id FROM orchards o JOIN growers g USING (grower_id)
WHERE EXISTS (SELECT 1 FROM supplier_blacklist b WHERE b.lifted_at IS NULL AND (
        (b.subject_kind = 'orchard' AND b.subject_id = o.orchard_id)
     OR (b.subject_kind = 'grower' AND b.subject_id = o.grower_id)
     OR (b.subject_kind = 'cooperative' AND b.subject_id IN (o.cooperative_id, g.cooperative_id))))
"""


@dataclass
class BlacklistEntry:
    entry_id: int
    subject_kind: str
    subject_id: str
    reason: str
    listed_at: datetime
    lifted_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Certification:
    cert_id: int
    subject_kind: str
    subject_id: str
    scheme: str
    certificate_no: str
    issued_on: date
    valid_until: date
    revoked_at: datetime | None
    revoked_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_TABLE = {"orchard": ("orchards", "orchard_id"), "grower": ("growers", "grower_id"),
          "cooperative": ("cooperatives", "cooperative_id")}


def _check_subject(conn: psycopg.Connection, kind: str, subject_id: str) -> None:
    if kind not in SUBJECT_KINDS:
        raise Invalid(f"subject_kind must be one of {SUBJECT_KINDS}", "对象类型不正确", field="subject_kind")
    table, col = _TABLE[kind]
    if conn.execute(f"SELECT 1 FROM {table} WHERE {col} = %s", (subject_id,)).fetchone() is None:
        raise NotFound(f"{kind} {subject_id} not found", f"{subject_id} 不存在", subject_id=subject_id)


def blacklist_supplier(conn: psycopg.Connection, *, subject_kind: str, subject_id: str,
                       reason: str) -> BlacklistEntry:
    """List a supplier. ``Conflict`` if already actively listed."""
    if not reason.strip():
        raise Invalid("a reason is required", "必须填写列入黑名单的原因", field="reason")
    with conn.transaction():
        _check_subject(conn, subject_kind, subject_id)
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO supplier_blacklist (subject_kind, subject_id, reason) VALUES (%s, %s, %s) "
                "ON CONFLICT (subject_kind, subject_id) WHERE lifted_at IS NULL DO NOTHING RETURNING *",
                (subject_kind, subject_id, reason.strip())).fetchone()
    if row is None:
        raise Conflict(f"{subject_kind} {subject_id} is already blacklisted", "该供应方已在黑名单中")
    return BlacklistEntry(**row)


def lift_blacklist(conn: psycopg.Connection, entry_id: int) -> BlacklistEntry:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("UPDATE supplier_blacklist SET lifted_at = now() WHERE entry_id = %s "
                          "AND lifted_at IS NULL RETURNING *", (entry_id,)).fetchone()
    if row is None:
        raise NotFound(f"no active blacklist entry {entry_id}", "黑名单记录不存在或已解除")
    return BlacklistEntry(**row)


def list_blacklist(conn: psycopg.Connection, *, active_only: bool = True) -> list[BlacklistEntry]:
    where = "WHERE lifted_at IS NULL" if active_only else ""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT * FROM supplier_blacklist {where} ORDER BY entry_id").fetchall()
    return [BlacklistEntry(**r) for r in rows]


def blacklisted_orchards(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(BLACKLISTED_ORCHARDS_SQL).fetchall()}


def is_orchard_blacklisted(conn: psycopg.Connection, orchard_id: str) -> bool:
    row = conn.execute(f"SELECT 1 FROM ({BLACKLISTED_ORCHARDS_SQL}) x WHERE x.orchard_id = %s",
                       (orchard_id,)).fetchone()
    return row is not None


def add_certification(conn: psycopg.Connection, *, subject_kind: str, subject_id: str, scheme: str,
                      certificate_no: str, issued_on: date, valid_until: date) -> Certification:
    if scheme not in SCHEMES:
        raise Invalid(f"scheme must be one of {SCHEMES}", "认证类型不正确", field="scheme")
    if valid_until < issued_on:
        raise Invalid("valid_until is before issued_on", "有效期早于发证日期", field="valid_until")
    with conn.transaction():
        _check_subject(conn, subject_kind, subject_id)
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO certifications (subject_kind, subject_id, scheme, certificate_no, issued_on, "
                "valid_until) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (certificate_no) DO NOTHING "
                "RETURNING *", (subject_kind, subject_id, scheme, certificate_no, issued_on, valid_until),
            ).fetchone()
    if row is None:
        raise Conflict(f"certificate {certificate_no} already recorded", "证书编号已存在")
    return Certification(**row)


def revoke_certification(conn: psycopg.Connection, cert_id: int, reason: str) -> Certification:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("UPDATE certifications SET revoked_at = now(), revoked_reason = %s "
                          "WHERE cert_id = %s AND revoked_at IS NULL RETURNING *", (reason, cert_id)).fetchone()
    if row is None:
        raise NotFound(f"no active certification {cert_id}", "证书不存在或已撤销")
    return Certification(**row)


def certifications_for_orchard(conn: psycopg.Connection, orchard_id: str, *,
                               on: date | None = None) -> list[Certification]:
    """Certifications covering the orchard (itself, its grower, its cooperative), valid on ``on``
    (all unrevoked ones when ``on`` is None)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT c.* FROM certifications c, orchards o JOIN growers g USING (grower_id)
               WHERE o.orchard_id = %s AND c.revoked_at IS NULL
                 AND ((c.subject_kind = 'orchard' AND c.subject_id = o.orchard_id)
                   OR (c.subject_kind = 'grower' AND c.subject_id = o.grower_id)
                   OR (c.subject_kind = 'cooperative' AND c.subject_id IN (o.cooperative_id, g.cooperative_id)))
                 AND (%s::date IS NULL OR %s::date BETWEEN c.issued_on AND c.valid_until)
               ORDER BY c.issued_on, c.cert_id""", (orchard_id, on, on)).fetchall()
    return [Certification(**r) for r in rows]
