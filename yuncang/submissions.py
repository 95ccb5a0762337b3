"""Exactly-once farm records from the phones' outboxes (table ``farm_record_submissions``).

A phone keeps each record in its outbox under a client-generated UUID until the server has answered;
it may send the same record several times (the answer was lost, the page was closed and reopened).
:func:`record_once` stores the first and answers every later one with that same record. Two
concurrent sends of one id are serialised by the primary key: the second waits for the first to commit,
then finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from registry.errors import Conflict

_RECORD_COLS = ("r.record_id, r.orchard_id, r.recorded_at, r.observed_on, r.kind, r.value::float8 AS value, r.note, "
                "r.recorded_by")


def _existing(conn: psycopg.Connection, client_id: UUID) -> dict[str, Any] | None:
    return conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_RECORD_COLS} FROM farm_record_submissions s JOIN farm_records r USING (record_id) "
        "WHERE s.client_id = %s", (client_id,)).fetchone()


def record_once(conn: psycopg.Connection, client_id: UUID, *, orchard_id: str, kind: str, submitted_by: str,
                add: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """(record, created): the record stored for ``client_id``, adding it with ``add()`` the first time.
    ``Conflict`` when the id was already used for another orchard or kind (a client bug, not a retry)."""
    row = _existing(conn, client_id)
    if row is None:
        with conn.transaction():  # a savepoint: a lost race undoes only this record
            rec = add()
            ins = conn.execute(
                "INSERT INTO farm_record_submissions (client_id, record_id, submitted_by) VALUES (%s, %s, %s) "
                "ON CONFLICT (client_id) DO NOTHING RETURNING record_id",
                (client_id, rec["record_id"], submitted_by)).fetchone()
            if ins is not None:
                return rec, True
            conn.execute("DELETE FROM farm_records WHERE record_id = %s", (rec["record_id"],))
        row = _existing(conn, client_id)
        assert row is not None
    if row["orchard_id"] != orchard_id or row["kind"] != kind:
        raise Conflict(f"client id {client_id} was already used for another record",
                       "该记录编号已用于另一条记录", client_id=str(client_id))
    return row, False
