"""``yuncang forecast``: run the supply forecast for all orchards now (or as of a given time) and store it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from yuncang.settings import Settings


def _parse_as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SystemExit(f"--as-of: not an ISO date/time: {text!r} "
                         "(e.g. 2026-05-20 or 2026-05-20T02:00+08:00)") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _run(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from orchard_models.run import forecast_all
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    as_of = _parse_as_of(a.as_of)
    with Services(s) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            alerts = None if a.alerts is None else a.alerts == "on"
            run_id = forecast_all(conn, as_of, a.season, alerts=alerts)
            row = conn.execute(
                "SELECT season, orchard_count, (SELECT sum(total_p10_kg) FROM forecast_orchards WHERE run_id = %s),"
                " (SELECT sum(total_p50_kg) FROM forecast_orchards WHERE run_id = %s),"
                " (SELECT sum(total_p90_kg) FROM forecast_orchards WHERE run_id = %s),"
                " (SELECT min(harvest_start) FROM forecast_orchards WHERE run_id = %s),"
                " (SELECT max(harvest_end) FROM forecast_orchards WHERE run_id = %s), meta->'county_total_kg'"
                " FROM forecast_runs WHERE run_id = %s", (run_id,) * 6).fetchone()
    assert row is not None
    season, n, p10, p50, p90, hs, he, county = row
    if county:  # the county total's own interval (not the sum of the orchards' quantiles)
        p10, p90 = county["p10"], county["p90"]
    print(f"forecast run {run_id}: season {season}, {n} orchards, as of {as_of.isoformat()}")
    print(f"  county total P10/P50/P90: {p10 / 1000:,.0f} / {p50 / 1000:,.0f} / {p90 / 1000:,.0f} t;"
          f" harvest {hs} .. {he}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("forecast", help="forecast every orchard's supply (kg by week and grade) and store the run")
    p.add_argument("--as-of", dest="as_of", default=None,
                   help="information cut-off, ISO date/time (default: now); later data are ignored")
    p.add_argument("--season", type=int, default=None, help="harvest year (default: the season running at --as-of)")
    p.add_argument("--alerts", choices=["on", "off"], default=None,
                   help="raise risk alerts (default: only when --as-of is within 2 days of now)")
    p.set_defaults(func=_run)
