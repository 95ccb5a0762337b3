"""Devices as CSV (a row per device, header :data:`registry.devices.FIELDS`): import many devices per
orchard at once, export the whole fleet.

Import checks every row first (values, duplicates inside the file, orchards and cold rooms that exist,
identifiers another device already holds) and reports each bad row with its 1-based line number (the
header is line 1); if any row is bad nothing is written. A good file is applied in one transaction:
new devices are added, known ones updated (a changed place is a move at import time, a row marked
``retired`` retires the device). Export then import gives the same fleet back.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any, TextIO

import psycopg

from registry.csv_io import CsvImportError, RowError
from registry.devices import FIELDS, check_fields, write_device

_REQUIRED = ("device_id", "model")
_OPTIONAL_IDS = ("profile", "dev_eui", "access_token_id", "orchard_id", "cold_room_id", "replaced_by")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    return str(v)


def export_devices(conn: psycopg.Connection, out: TextIO) -> int:
    """Write every device (retired ones too) as a CSV row; returns the row count."""
    cols = ", ".join(f"d.{c}" for c in FIELDS)
    rows = conn.execute(f"SELECT {cols} FROM devices d ORDER BY d.device_id").fetchall()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIELDS)
    for r in rows:
        w.writerow([_cell(v) for v in r])
    return len(rows)


def _time(s: str) -> datetime | date:
    """ISO 8601 date or date-time; a date-time needs its offset (``Z`` or ``+08:00``)."""
    if len(s) == 10:
        return date.fromisoformat(s)
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("no time zone")
    return t


def _parse_row(raw: dict[str, str | None]) -> tuple[dict[str, Any], list[str]]:
    errs: list[str] = []
    v: dict[str, Any] = {}
    for col in FIELDS:
        v[col] = (raw.get(col) or "").strip()
    for col in _REQUIRED:
        if not v[col]:
            errs.append(f"{col} is empty")
    for col in _OPTIONAL_IDS:
        v[col] = v[col] or None
    if v["dev_eui"]:
        v["dev_eui"] = v["dev_eui"].lower()
    v["kind"] = v["kind"] or "gateway"
    v["status"] = v["status"] or "active"
    depth = v.pop("depth_cm")
    v["depth_cm"] = None
    if depth:
        try:
            v["depth_cm"] = int(depth)
        except ValueError:
            errs.append(f"depth_cm={depth!r} is not a whole number of cm")
    for col in ("installed_at", "retired_at"):
        s = v.pop(col)
        v[col] = None
        if s:
            try:
                v[col] = _time(s)
            except ValueError:
                errs.append(f"{col}={s!r} is not an ISO 8601 date or date-time with offset")
    errs += check_fields(v) if not errs else []
    return v, errs


def parse_devices(text: str | TextIO) -> list[dict[str, Any]]:
    """Parse and check a devices CSV on its own (no database); raise :class:`CsvImportError` listing
    every bad row. Rows carry their line number as ``_line``."""
    f = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    missing = [c for c in _REQUIRED if c not in header]
    unknown = [c for c in header if c not in FIELDS]
    if missing or unknown:
        why = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + \
              ([f"unknown column(s): {', '.join(unknown)}"] if unknown else [])
        raise CsvImportError([RowError(1, "; ".join(why))])
    rows: list[dict[str, Any]] = []
    errors: list[RowError] = []
    seen: dict[str, dict[str, int]] = {"device_id": {}, "dev_eui": {}, "access_token_id": {}}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            errors.append(RowError(line, "more cells than header columns"))
            continue
        if any(raw.get(c) is None for c in header):
            errors.append(RowError(line, "fewer cells than header columns"))
            continue
        v, errs = _parse_row(raw)
        for col, firsts in seen.items():
            key = v.get(col)
            if key and key in firsts:
                errs.append(f"{col} {key} repeats line {firsts[key]}")
            elif key:
                firsts[key] = line
        errors.extend(RowError(line, e) for e in errs)
        v["_line"] = line
        rows.append(v)
    if errors:
        raise CsvImportError(errors)
    return rows


def _check_against_db(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> list[RowError]:
    errors: list[RowError] = []
    orchards = {r[0] for r in conn.execute("SELECT orchard_id FROM orchards WHERE orchard_id = ANY(%s)",
                                           ([v["orchard_id"] for v in rows if v["orchard_id"]],))}
    rooms = {r[0] for r in conn.execute("SELECT cold_room_id FROM cold_rooms WHERE cold_room_id = ANY(%s)",
                                        ([v["cold_room_id"] for v in rows if v["cold_room_id"]],))}
    in_file = {v["device_id"] for v in rows}
    known = {r[0] for r in conn.execute("SELECT device_id FROM devices WHERE device_id = ANY(%s)", (list(in_file),))}
    holders: dict[tuple[str, str], str] = {}
    for col in ("dev_eui", "access_token_id"):
        for key, dev in conn.execute(f"SELECT {col}, device_id FROM devices WHERE {col} = ANY(%s)",
                                     ([v[col] for v in rows if v[col]],)):
            holders[(col, key)] = dev
    for v in rows:
        line = v["_line"]
        if v["orchard_id"] and v["orchard_id"] not in orchards:
            errors.append(RowError(line, f"orchard_id {v['orchard_id']!r} is not in the registry"))
        if v["cold_room_id"] and v["cold_room_id"] not in rooms:
            errors.append(RowError(line, f"cold_room_id {v['cold_room_id']!r} is not a cold room"))
        if v["replaced_by"] and v["replaced_by"] not in in_file | known:
            errors.append(RowError(line, f"replaced_by {v['replaced_by']!r} is neither in the file nor registered"))
        for col in ("dev_eui", "access_token_id"):
            other = holders.get((col, v[col])) if v[col] else None
            if other is not None and other != v["device_id"] and other not in in_file:
                errors.append(RowError(line, f"{col} {v[col]} belongs to device {other}"))
    return errors


def import_devices(conn: psycopg.Connection, text: str | TextIO) -> tuple[int, int]:
    """Check then apply a devices CSV atomically; returns (devices added, devices updated)."""
    rows = parse_devices(text)
    errors = _check_against_db(conn, rows)
    conn.rollback()
    if errors:
        raise CsvImportError(errors)
    added = updated = 0
    try:
        with conn.transaction():
            known = {r[0] for r in conn.execute("SELECT device_id FROM devices WHERE device_id = ANY(%s) FOR UPDATE",
                                                ([v["device_id"] for v in rows],))}
            # identifiers move between rows of one file (a swap): free them first, then write
            conn.execute("UPDATE devices SET dev_eui = NULL, access_token_id = NULL WHERE device_id = ANY(%s)",
                         (list(known),))
            # replacements may point at rows later in the file: link them after every row exists
            for v in rows:
                write_device(conn, {**v, "replaced_by": None}, update=v["device_id"] in known)
                if v["device_id"] in known:
                    updated += 1
                else:
                    added += 1
            for v in rows:
                if v["replaced_by"]:
                    conn.execute("UPDATE devices SET replaced_by = %s WHERE device_id = %s",
                                 (v["replaced_by"], v["device_id"]))
    except Exception as exc:  # a constraint the checks above did not foresee: still nothing imported
        line = next((v["_line"] for v in rows if v["device_id"] in str(exc)), 0)
        raise CsvImportError([RowError(line, f"refused by the database: {exc}")]) from exc
    return added, updated
