"""Import and export of the registry as one flat CSV (a row per orchard), so a cooperative can load its own.

The row carries the orchard's (first) gateway; the whole fleet — every device, also soil probes, weather
stations and cold-room sensors — travels in the devices CSV (:mod:`registry.devices_csv`), which
``yuncang registry export FILE.csv`` writes beside it as ``FILE.devices.csv`` and ``import`` reads back.

Import validates every row first and reports each bad row with its 1-based line number (the header
is line 1) and the reason; if any row is bad nothing is written. A good file is applied in one
transaction: orchards, growers, households, cooperatives and gateways are inserted or updated by id.
A NUL character, a cell over :data:`MAX_FIELD_CHARS` or a name over :data:`MAX_NAME_CHARS` is a bad row
like any other (never a traceback).

Spreadsheet formula injection (OWASP "CSV Injection"): the export writes a text cell that starts with
``=``, ``+``, ``-``, ``@``, tab or carriage return — or with the escape character ``'`` itself — with a
leading ``'``, so a spreadsheet shows it as text instead of running it; the import removes exactly that
one ``'`` again, so export → import gives back the same values.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import psycopg

from registry.seed import RegistryData, upsert
from registry.townships import TOWNSHIPS

COLUMNS: tuple[str, ...] = (
    "orchard_id", "orchard_name", "township_id", "cooperative_id", "cooperative_name",
    "grower_id", "grower_name", "grower_phone", "household_id", "poverty_alleviated", "household_members",
    "area_mu", "elevation_m", "lat", "lon", "planting_year", "tree_count", "variety",
    "device_id", "dev_eui",
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_EUI = re.compile(r"^[0-9a-f]{16}$")
_PHONE = re.compile(r"^[0-9+\-() ]{3,24}$")
_TRUE = {"1", "true", "yes", "y", "是"}
MAX_FIELD_CHARS = 128 * 1024  #: a cell longer than this is a bad row (the csv module's own limit)
MAX_NAME_CHARS = 100  #: orchard, grower and cooperative names
MAX_VARIETY_CHARS = 50
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPE = "'"
_NAMES = {"orchard_name": MAX_NAME_CHARS, "grower_name": MAX_NAME_CHARS, "cooperative_name": MAX_NAME_CHARS,
          "variety": MAX_VARIETY_CHARS}


def neutralise_formula(value: str) -> str:
    """The cell as exported: a leading ``'`` when a spreadsheet would read it as a formula (or it starts
    with ``'``, so that :func:`restore_formula` can always undo it)."""
    return _ESCAPE + value if value.startswith((*_FORMULA_START, _ESCAPE)) else value


def restore_formula(cell: str) -> str:
    """Inverse of :func:`neutralise_formula` (one leading ``'`` before a formula start or ``'`` is removed)."""
    return cell[1:] if cell.startswith(_ESCAPE) and cell[1:2] and cell[1:].startswith((*_FORMULA_START, _ESCAPE)) \
        else cell
_FALSE = {"0", "false", "no", "n", "否", ""}


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class CsvImportError(ValueError):
    """The file has bad rows; ``errors`` lists each with its line number. Nothing was imported."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        head = "; ".join(str(e) for e in errors[:10])
        more = f" (+{len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} bad row(s), nothing imported: {head}{more}")


def export_csv(conn: psycopg.Connection, out: TextIO) -> int:
    """Write every orchard as a CSV row; returns the row count."""
    rows = conn.execute(
        """
        SELECT o.orchard_id, o.name, o.township_id, o.cooperative_id, c.name,
               g.grower_id, g.name, g.phone, h.household_id, h.poverty_alleviated, h.members,
               o.area_mu, o.elevation_m, o.lat, o.lon, o.planting_year, o.tree_count, o.variety,
               d.device_id, d.dev_eui
        FROM orchards o
        JOIN growers g USING (grower_id)
        JOIN households h ON h.household_id = g.household_id
        LEFT JOIN cooperatives c ON c.cooperative_id = o.cooperative_id
        LEFT JOIN LATERAL (SELECT device_id, dev_eui FROM devices d WHERE d.orchard_id = o.orchard_id
                           AND d.kind = 'gateway' AND d.status <> 'retired' ORDER BY device_id LIMIT 1) d ON true
        ORDER BY o.orchard_id
        """
    ).fetchall()
    return write_csv(out, rows)


def _cell(v: Any) -> Any:
    if v is True or v is False:
        return "true" if v else "false"
    if v is None:
        return ""
    return neutralise_formula(v) if isinstance(v, str) else v


def write_csv(out: TextIO, rows: Iterable[Sequence[Any]]) -> int:
    """Write rows (values in :data:`COLUMNS` order) as the registry CSV, text cells formula-neutralised;
    returns the row count."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    n = 0
    for r in rows:
        w.writerow([_cell(v) for v in r])
        n += 1
    return n


