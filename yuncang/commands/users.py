"""``yuncang users``: create accounts, change passwords, disable/enable, sign out everywhere, list.

Passwords are read from a prompt or stdin, never from the command line. ``create`` never overwrites an
existing account unless ``--force`` is given; ``passwd``, ``disable`` (and ``--force`` on ``create``)
end every session and API token the account had.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from yuncang.settings import Settings


def _read_password(a: argparse.Namespace) -> str:
    if a.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass("password: ")


def _account_action(conn: Any, a: argparse.Namespace) -> str:
    """Run passwd/disable/enable/revoke; returns the message to print (raises ValueError/LookupError)."""
    from yuncang.auth import revoke_sessions, set_disabled, set_password

    if a.action == "passwd":
        n = set_password(conn, a.username, _read_password(a))
        return f"password of {a.username} changed; {n} session(s)/token(s) ended"
    if a.action in ("disable", "enable"):
        n = set_disabled(conn, a.username, a.action == "disable")
        return f"user {a.username} {a.action}d" + (f"; {n} session(s)/token(s) ended" if a.action == "disable" else "")
    n = revoke_sessions(conn, a.username)
    return f"{n} session(s)/token(s) of {a.username} ended"


def _run(a: argparse.Namespace, s: Settings) -> int:
    import psycopg

    from yuncang.auth import ROLES, create_user
    from yuncang.migrations import migrate
    from yuncang.runtime import Services

    if a.action != "list" and not a.username:
        print(f"`yuncang users {a.action}` needs a username", file=sys.stderr)
        return 2
    with Services(s) as svc:
        migrate(svc.database_url)
        with psycopg.connect(svc.database_url) as conn:
            if a.action == "list":
                rows = conn.execute("SELECT username, role, coalesce(grower_id, buyer_id, cooperative_id, ''), "
                                    "disabled FROM users ORDER BY role, username LIMIT %s", (a.limit,)).fetchall()
                for username, role, link, disabled in rows:
                    print(f"{role:8} {username:24} {link}" + (" (disabled)" if disabled else ""))
                return 0
            if a.action != "create":
                try:
                    print(_account_action(conn, a))
                except (ValueError, LookupError, psycopg.Error) as exc:
                    print(f"not saved: {exc}", file=sys.stderr)
                    return 2
                return 0
            if a.role not in ROLES:
                print(f"role must be one of {', '.join(ROLES)}", file=sys.stderr)
                return 2
            try:
                uid = create_user(conn, username=a.username, password=_read_password(a), role=a.role,
                                  grower_id=a.grower, buyer_id=a.buyer, cooperative_id=a.cooperative,
                                  display_name=a.name or a.username, replace=a.force)
            except (ValueError, psycopg.Error) as exc:
                print(f"not saved: {exc}", file=sys.stderr)
                return 2
            print(f"user {a.username} saved (id {uid}, role {a.role})"
                  + ("; it existed: overwritten, its sessions and tokens ended" if a.force else ""))
            return 0


def register(sub: Any) -> None:
    p = sub.add_parser("users", help="create accounts, change passwords, disable, sign out everywhere, list")
    p.add_argument("action", choices=["create", "passwd", "disable", "enable", "revoke", "list"],
                   help="create | passwd (ends all sessions) | disable (ends all sessions) | enable | "
                        "revoke (ends all sessions and tokens) | list")
    p.add_argument("username", nargs="?", default="")
    p.add_argument("--role", default="grower", help="grower | buyer | manager | admin")
    p.add_argument("--grower", help="grower_id a grower account is linked to")
    p.add_argument("--buyer", help="buyer_id a buyer account is linked to")
    p.add_argument("--cooperative", help="cooperative_id a manager account is linked to")
    p.add_argument("--name", help="display name")
    p.add_argument("--force", action="store_true",
                   help="create: overwrite an existing account (its sessions and tokens end)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--limit", type=int, default=200, help="rows to list")
    p.set_defaults(func=_run)
