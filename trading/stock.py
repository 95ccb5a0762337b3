"""One stock for every channel: the lot-and-grade rows every sale, hold, shipment and loss draws on.

The stock model (``lot_grades``, see ``trading/sql/010_spot.sql``)::

    received_kg  = remaining_kg + shipped (forward orders) + collected (spot sales) + lost
    remaining_kg = reserved_kg + available
    reserved_kg  = kg of spot sales that are held (a hold that expires) or confirmed but not yet collected

Every channel takes kg through :func:`lock_rows` + :func:`take_available` / :func:`hold`, inside the
caller's transaction:

1. :func:`lock_rows` first expires the held spot sales whose hold has run out and that touch the rows
   wanted (their sale rows locked ``FOR UPDATE SKIP LOCKED``, so two sweepers never wait on each other),
   then locks all the lot-grade rows involved with one ``SELECT ... ORDER BY lot_id, grade FOR UPDATE``
   — the same global order in every transaction, so concurrent takers never deadlock — and returns
   their ``remaining_kg`` / ``reserved_kg``; an expired hold's kg are back before anyone is refused.
2. The take itself is a conditional ``UPDATE ... WHERE remaining_kg - reserved_kg >= kg``, and the
   table's ``CHECK (remaining_kg >= 0)`` and ``CHECK (0 <= reserved_kg <= remaining_kg)`` make an
   oversell impossible even for a writer that skipped step 1.

kg are ``Decimal`` (3 decimals). Sale rows are always locked before lot-grade rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from trading.errors import Conflict, NotFound

Key = tuple[str, str]   #: (lot_id, grade)


def _release_lines(conn: psycopg.Connection, sale_ids: Sequence[str]) -> list[tuple[str, str, Decimal]]:
    rows = conn.execute("SELECT lot_id, grade, sum(kg) FROM spot_sale_lines WHERE sale_id = ANY(%s) "
                        "GROUP BY 1, 2 ORDER BY 1, 2", (list(sale_ids),)).fetchall()
    return [(r[0], r[1], Decimal(r[2])) for r in rows]


def lock_rows(conn: psycopg.Connection, keys: Iterable[Key], *, now: datetime | None = None
              ) -> dict[Key, tuple[Decimal, Decimal]]:
    """Expire run-out holds touching ``keys``, lock the rows, return ``{key: (remaining_kg, reserved_kg)}``.

    ``NotFound`` when a (lot, grade) has no stock row. Must run inside a transaction."""
    want = sorted(set(keys))
    expired = [r[0] for r in conn.execute(
        """SELECT s.sale_id FROM spot_sales s
           WHERE s.status = 'held' AND s.expires_at <= coalesce(%s::timestamptz, now())
             AND EXISTS (SELECT 1 FROM spot_sale_lines l WHERE l.sale_id = s.sale_id
                         AND (l.lot_id, l.grade) IN (SELECT * FROM unnest(%s::text[], %s::text[])))
           ORDER BY s.sale_id FOR UPDATE OF s SKIP LOCKED""",
        (now, [k[0] for k in want], [k[1] for k in want])).fetchall()]
    # re-check under the lock: a sale confirmed or cancelled meanwhile is no longer held
    if expired:
        expired = [r[0] for r in conn.execute(
            "UPDATE spot_sales SET status = 'expired' WHERE sale_id = ANY(%s) AND status = 'held' "
            "RETURNING sale_id", (expired,)).fetchall()]
    freed = _release_lines(conn, expired) if expired else []
    all_keys = sorted(set(want) | {(lot, g) for lot, g, _ in freed})
    rows = conn.execute(
        """SELECT lg.lot_id, lg.grade, lg.remaining_kg, lg.reserved_kg FROM lot_grades lg
           JOIN unnest(%s::text[], %s::text[]) AS k(lot_id, grade) USING (lot_id, grade)
           ORDER BY lg.lot_id, lg.grade FOR UPDATE OF lg""",
        ([k[0] for k in all_keys], [k[1] for k in all_keys])).fetchall()
    got = {(r[0], r[1]): (Decimal(r[2]), Decimal(r[3])) for r in rows}
    for lot, g, kg in freed:
        rem, res = got[(lot, g)]
        release(conn, (lot, g), kg)
        got[(lot, g)] = (rem, res - kg)
    for k in want:
        if k not in got:
            raise NotFound(f"lot {k[0]} has no {k[1]} stock", f"批次 {k[0]} 没有 {k[1]} 级库存",
                           lot_id=k[0], grade=k[1])
    return {k: got[k] for k in want}


def _short(key: Key, have: Decimal, asked: Decimal) -> Conflict:
    return Conflict(f"lot {key[0]} has {have} kg of {key[1]} available, asked {asked}",
                    f"批次 {key[0]} {key[1]} 级可售 {have} 公斤, 不足 {asked} 公斤",
                    lot_id=key[0], grade=key[1], available_kg=str(have), asked_kg=str(asked))


def take_available(conn: psycopg.Connection, key: Key, kg: Decimal) -> None:
    """Remove ``kg`` from the available stock for good (a counter sale, a forward shipment, a loss).
    ``Conflict`` when fewer kg are available."""
    row = conn.execute("UPDATE lot_grades SET remaining_kg = remaining_kg - %s WHERE lot_id = %s AND grade = %s "
                       "AND remaining_kg - reserved_kg >= %s RETURNING remaining_kg", (kg, *key, kg)).fetchone()
    if row is None:
        raise _short(key, available_kg(conn, key), kg)


def hold(conn: psycopg.Connection, key: Key, kg: Decimal) -> None:
    """Reserve ``kg`` of the available stock (an online hold). ``Conflict`` when fewer are available."""
    row = conn.execute("UPDATE lot_grades SET reserved_kg = reserved_kg + %s WHERE lot_id = %s AND grade = %s "
                       "AND remaining_kg - reserved_kg >= %s RETURNING reserved_kg", (kg, *key, kg)).fetchone()
    if row is None:
        raise _short(key, available_kg(conn, key), kg)


def release(conn: psycopg.Connection, key: Key, kg: Decimal) -> None:
    """Give back ``kg`` of a hold (expired or cancelled sale)."""
    conn.execute("UPDATE lot_grades SET reserved_kg = reserved_kg - %s WHERE lot_id = %s AND grade = %s",
                 (kg, *key))


def collect(conn: psycopg.Connection, key: Key, kg: Decimal) -> None:
    """Held kg leave the site (picked up or shipped): both ``remaining_kg`` and ``reserved_kg`` drop."""
    conn.execute("UPDATE lot_grades SET remaining_kg = remaining_kg - %s, reserved_kg = reserved_kg - %s "
                 "WHERE lot_id = %s AND grade = %s", (kg, kg, *key))


def available_kg(conn: psycopg.Connection, key: Key) -> Decimal:
    row = conn.execute("SELECT remaining_kg - reserved_kg FROM lot_grades WHERE lot_id = %s AND grade = %s",
                       key).fetchone()
    return Decimal(row[0]) if row else Decimal(0)


def balance(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Per lot and grade: received, remaining, reserved, shipped (forward), collected (spot), held (spot
    sales not yet collected), lost kg, and ``unexplained_kg`` = received - remaining - shipped - collected
    - lost (0 when every kg is accounted for) and ``reserved_mismatch_kg`` = reserved - held (0)."""
    rows = conn.execute(
        """SELECT lg.lot_id, lg.grade, lg.received_kg, lg.remaining_kg, lg.reserved_kg,
                  coalesce((SELECT sum(kg) FROM shipments s WHERE s.lot_id = lg.lot_id AND s.grade = lg.grade), 0),
                  coalesce((SELECT sum(l.kg) FROM spot_sale_lines l JOIN spot_sales s USING (sale_id)
                            WHERE l.lot_id = lg.lot_id AND l.grade = lg.grade AND s.status = 'delivered'), 0),
                  coalesce((SELECT sum(l.kg) FROM spot_sale_lines l JOIN spot_sales s USING (sale_id)
                            WHERE l.lot_id = lg.lot_id AND l.grade = lg.grade
                              AND s.status IN ('held', 'confirmed')), 0),
                  coalesce((SELECT sum(kg) FROM lot_losses x WHERE x.lot_id = lg.lot_id AND x.grade = lg.grade), 0)
           FROM lot_grades lg ORDER BY 1, 2""").fetchall()
    out = []
    for lot, g, rec, rem, res, shp, col, held, lost in rows:
        out.append({"lot_id": lot, "grade": g, "received_kg": rec, "remaining_kg": rem, "reserved_kg": res,
                    "shipped_kg": shp, "collected_kg": col, "held_kg": held, "lost_kg": lost,
                    "unexplained_kg": rec - rem - shp - col - lost, "reserved_mismatch_kg": res - held})
    return out
