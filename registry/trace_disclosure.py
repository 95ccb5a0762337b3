"""What the public trace page may show about an orchard: its public display name and the facts its
cooperative chose to disclose (owner of ``orchards.public_name`` and ``cooperatives.trace_shows``).

A consumer is told what helps them judge the fruit — where it grew (township, elevation band), when it was
harvested, its grade, certifications, the season's conditions — and never a person's name, phone or the
orchard's exact position, nor trade data (buyer, order, kg, destination). Orchard names often carry the
grower's full name ("双龙镇冉国家果园"), so the public name defaults to township + orchard number.
"""

from __future__ import annotations

import unicodedata

import psycopg

from registry.errors import Invalid, NotFound

#: facts a cooperative may disclose on its trace pages (all of them by default; none is personal)
DISCLOSABLE = ("township", "elevation_band", "variety", "harvest_date", "grade", "cooperative",
               "certifications", "conditions", "risk_events")
DEFAULT_SHOWN = DISCLOSABLE
MAX_PUBLIC_NAME = 60


def default_public_name(township_zh: str, orchard_id: str) -> str:
    """``双龙镇 · 果园 WS-0012``: where and which, naming nobody."""
    return f"{township_zh} · 果园 {orchard_id}"


def disclosure(conn: psycopg.Connection, orchard_id: str) -> tuple[str, tuple[str, ...]]:
    """(public name, facts shown) for an orchard; NotFound when there is none."""
    row = conn.execute(
        """SELECT o.public_name, t.name_zh, c.trace_shows FROM orchards o JOIN townships t USING (township_id)
           LEFT JOIN cooperatives c ON c.cooperative_id = o.cooperative_id WHERE o.orchard_id = %s""",
        (orchard_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no orchard {orchard_id!r}", f"果园 {orchard_id} 不存在")
    shows = tuple(s for s in DISCLOSABLE if s in row[2]) if row[2] is not None else DEFAULT_SHOWN
    return row[0] or default_public_name(row[1], orchard_id), shows


def set_trace_shows(conn: psycopg.Connection, cooperative_id: str, shows: list[str] | None) -> tuple[str, ...]:
    """A cooperative chooses what its trace pages show (``None``: the default set); returns the choice."""
    bad = sorted(set(shows or ()) - set(DISCLOSABLE))
    if bad:
        raise Invalid(f"cannot disclose {bad}; choose from {', '.join(DISCLOSABLE)}", "包含不可公开的项目")
    cur = conn.execute("UPDATE cooperatives SET trace_shows = %s WHERE cooperative_id = %s",
                       (None if shows is None else list(dict.fromkeys(shows)), cooperative_id))
    if cur.rowcount == 0:
        raise NotFound(f"no cooperative {cooperative_id!r}", f"合作社 {cooperative_id} 不存在")
    return DEFAULT_SHOWN if shows is None else tuple(s for s in DISCLOSABLE if s in shows)


def set_public_name(conn: psycopg.Connection, orchard_id: str, name: str | None) -> None:
    """Set (or with ``None`` clear back to the default) an orchard's public display name."""
    if name is not None:
        name = unicodedata.normalize("NFC", name).strip()
        if not 1 <= len(name) <= MAX_PUBLIC_NAME or any(unicodedata.category(ch) == "Cc" for ch in name):
            raise Invalid(f"public name must be 1-{MAX_PUBLIC_NAME} characters on one line", "公开名称长度不正确")
    cur = conn.execute("UPDATE orchards SET public_name = %s WHERE orchard_id = %s", (name, orchard_id))
    if cur.rowcount == 0:
        raise NotFound(f"no orchard {orchard_id!r}", f"果园 {orchard_id} 不存在")