def _parse_row(line: int, raw: dict[str, str | None], townships: set[str]) -> tuple[dict[str, Any], list[RowError]]:
    errs: list[RowError] = []
    v: dict[str, Any] = {}

    def err(msg: str) -> None:
        errs.append(RowError(line, msg))

    def text(col: str, required: bool = True) -> str:
        s = (raw.get(col) or "").strip()
        if required and not s:
            err(f"{col} is empty")
        return s

    def number(col: str, kind: type, lo: float, hi: float) -> Any:
        s = text(col)
        if not s:
            return None
        try:
            x = kind(s)
        except ValueError:
            err(f"{col}={s!r} is not a {'whole number' if kind is int else 'number'}")
            return None
        if not (lo <= x <= hi) or x != x:
            err(f"{col}={s} is outside {lo}..{hi}")
            return None
        return x

    for col in ("orchard_id", "grower_id", "household_id"):
        s = text(col)
        if s and not _ID.match(s):
            err(f"{col}={s!r} is not a valid id (letters, digits, - _ .)")
        v[col] = s
    for col, limit in _NAMES.items():
        name = text(col, required=False)
        if len(name) > limit:
            err(f"{col} has {len(name)} characters (at most {limit})")
        elif any(unicodedata.category(ch) == "Cc" for ch in name):
            err(f"{col} contains a control character (a name is one line of text)")
    v["orchard_name"] = text("orchard_name")
    v["grower_name"] = text("grower_name")
    v["grower_phone"] = text("grower_phone", required=False) or None
    if v["grower_phone"] and not _PHONE.match(v["grower_phone"]):
        err(f"grower_phone={v['grower_phone']!r} is not a phone number (digits, + - ( ) and spaces, 3-24)")
    t = text("township_id")
    if t and t not in townships:
        err(f"township_id={t!r} is not a known township")
    v["township_id"] = t
    coop = text("cooperative_id", required=False)
    if coop and not _ID.match(coop):
        err(f"cooperative_id={coop!r} is not a valid id")
    v["cooperative_id"] = coop or None
    v["cooperative_name"] = text("cooperative_name", required=bool(coop)) or None
    pa = (raw.get("poverty_alleviated") or "").strip().lower()
    if pa in _TRUE:
        v["poverty_alleviated"] = True
    elif pa in _FALSE:
        v["poverty_alleviated"] = False
    else:
        err(f"poverty_alleviated={pa!r} is not true/false")
    members = (raw.get("household_members") or "").strip()
    v["household_members"] = number("household_members", int, 1, 50) if members else 1
    v["area_mu"] = number("area_mu", float, 0.01, 100_000)
    v["elevation_m"] = number("elevation_m", int, 0, 3000)
    v["lat"] = number("lat", float, -90, 90)
    v["lon"] = number("lon", float, -180, 180)
    v["planting_year"] = number("planting_year", int, 1950, 2100)
    v["tree_count"] = number("tree_count", int, 0, 10_000_000)
    v["variety"] = text("variety", required=False) or "巫山脆李"
    dev = text("device_id", required=False)
    eui = text("dev_eui", required=False).lower()
    if dev and not _ID.match(dev):
        err(f"device_id={dev!r} is not a valid id")
    if eui and not _EUI.match(eui):
        err(f"dev_eui={eui!r} is not 16 hex digits")
    if eui and not dev:
        err("dev_eui given without device_id")
    v["device_id"], v["dev_eui"] = dev or None, eui or None
    return v, errs


