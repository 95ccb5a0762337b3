"""``yuncang trading ...``: demo data, allocation runs, supply offer, unsold-risk warnings, statements.

Every sub-command prints one JSON document (kg and fen as numbers) and exits 0 on success,
1 on a trading error (the message is printed on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from yuncang.settings import Settings


@contextmanager
def _connect(s: Settings) -> Iterator[psycopg.Connection]:
    from yuncang.migrations import migrate

    if s.database_url:
        url, emb = s.database_url, None
    else:
        from yuncang.embedded import EmbeddedPostgres

        emb = EmbeddedPostgres(s.data_dir / "pg")
        url = emb.start()
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn
    finally:
        if emb is not None:
            emb.stop()


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, date | datetime):
        return o.isoformat()
    if is_dataclass(o) and not isinstance(o, type):
        return asdict(o)
    return str(o)


def _wrap(fn: Callable[[psycopg.Connection, argparse.Namespace], Any]) -> Callable[[argparse.Namespace, Settings], int]:
    def run(a: argparse.Namespace, s: Settings) -> int:
        from trading.errors import TradingError

        try:
            with _connect(s) as conn:
                out = fn(conn, a)
        except TradingError as exc:
            print(f"{exc.code}: {exc.message}", file=sys.stderr)
            return 1
        print(json.dumps(out, default=_default, ensure_ascii=False, indent=2))
        return 0
    return run


def _seed(conn: psycopg.Connection, a: argparse.Namespace) -> Any:
    from trading.demo import seed_demo

    return seed_demo(conn, season=a.season, orders=a.orders)


def _allocate(conn: psycopg.Connection, a: argparse.Namespace) -> Any:
    from trading.allocation import allocate
    from trading.matching import MatchParams

    r = allocate(conn, season=a.season, run_id=a.run_id, confidence=a.confidence,
                 params=MatchParams(poverty_min_share=a.poverty_share, move_penalty_fen_per_kg=a.move_penalty,
                                    crate_kg=a.crate_kg, max_storage_weeks=a.max_storage_weeks))
    d = r.to_dict()
    d["orders_short"] = [o for o in d.pop("orders") if o["shortfall_kg"] > 0][:50]
    d["changes"] = len(d["changes"])
    return d


def _offer(conn: psycopg.Connection, a: argparse.Namespace) -> Any:
    from trading.allocation import supply_offer

    return supply_offer(conn, a.season)


def _warnings(conn: psycopg.Connection, a: argparse.Namespace) -> Any:
    from trading.warnings import evaluate_unsold_risk

    return evaluate_unsold_risk(conn, season=a.season, as_of=a.as_of or date.today(),
                                horizon_weeks=a.horizon_weeks)


def _statements(conn: psycopg.Connection, a: argparse.Namespace) -> Any:
    from trading.settlement import statements

    rep = statements(conn, season=a.season, cooperative_id=a.cooperative, grower_id=a.grower)
    return {"season": rep.season, "totals": rep.totals, "poverty_alleviated": rep.poverty_alleviated,
            "statements": rep.statements[: a.limit]}


def register(sub: Any) -> None:
    p = sub.add_parser("trading", help="forward orders, allocation, unsold-risk warnings, statements")
    tsub = p.add_subparsers(dest="trading_cmd", required=True)
    this_year = date.today().year

    s = tsub.add_parser("seed-demo", help="demo buyers, cold rooms and forward orders (idempotent)")
    s.add_argument("--season", type=int, default=this_year)
    s.add_argument("--orders", type=int, default=120)
    s.set_defaults(func=_wrap(_seed))

    s = tsub.add_parser("allocate", help="allocate the season's forecast supply to its orders")
    s.add_argument("--season", type=int, default=this_year)
    s.add_argument("--run-id", default=None, help="forecast run (default: the season's latest)")
    s.add_argument("--confidence", choices=("p10", "p50", "p90"), default="p10")
    s.add_argument("--poverty-share", type=float, default=0.25)
    s.add_argument("--move-penalty", type=float, default=20.0, help="fen per kg moved on re-allocation")
    s.add_argument("--crate-kg", type=float, default=10.0, help="orders are filled in whole crates of this many kg")
    s.add_argument("--max-storage-weeks", type=int, default=2, help="longest cold-storage hold, weeks")
    s.set_defaults(func=_wrap(_allocate))

    s = tsub.add_parser("offer", help="supply by week and grade: forecast, committed, still offered")
    s.add_argument("--season", type=int, default=this_year)
    s.set_defaults(func=_wrap(_offer))

    s = tsub.add_parser("warnings", help="evaluate unsold risk and raise alerts")
    s.add_argument("--season", type=int, default=this_year)
    s.add_argument("--as-of", type=date.fromisoformat, default=None)
    s.add_argument("--horizon-weeks", type=int, default=3)
    s.set_defaults(func=_wrap(_warnings))

    s = tsub.add_parser("statements", help="grower statements for a season (integer fen)")
    s.add_argument("--season", type=int, default=this_year)
    s.add_argument("--cooperative", default=None)
    s.add_argument("--grower", default=None)
    s.add_argument("--limit", type=int, default=20)
    s.set_defaults(func=_wrap(_statements))
