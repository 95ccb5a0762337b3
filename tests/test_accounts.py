"""Accounts: `yuncang users passwd/disable/enable/revoke`, no silent overwrite, and every session and
token ending when a password changes or an account is disabled (issue 14, finding 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from yuncang.app import create_app
from yuncang.auth import UserExists, authenticate, create_user, issue_token, revoke_sessions, set_disabled, set_password
from yuncang.db import make_pool
from yuncang.settings import Settings

PW = "orchard-ridge-4417"
NEW_PW = "harvest-moon-9023"


@pytest.fixture(scope="module")
def accounts_db(make_registry_db: Callable[..., str]) -> str:
    return make_registry_db()


@pytest.fixture(scope="module")
def client(accounts_db: str) -> Iterator[TestClient]:
    pool = make_pool(accounts_db, min_size=1, max_size=3, name="accounts-tests")
    with TestClient(create_app(Settings(database_url=accounts_db), pool)) as c:
        yield c
    pool.close()


def _cli(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YUNCANG_DATABASE_URL": url, "YUNCANG_MQTT_URL": "mqtt://u:p@127.0.0.1:1"}
    return subprocess.run([sys.executable, "-m", "yuncang", "users", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def _bearer(url: str, username: str) -> str:
    with psycopg.connect(url) as c:
        uid = c.execute("SELECT user_id FROM users WHERE username = %s", (username,)).fetchone()[0]  # type: ignore[index]
        tok, _ = issue_token(c, uid, "bearer")
    return tok


def test_cli_create_refuses_to_overwrite_and_passwd_ends_old_tokens(accounts_db: str, client: TestClient) -> None:
    ok = _cli(accounts_db, "create", "cli-admin", "--role", "admin", "--password-stdin", stdin=PW + "\n")
    assert ok.returncode == 0, ok.stderr
    again = _cli(accounts_db, "create", "cli-admin", "--role", "admin", "--password-stdin", stdin=NEW_PW + "\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    with psycopg.connect(accounts_db) as c:
        assert authenticate(c, "cli-admin", PW, ip="10.0.0.1") is not None  # the old password still holds
        c.commit()
    old = _bearer(accounts_db, "cli-admin")  # a 30-day API token issued before the change
    ch = _cli(accounts_db, "passwd", "cli-admin", "--password-stdin", stdin=NEW_PW + "\n")
    assert ch.returncode == 0 and "1 session" in ch.stdout, ch.stderr
    assert _me(client, old) == 401
    with psycopg.connect(accounts_db) as c:
        assert authenticate(c, "cli-admin", PW, ip="10.0.0.1") is None
        assert authenticate(c, "cli-admin", NEW_PW, ip="10.0.0.1") is not None
        c.commit()
    # --force overwrites on purpose, and ends the tokens of the account it overwrote
    tok = _bearer(accounts_db, "cli-admin")
    forced = _cli(accounts_db, "create", "cli-admin", "--role", "admin", "--force", "--password-stdin",
                  stdin=PW + "\n")
    assert forced.returncode == 0 and "overwritten" in forced.stdout, forced.stderr
    assert _me(client, tok) == 401
    missing = _cli(accounts_db, "passwd", "nobody-here", "--password-stdin", stdin=NEW_PW + "\n")
    assert missing.returncode == 2 and "no user" in missing.stderr


def _signed_in(client: TestClient, username: str, password: str) -> str:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    tok = str(r.json()["token"])
    assert _me(client, tok) == 200  # now in the web process's token cache too
    return tok


@pytest.mark.parametrize("how", ["passwd", "disable", "revoke"])
def test_every_session_and_token_ends(accounts_db: str, client: TestClient, how: str) -> None:
    name = f"acct-{how}"
    with psycopg.connect(accounts_db) as c:
        create_user(c, username=name, password=PW, role="grower", grower_id="G-00001")
    toks = [_signed_in(client, name, PW) for _ in range(2)]
    r = client.post("/login", data={"username": name, "password": PW})  # no CSRF: refused, nothing issued
    assert r.status_code == 403
    with psycopg.connect(accounts_db) as c:
        act: dict[str, Callable[[], Any]] = {"passwd": lambda: set_password(c, name, NEW_PW),
                                             "disable": lambda: set_disabled(c, name),
                                             "revoke": lambda: revoke_sessions(c, name)}
        assert act[how]() == 2
    assert [_me(client, t) for t in toks] == [401, 401]
    if how == "disable":
        r = client.post("/api/v1/auth/token", json={"username": name, "password": PW})
        assert r.status_code == 401
        with psycopg.connect(accounts_db) as c:
            set_disabled(c, name, False)
        assert [_me(client, t) for t in toks] == [401, 401]  # enabling again does not bring old tokens back
    _signed_in(client, name, NEW_PW if how == "passwd" else PW)


def test_create_user_never_overwrites_silently(accounts_db: str) -> None:
    with psycopg.connect(accounts_db) as c:
        create_user(c, username="dup-user", password=PW, role="grower", grower_id="G-00002")
        with pytest.raises(UserExists):
            create_user(c, username="dup-user", password=NEW_PW, role="admin")
        assert c.execute("SELECT role FROM users WHERE username = 'dup-user'").fetchone() == ("grower",)
