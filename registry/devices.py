"""The device fleet: many devices per orchard or cold room, where each was when, add / move / retire.

A device (gateway, soil probe at a depth, weather station, air sensor) sits in at most one place at a
time: an orchard or a cold room. ``device_assignments`` records every period (``valid_from`` inclusive,
``valid_to`` exclusive), so a reading is attributed to the orchard the device was in **at the reading's
time**, also after the device was moved or retired and replaced. Readers join readings through
:func:`placement_join` (the view ``device_placements``) instead of ``devices.orchard_id``, which is only
the current place.

``devices.active`` stays what ingest reads (retired = not active); ``status`` says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import psycopg
from psycopg.rows import dict_row

KINDS: tuple[str, ...] = ("gateway", "soil_probe", "weather_station", "air_sensor", "other")
STATUSES: tuple[str, ...] = ("active", "spare", "retired")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
EUI_RE = re.compile(r"^[0-9a-f]{16}$")
MAX_DEPTH_CM = 500

#: Columns of a device as listed, exported and imported (the CSV header, in this order).
FIELDS: tuple[str, ...] = (
    "device_id", "kind", "model", "profile", "dev_eui", "access_token_id", "orchard_id", "cold_room_id",
    "depth_cm", "position", "installed_at", "status", "retired_at", "replaced_by", "note",
)


class DeviceError(Exception):
    """Base: ``http_status`` is what the web layer answers; ``str(err)`` says what is wrong."""

    http_status = 400


class DeviceNotFound(DeviceError):
    http_status = 404


class DeviceConflict(DeviceError):
    """Clashes with the current state: id or DevEUI taken, already retired, overlapping period."""

    http_status = 409


class DeviceInvalid(DeviceError):
    http_status = 422


def placement_join(reading: str = "r", time_col: str = "bucket", alias: str = "p") -> str:
    """SQL ``JOIN`` attributing rows of ``reading`` (with ``device_id`` and a time column) to the place
    the device was in at that time; select ``{alias}.orchard_id`` / ``{alias}.cold_room_id``.

    A rollup bucket belongs to the place the device was in at the bucket's start."""
    return (f"JOIN device_placements {alias} ON {alias}.device_id = {reading}.device_id"
            f" AND {reading}.{time_col} >= {alias}.valid_from AND {reading}.{time_col} < {alias}.valid_to")


@dataclass(frozen=True)
class Place:
    orchard_id: str | None
    cold_room_id: str | None


def _as_utc(v: datetime | date | None) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise DeviceInvalid(f"time {v.isoformat()} has no time zone")
        return v.astimezone(UTC)
    return datetime.combine(v, time(0), UTC)


def check_fields(v: dict[str, Any]) -> list[str]:
    """Problems with one device's values (already typed); empty when good. Shared by add, import, API."""
    errs: list[str] = []
    did = v.get("device_id") or ""
    if not ID_RE.match(did):
        errs.append(f"device_id={did!r} is not a valid id (letters, digits, - _ ., at most 64)")
    if v.get("kind", "gateway") not in KINDS:
        errs.append(f"kind={v.get('kind')!r} is not one of {', '.join(KINDS)}")
    if v.get("status", "active") not in STATUSES:
        errs.append(f"status={v.get('status')!r} is not one of {', '.join(STATUSES)}")
    if not (v.get("model") or "").strip():
        errs.append("model is empty")
    eui = v.get("dev_eui")
    if eui is not None and not EUI_RE.match(eui):
        errs.append(f"dev_eui={eui!r} is not 16 hex digits")
    for col in ("access_token_id", "orchard_id", "cold_room_id", "replaced_by"):
        x = v.get(col)
        if x is not None and not ID_RE.match(x):
            errs.append(f"{col}={x!r} is not a valid id")
    if v.get("orchard_id") and v.get("cold_room_id"):
        errs.append("a device is in an orchard or a cold room, not both")
    d = v.get("depth_cm")
    if d is not None and not (0 <= d <= MAX_DEPTH_CM):
        errs.append(f"depth_cm={d} is outside 0..{MAX_DEPTH_CM}")
    if v.get("status") == "retired" and v.get("retired_at") is None:
        errs.append("a retired device needs retired_at")
    if v.get("status", "active") != "retired" and v.get("retired_at") is not None:
        errs.append("retired_at given for a device that is not retired")
    if v.get("status", "active") == "active" and not (v.get("orchard_id") or v.get("cold_room_id")):
        errs.append("an active device needs an orchard_id or a cold_room_id (a device in stock is 'spare')")
    return errs


def _check_refs(conn: psycopg.Connection, v: dict[str, Any]) -> list[str]:
    errs = []
    if v.get("orchard_id") and not conn.execute("SELECT 1 FROM orchards WHERE orchard_id = %s",
                                                (v["orchard_id"],)).fetchone():
        errs.append(f"orchard_id {v['orchard_id']!r} is not in the registry")
    if v.get("cold_room_id") and not conn.execute("SELECT 1 FROM cold_rooms WHERE cold_room_id = %s",
                                                  (v["cold_room_id"],)).fetchone():
        errs.append(f"cold_room_id {v['cold_room_id']!r} is not a cold room")
    return errs


