"""Registry CSV against hostile files: NUL bytes, huge cells, over-long names, spreadsheet formulas
(issue 14). Bad input is a line-numbered error list, never a traceback; formulas never reach a spreadsheet
live, and export → import gives back the same values (property-based)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.csv_io import (
    COLUMNS,
    MAX_NAME_CHARS,
    CsvImportError,
    export_csv,
    import_csv,
    neutralise_formula,
    parse_csv,
    restore_formula,
    write_csv,
)
from yuncang.migrations import migrate

TOWNSHIPS = {"quchi", "shuanglong"}


@pytest.fixture(scope="module")
def small_registry(make_registry_db: Callable[..., str]) -> str:
    return make_registry_db(seed_no=7, orchards=8, area_mu=800.0)


def _export(url: str) -> str:
    buf = io.StringIO()
    with psycopg.connect(url) as c:
        export_csv(c, buf)
    return buf.getvalue()


def _rows(url: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_export(url))))


def _write(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def _errors(text: str) -> dict[int, str]:
    with pytest.raises(CsvImportError) as ei:
        parse_csv(text, TOWNSHIPS | {"quchi"})
    return {e.line: e.reason for e in ei.value.errors}


def test_nul_huge_cell_and_long_names_are_line_numbered_errors(small_registry: str) -> None:
    rows = _rows(small_registry)
    rows[0]["grower_name"] = "冉\x00国"                    # line 2
    rows[1]["orchard_name"] = "x" * (140 * 1024)           # line 3: over the 128 KiB cell limit
    rows[2]["orchard_name"] = "果" * (MAX_NAME_CHARS + 1)  # line 4
    rows[3]["grower_phone"] = "call me maybe"             # line 5
    rows[4]["area_mu"] = "abc"                            # line 6: still found after the unreadable row
    rows[5]["orchard_name"] = "果" * MAX_NAME_CHARS        # line 7: exactly at the limit is fine
    townships = {r["township_id"] for r in rows}
    with pytest.raises(CsvImportError) as ei:
        parse_csv(_write(rows), townships)
    lines = {e.line: e.reason for e in ei.value.errors}
    assert set(lines) == {2, 3, 4, 5, 6}, lines
    assert "NUL" in lines[2] and "grower_name" in lines[2]
    assert "131072" in lines[3] or "field" in lines[3]
    assert "orchard_name" in lines[4] and "at most 100" in lines[4]
    assert "grower_phone" in lines[5] and "area_mu" in lines[6]


def test_cli_lists_errors_without_a_traceback(small_registry: str, tmp_path: Path) -> None:
    rows = _rows(small_registry)
    rows[2]["grower_name"] = "a\x00b"
    rows[4]["orchard_name"] = "y" * (200 * 1024)
    bad = tmp_path / "bad.csv"
    bad.write_text(_write(rows), encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(_write(rows[:1]).replace("a\x00b", "").encode("utf-8") + b"\xff\xfe,broken\n")
    env = {**os.environ, "YUNCANG_DATABASE_URL": small_registry, "YUNCANG_MQTT_URL": "mqtt://u:p@127.0.0.1:1"}
    for path, expect in ((bad, ["line 4: NUL", "line 6: unreadable row"]), (latin, ["not UTF-8"])):
        r = subprocess.run([sys.executable, "-m", "yuncang", "registry", "import", str(path)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert all(e in r.stderr for e in expect), r.stderr[-2000:]


FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"点我\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
            "'=already quoted", "'plain apostrophe", "\t=tab"]


def test_export_neutralises_formulas_and_import_round_trips(small_registry: str,
                                                            make_database: Callable[[], str]) -> None:
    rows = _rows(small_registry)
    for r, f in zip(rows, FORMULAS, strict=False):
        r["orchard_name"] = f.strip()
        r["grower_name"] = f"{f.strip()} 李"
    target = make_database()
    migrate(target)
    with psycopg.connect(target) as c:
        import_csv(c, _write(rows))
        c.commit()
        names = dict(c.execute("SELECT orchard_id, name FROM orchards").fetchall())
    # a hand-written '= is read as a spreadsheet reads it: the text "=..." (the ' only marks it as text)
    assert {restore_formula(f.strip()) for f in FORMULAS} - set(names.values()) == set()
    assert "'plain apostrophe" in names.values()
    exported = _rows(target)
    for cell in (r[col] for r in exported for col in ("orchard_name", "grower_name", "cooperative_name")):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell  # a spreadsheet shows text
    again = make_database()
    migrate(again)
    with psycopg.connect(again) as c:
        import_csv(c, _export(target))
        c.commit()
        assert dict(c.execute("SELECT orchard_id, name FROM orchards").fetchall()) == names
    assert _export(again) == _export(target)


_name = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=MAX_NAME_CHARS).filter(
    lambda s: s == s.strip() and s != "")
_formulaish = st.builds(lambda p, s: (p + s).strip() or "x", st.sampled_from(["=", "+", "-", "@", "'", "''", ""]),
                        _name)


@given(st.lists(st.tuples(_formulaish, _name, st.one_of(_formulaish, _name)), min_size=1, max_size=6))
@settings(max_examples=150, deadline=None)
def test_csv_round_trip_property(names: list[tuple[str, str, str]]) -> None:
    """write_csv → parse_csv returns every name as it was, whatever it starts with."""
    rows = [(f"O-{k}", orchard[:MAX_NAME_CHARS], "quchi", f"coop-{k}", coop[:MAX_NAME_CHARS], f"G-{k}",
             grower[:MAX_NAME_CHARS], "13800000000", f"H-{k}", k % 2 == 0, 3, 12.5, 600, 31.07, 109.88, 2015,
             300, "巫山脆李", f"D-{k}", f"{k:016x}")
            for k, (orchard, grower, coop) in enumerate(names)]
    buf = io.StringIO()
    write_csv(buf, rows)
    parsed = parse_csv(buf.getvalue(), {"quchi"})
    assert [(p["orchard_name"], p["grower_name"], p["cooperative_name"]) for p in parsed] == \
        [(r[1].strip(), r[6].strip(), r[4].strip()) for r in rows]


@given(st.text(max_size=30))
def test_neutralise_restore_inverse(s: str) -> None:
    cell = neutralise_formula(s)
    assert restore_formula(cell) == s
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
