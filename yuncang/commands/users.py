"""``yuncang users``: create or update accounts, list them (passwords are read from a prompt or stdin)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from yuncang.settings import Settings


def _run(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from yuncang.auth import ROLES, create_user
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    with Services(s) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            if a.action == "list":
                rows = conn.execute("SELECT username, role, coalesce(grower_id, buyer_id, cooperative_id, '') "
                                    "FROM users ORDER BY role, username LIMIT %s", (a.limit,)).fetchall()
                for username, role, link in rows:
                    print(f"{role:8} {username:24} {link}")
                return 0
            if a.role not in ROLES:
                print(f"role must be one of {', '.join(ROLES)}", file=sys.stderr)
                return 2
            password = sys.stdin.readline().rstrip("\n") if a.password_stdin else getpass.getpass("password: ")
            try:
                uid = create_user(conn, username=a.username, password=password, role=a.role,
                                  grower_id=a.grower, buyer_id=a.buyer, cooperative_id=a.cooperative,
                                  display_name=a.name or a.username)
            except (ValueError, psycopg.Error) as exc:
                print(f"not saved: {exc}", file=sys.stderr)
                return 2
            print(f"user {a.username} saved (id {uid}, role {a.role})")
            return 0


def register(sub: Any) -> None:
    p = sub.add_parser("users", help="create/update a user account or list accounts")
    p.add_argument("action", choices=["create", "list"])
    p.add_argument("username", nargs="?", default="")
    p.add_argument("--role", default="grower", help="grower | buyer | manager | admin")
    p.add_argument("--grower", help="grower_id a grower account is linked to")
    p.add_argument("--buyer", help="buyer_id a buyer account is linked to")
    p.add_argument("--cooperative", help="cooperative_id a manager account is linked to")
    p.add_argument("--name", help="display name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--limit", type=int, default=200, help="rows to list")
    p.set_defaults(func=_run)