_INSERT_COLS = ("device_id", "kind", "model", "profile", "dev_eui", "access_token_id", "orchard_id",
                "cold_room_id", "depth_cm", "position", "installed_at", "status", "retired_at", "replaced_by",
                "note", "active")


def _row(v: dict[str, Any]) -> dict[str, Any]:
    out = {c: v.get(c) for c in _INSERT_COLS}
    out["kind"] = v.get("kind") or "gateway"
    out["status"] = v.get("status") or "active"
    out["position"] = v.get("position") or ""
    out["note"] = v.get("note") or ""
    out["installed_at"] = _as_utc(v.get("installed_at")) or datetime.now(UTC)
    out["retired_at"] = _as_utc(v.get("retired_at"))
    out["active"] = out["status"] == "active"
    return out


def write_device(conn: psycopg.Connection, v: dict[str, Any], *, update: bool = False) -> None:
    """Insert one device (or, with ``update``, overwrite an existing one's fields; a changed place is a
    move at the current time). Raises :class:`DeviceConflict` when an identifier is taken."""
    row = _row(v)
    cols = ", ".join(_INSERT_COLS)
    vals = ", ".join(f"%({c})s" for c in _INSERT_COLS)
    sql = f"INSERT INTO devices ({cols}) VALUES ({vals})"
    if update:
        sql += " ON CONFLICT (device_id) DO UPDATE SET " + ", ".join(
            f"{c} = EXCLUDED.{c}" for c in _INSERT_COLS[1:])
    try:
        with conn.transaction():
            conn.execute(sql, row)
    except psycopg.errors.UniqueViolation as exc:
        raise DeviceConflict(f"{exc.diag.message_detail or exc.diag.message_primary}") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise DeviceInvalid(f"{exc.diag.message_detail or exc.diag.message_primary}") from exc


def add_device(conn: psycopg.Connection, **values: Any) -> dict[str, Any]:
    """Register a new device (in its own transaction); returns it as :func:`get_device` does."""
    values.setdefault("status", "active")
    errs = check_fields(values) + _check_refs(conn, values)
    if errs:
        raise DeviceInvalid("; ".join(errs))
    with conn.transaction():
        if conn.execute("SELECT 1 FROM devices WHERE device_id = %s", (values["device_id"],)).fetchone():
            raise DeviceConflict(f"device {values['device_id']} exists")
        write_device(conn, values)
    return get_device(conn, values["device_id"])


_SELECT = (
    "SELECT d.device_id, d.kind, d.model, d.profile, d.dev_eui, d.access_token_id, d.orchard_id, d.cold_room_id,"
    " d.depth_cm, d.position, d.installed_at, d.status, d.retired_at, d.replaced_by, d.note,"
    " coalesce(o.cooperative_id, cr.cooperative_id) AS cooperative_id"
    " FROM devices d LEFT JOIN orchards o ON o.orchard_id = d.orchard_id"
    " LEFT JOIN cold_rooms cr ON cr.cold_room_id = d.cold_room_id"
)


def get_device(conn: psycopg.Connection, device_id: str) -> dict[str, Any]:
    """One device with its current place and owning cooperative; :class:`DeviceNotFound` if absent."""
    row = conn.cursor(row_factory=dict_row).execute(f"{_SELECT} WHERE d.device_id = %s", (device_id,)).fetchone()
    if row is None:
        raise DeviceNotFound(f"no device {device_id!r}")
    return row


