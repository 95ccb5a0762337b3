"""``yuncang trace-page``: what consumers see on a cooperative's trace pages, and orchards' public names."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from yuncang.settings import Settings


def _run(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from registry.errors import DomainError
    from registry.trace_disclosure import DISCLOSABLE, set_public_name, set_trace_shows
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    with Services(s) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            try:
                if a.cooperative:
                    shows = None if a.show == "default" else [x.strip() for x in a.show.split(",") if x.strip()]
                    got = set_trace_shows(conn, a.cooperative, shows)
                    print(f"{a.cooperative}: trace pages show {', '.join(got) or 'nothing but the code'}")
                if a.orchard:
                    set_public_name(conn, a.orchard, a.public_name or None)
                    print(f"{a.orchard}: public name {'reset to the default' if not a.public_name else a.public_name}")
            except DomainError as exc:
                print(f"not saved: {exc}", file=sys.stderr)
                return 2
            if not a.cooperative and not a.orchard:
                print("facts a cooperative may show: " + ", ".join(DISCLOSABLE))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("trace-page", help="choose what consumers see on trace pages; set orchards' public names")
    p.add_argument("--cooperative", help="cooperative_id whose trace pages to configure")
    p.add_argument("--show", default="default",
                   help="comma-separated facts to show (township, elevation_band, variety, harvest_date, grade, "
                        "cooperative, certifications, conditions, risk_events), or 'default' for all")
    p.add_argument("--orchard", help="orchard_id whose public display name to set")
    p.add_argument("--public-name", default="", help="the orchard's public name (empty: township + orchard number)")
    p.set_defaults(func=_run)
