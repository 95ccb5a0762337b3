"""Registry CSV: round trip, bad rows reported with line numbers, nothing half-imported."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import psycopg
import pytest

from registry.csv_io import COLUMNS, CsvImportError, export_csv, import_csv, parse_csv
from registry.seed import SeedParams, seed
from yuncang.migrations import migrate


@pytest.fixture
def seeded(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as c:
        seed(c, SeedParams(seed=3, orchard_count=60, total_area_mu=5000.0))
    return url


def _export(url: str) -> str:
    buf = io.StringIO()
    with psycopg.connect(url) as c:
        assert export_csv(c, buf) > 0
    return buf.getvalue()


def test_round_trip_into_empty_registry(seeded: str, make_database: Callable[[], str]) -> None:
    text = _export(seeded)
    target = make_database()
    migrate(target)
    with psycopg.connect(target) as c:
        assert import_csv(c, text) == 60
        c.commit()
    assert _export(target) == text


def test_bad_rows_reported_with_line_numbers_and_nothing_imported(seeded: str) -> None:
    rows = list(csv.DictReader(io.StringIO(_export(seeded))))
    rows[1]["area_mu"] = "abc"                 # line 3
    rows[4]["township_id"] = "atlantis"        # line 6
    rows[7]["elevation_m"] = "99999"           # line 9
    rows[8]["orchard_id"] = rows[0]["orchard_id"]  # line 10 repeats line 2
    rows[10]["area_mu"] = "12.5"                # a good change that must not land either
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    with psycopg.connect(seeded) as c:
        before = c.execute("SELECT sum(area_mu) FROM orchards").fetchone()[0]
        with pytest.raises(CsvImportError) as ei:
            import_csv(c, out.getvalue())
        lines = {e.line: e.reason for e in ei.value.errors}
        assert set(lines) == {3, 6, 9, 10}
        assert "area_mu" in lines[3] and "township" in lines[6] and "elevation_m" in lines[9]
        assert "repeats line 2" in lines[10]
        assert c.execute("SELECT sum(area_mu) FROM orchards").fetchone()[0] == before


def test_missing_columns_and_ragged_rows() -> None:
    with pytest.raises(CsvImportError, match="missing column"):
        parse_csv("orchard_id,orchard_name\nA,b\n", {"quchi"})
    header = ",".join(COLUMNS)
    with pytest.raises(CsvImportError) as ei:
        parse_csv(header + "\nA,b\n", {"quchi"})
    assert ei.value.errors[0].line == 2 and "fewer cells" in ei.value.errors[0].reason
