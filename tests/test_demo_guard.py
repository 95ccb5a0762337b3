"""`yuncang demo` does not seed the published demo accounts into a real database by accident (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import psycopg

from yuncang.cli import demo_refusal
from yuncang.settings import Settings


def test_demo_refuses_a_real_database_without_the_flag(make_database: Callable[[], str]) -> None:
    url = make_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNCANG_")}
    env.update({"YUNCANG_DATABASE_URL": url, "YUNCANG_MQTT_URL": "mqtt://u:p@127.0.0.1:1"})
    r = subprocess.run([sys.executable, "-m", "yuncang", "demo", "--for", "5"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "--allow-demo-accounts-on-real-db" in r.stderr
    with psycopg.connect(url) as c:  # nothing touched: not even migrated, no accounts
        assert c.execute("SELECT to_regclass('users')").fetchone() == (None,)


def test_demo_runs_on_embedded_or_with_the_explicit_flag() -> None:
    assert demo_refusal(Settings(database_url=None), allow_real_db=False) is None
    real = Settings(database_url="postgresql://postgres@127.0.0.1:5432/demo")
    assert demo_refusal(real, allow_real_db=False)
    assert demo_refusal(real, allow_real_db=True) is None
