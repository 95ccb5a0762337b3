"""`yuncang users` creates accounts that can sign in, and refuses weak passwords."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import psycopg

from registry.seed import SeedParams, seed
from yuncang.auth import authenticate
from yuncang.migrations import migrate


def test_users_create_then_sign_in(make_database: Callable[[], str]) -> None:
    url = make_database()
    migrate(url)
    with psycopg.connect(url) as c:
        seed(c, SeedParams(seed=4, orchard_count=5, total_area_mu=300.0))
    env = {**os.environ, "YUNCANG_DATABASE_URL": url, "YUNCANG_MQTT_URL": "mqtt://u:p@127.0.0.1:1"}
    ok = subprocess.run([sys.executable, "-m", "yuncang", "users", "create", "G-00003", "--role", "grower",
                         "--grower", "G-00003", "--password-stdin"], input="a-long-password\n", env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    weak = subprocess.run([sys.executable, "-m", "yuncang", "users", "create", "boss", "--role", "admin",
                           "--password-stdin"], input="short\n", env=env, capture_output=True, text=True,
                          timeout=120)
    assert weak.returncode == 2 and "at least 8" in weak.stderr
    with psycopg.connect(url) as c:
        assert authenticate(c, "G-00003", "a-long-password", ip="127.0.0.1") is not None
        assert authenticate(c, "G-00003", "wrong-password", ip="127.0.0.1") is None
        assert c.execute("SELECT count(*) FROM users WHERE username = 'boss'").fetchone()[0] == 0