def parse_csv(text: str | TextIO, townships: set[str]) -> list[dict[str, Any]]:
    """Parse and validate a registry CSV; raise :class:`CsvImportError` listing every bad row."""
    f = io.StringIO(text) if isinstance(text, str) else text
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.DictReader(f)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise CsvImportError([RowError(1, f"unreadable header ({exc})")]) from None
    missing = [c for c in COLUMNS if c not in header and c not in ("household_members", "variety", "dev_eui",
                                                                     "device_id", "grower_phone",
                                                                     "cooperative_id", "cooperative_name")]
    if missing:
        raise CsvImportError([RowError(1, f"missing column(s): {', '.join(missing)}")])
    rows: list[dict[str, Any]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    seen_dev: dict[str, int] = {}
    while True:
        start = reader.line_num + 1  # the line the next row begins on
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a cell over the field size limit: the reader skips to the next row
            errors.append(RowError(start, f"unreadable row ({exc}; a cell may hold at most "
                                                    f"{MAX_FIELD_CHARS} characters)"))
            continue
        line = reader.line_num
        if None in raw:  # more cells than header columns
            errors.append(RowError(line, "more cells than header columns"))
            continue
        if any(raw.get(c) is None for c in header):
            errors.append(RowError(line, "fewer cells than header columns"))
            continue
        nul = [c for c, x in raw.items() if x and "\x00" in x]
        if nul:
            errors.append(RowError(line, f"NUL character in {', '.join(nul)}"))
            continue
        v, errs = _parse_row(line, {c: restore_formula(x) if x else x for c, x in raw.items()}, townships)
        oid = v.get("orchard_id")
        if oid and oid in seen:
            errs.append(RowError(line, f"orchard_id {oid} repeats line {seen[oid]}"))
        elif oid:
            seen[oid] = line
        dev = v.get("device_id")
        if dev and dev in seen_dev:
            errs.append(RowError(line, f"device_id {dev} repeats line {seen_dev[dev]}"))
        elif dev:
            seen_dev[dev] = line
        errors.extend(errs)
        v["_line"] = line
        rows.append(v)
    if errors:
        raise CsvImportError(errors)
    return rows


def import_csv(conn: psycopg.Connection, text: str | TextIO) -> int:
    """Validate then apply a registry CSV atomically; returns the number of orchards imported."""
    known = [{"township_id": t[0], "name_zh": t[1], "name_en": t[2], "lat": t[3], "lon": t[4]} for t in TOWNSHIPS]
    with conn.transaction():
        upsert(conn, RegistryData(known, [], [], [], [], []))
    townships = {r[0] for r in conn.execute("SELECT township_id FROM townships").fetchall()}
    rows = parse_csv(text, townships)
    data = RegistryData([], [], [], [], [], [])
    coops: dict[str, dict[str, Any]] = {}
    hhs: dict[str, dict[str, Any]] = {}
    growers: dict[str, dict[str, Any]] = {}
    for v in rows:
        if v["cooperative_id"]:
            coops[v["cooperative_id"]] = {"cooperative_id": v["cooperative_id"], "name": v["cooperative_name"],
                                         "township_id": v["township_id"]}
        hhs[v["household_id"]] = {"household_id": v["household_id"], "head_name": v["grower_name"],
                                  "township_id": v["township_id"], "poverty_alleviated": v["poverty_alleviated"],
                                  "members": v["household_members"]}
        growers[v["grower_id"]] = {"grower_id": v["grower_id"], "name": v["grower_name"], "phone": v["grower_phone"],
                                   "household_id": v["household_id"], "cooperative_id": v["cooperative_id"]}
        data.orchards.append({
            "orchard_id": v["orchard_id"], "name": v["orchard_name"], "grower_id": v["grower_id"],
            "cooperative_id": v["cooperative_id"], "township_id": v["township_id"], "area_mu": v["area_mu"],
            "elevation_m": v["elevation_m"], "lat": v["lat"], "lon": v["lon"],
            "planting_year": v["planting_year"], "tree_count": v["tree_count"], "variety": v["variety"],
        })
        if v["device_id"]:
            data.devices.append({"device_id": v["device_id"], "orchard_id": v["orchard_id"],
                                 "dev_eui": v["dev_eui"], "model": "YC-GW1"})
    data.cooperatives = list(coops.values())
    data.households = list(hhs.values())
    data.growers = list(growers.values())
    try:
        with conn.transaction():
            upsert(conn, data)
    except psycopg.errors.IntegrityError as exc:
        raise CsvImportError([RowError(0, f"conflicts with existing registry data: {exc.diag.message_primary}")]) \
            from exc
    return len(data.orchards)