def list_devices(conn: psycopg.Connection, *, where: str = "TRUE", params: list[Any] | None = None,
                 orchard_id: str | None = None, cold_room_id: str | None = None, include_retired: bool = False,
                 limit: int = 1000, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Devices matching ``where`` (SQL over aliases ``d`` devices, ``o`` orchards, ``cr`` cold rooms; a
    caller's scope goes here) and the filters, in id order; returns (page, total)."""
    conds, args = [f"({where})"], list(params or [])
    if orchard_id is not None:
        conds.append("d.orchard_id = %s")
        args.append(orchard_id)
    if cold_room_id is not None:
        conds.append("d.cold_room_id = %s")
        args.append(cold_room_id)
    if not include_retired:
        conds.append("d.status <> 'retired'")
    w = " AND ".join(conds)
    rows = conn.cursor(row_factory=dict_row).execute(
        f"{_SELECT} WHERE {w} ORDER BY d.device_id LIMIT %s OFFSET %s", [*args, limit, offset]).fetchall()
    total = conn.execute(
        "SELECT count(*) FROM devices d LEFT JOIN orchards o ON o.orchard_id = d.orchard_id"
        f" LEFT JOIN cold_rooms cr ON cr.cold_room_id = d.cold_room_id WHERE {w}", args).fetchone()
    return rows, int(total[0]) if total else 0


def history(conn: psycopg.Connection, device_id: str) -> list[dict[str, Any]]:
    """Every placement of the device, oldest first (``valid_to`` None = still there)."""
    return conn.cursor(row_factory=dict_row).execute(
        "SELECT orchard_id, cold_room_id, valid_from, valid_to FROM device_assignments WHERE device_id = %s"
        " ORDER BY valid_from", (device_id,)).fetchall()


def place_at(conn: psycopg.Connection, device_id: str, at: datetime) -> Place | None:
    """Where the device was at ``at`` (tz-aware), or None when it was nowhere on record."""
    row = conn.execute("SELECT orchard_id, cold_room_id FROM device_placements WHERE device_id = %s"
                       " AND %s >= valid_from AND %s < valid_to", (device_id, at, at)).fetchone()
    return Place(row[0], row[1]) if row else None


def _lock(conn: psycopg.Connection, device_id: str) -> dict[str, Any]:
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT device_id, status, orchard_id, cold_room_id FROM devices WHERE device_id = %s FOR UPDATE",
        (device_id,)).fetchone()
    if row is None:
        raise DeviceNotFound(f"no device {device_id!r}")
    return row


def _close_open(conn: psycopg.Connection, device_id: str, at: datetime, what: str) -> None:
    cur = conn.execute("SELECT assignment_id, valid_from FROM device_assignments WHERE device_id = %s"
                       " AND valid_to IS NULL", (device_id,)).fetchone()
    if cur is None:
        return
    if at <= cur[1]:
        raise DeviceConflict(f"cannot {what} {device_id} at {at.isoformat()}: it has been in its current place "
                             f"since {cur[1].isoformat()}")
    conn.execute("UPDATE device_assignments SET valid_to = %s WHERE assignment_id = %s", (at, cur[0]))


def move_device(conn: psycopg.Connection, device_id: str, *, orchard_id: str | None = None,
                cold_room_id: str | None = None, at: datetime | date | None = None) -> dict[str, Any]:
    """Move a device to another orchard or cold room from ``at`` (default now): readings before ``at``
    stay with the old place, readings from ``at`` on go to the new one. A spare is put into service."""
    num = (orchard_id is not None) + (cold_room_id is not None)
    if num != 1:
        raise DeviceInvalid(f"give exactly one of orchard_id and cold_room_id (got {num})")
    t = _as_utc(at) or datetime.now(UTC)
    errs = _check_refs(conn, {"orchard_id": orchard_id, "cold_room_id": cold_room_id})
    if errs:
        raise DeviceInvalid("; ".join(errs))
    with conn.transaction():
        cur = _lock(conn, device_id)
        if cur["status"] == "retired":
            raise DeviceConflict(f"device {device_id} is retired; register its replacement instead")
        if cur["orchard_id"] == orchard_id and cur["cold_room_id"] == cold_room_id:
            raise DeviceConflict(f"device {device_id} is already there")
        _close_open(conn, device_id, t, "move")
        later = conn.execute("SELECT 1 FROM device_assignments WHERE device_id = %s AND valid_from >= %s",
                             (device_id, t)).fetchone()
        if later:
            raise DeviceConflict(f"device {device_id} has a placement starting after {t.isoformat()}")
        conn.execute("INSERT INTO device_assignments (device_id, orchard_id, cold_room_id, valid_from)"
                     " VALUES (%s, %s, %s, %s)", (device_id, orchard_id, cold_room_id, t))
        conn.execute("UPDATE devices SET orchard_id = %s, cold_room_id = %s, status = 'active', active = true"
                     " WHERE device_id = %s", (orchard_id, cold_room_id, device_id))
    return get_device(conn, device_id)


def retire_device(conn: psycopg.Connection, device_id: str, *, at: datetime | date | None = None,
                  replaced_by: str | None = None) -> dict[str, Any]:
    """Take a device out of service from ``at`` (default now): ingest stops accepting it, its readings
    until ``at`` stay attributed to where it was. ``replaced_by`` names the device that took its place."""
    t = _as_utc(at) or datetime.now(UTC)
    with conn.transaction():
        cur = _lock(conn, device_id)
        if cur["status"] == "retired":
            raise DeviceConflict(f"device {device_id} is already retired")
        if replaced_by is not None:
            if replaced_by == device_id:
                raise DeviceInvalid("a device cannot replace itself")
            if not conn.execute("SELECT 1 FROM devices WHERE device_id = %s", (replaced_by,)).fetchone():
                raise DeviceInvalid(f"replacement {replaced_by!r} is not a registered device")
        _close_open(conn, device_id, t, "retire")
        conn.execute("UPDATE devices SET status = 'retired', active = false, retired_at = %s, replaced_by = %s"
                     " WHERE device_id = %s", (t, replaced_by, device_id))
        conn.execute("UPDATE broker_accounts SET revoked_at = %s WHERE device_id = %s AND revoked_at IS NULL",
                     (t, device_id))
    return get_device(conn, device_id)
