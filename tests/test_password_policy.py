"""Password strength and one length limit for create and sign-in (issue 14, finding 4)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import psycopg
import pytest

from yuncang.auth import DEMO_PASSWORDS, WeakPassword, authenticate, create_user, seed_demo_users, set_password
from yuncang.password_policy import MAX_PASSWORD_BYTES


@pytest.fixture(scope="module")
def pw_db(make_registry_db: Callable[..., str]) -> str:
    return make_registry_db(seed_no=5, orchards=4, area_mu=200.0)


@pytest.mark.parametrize("weak", ["12345678", "password", " " * 8, "\t \u3000 \n  \u00a0 ", "qwertyuiop",
                                  "G-00010G-00010", "wushan-plum", "plum-admin", "plum-grower"])
def test_weak_or_published_passwords_are_refused(pw_db: str, weak: str) -> None:
    with psycopg.connect(pw_db) as c:
        with pytest.raises(WeakPassword):
            create_user(c, username="G-00010", password=weak, role="admin")
        assert c.execute("SELECT count(*) FROM users WHERE username = 'G-00010'").fetchone() == (0,)
        create_user(c, username="weak-victim", password="tangerine-kite-3391", role="admin")
        with pytest.raises(WeakPassword):
            set_password(c, "weak-victim", weak)
        c.rollback()


def test_one_length_limit_for_create_and_sign_in(pw_db: str) -> None:
    longest = ("Plum-orchard harvest ledger 7Q " * 10)[:MAX_PASSWORD_BYTES]  # 128 bytes: accepted and usable
    assert len(longest.encode()) == MAX_PASSWORD_BYTES
    over = "é" * 65  # 130 bytes of UTF-8 (65 characters)
    with psycopg.connect(pw_db) as c:
        create_user(c, username="long-pw", password=longest, role="admin")
        with pytest.raises(WeakPassword, match="at most 128 bytes"):
            create_user(c, username="too-long-pw", password=over + "xZ9!kq", role="admin")
        c.commit()
        assert authenticate(c, "long-pw", longest, ip="10.1.1.1") is not None
        assert authenticate(c, "long-pw", longest + "x", ip="10.1.1.1") is None  # over the limit: never matches
        c.commit()


def test_passwords_compare_in_nfc(pw_db: str) -> None:
    composed = "Café-terrace-orchard-52"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    with psycopg.connect(pw_db) as c:
        create_user(c, username="nfc-user", password=decomposed, role="admin")
        c.commit()
        assert authenticate(c, "nfc-user", composed, ip="10.1.1.2") is not None
        assert authenticate(c, "nfc-user", decomposed, ip="10.1.1.2") is not None
        c.commit()


def test_demo_seeding_still_creates_the_published_accounts(pw_db: str) -> None:
    """The demo accounts keep their published passwords (seed_demo_users writes the hash itself; `yuncang demo`
    refuses to run it on a real database without --allow-demo-accounts-on-real-db)."""
    with psycopg.connect(pw_db) as c:
        created = seed_demo_users(c)
        c.commit()
        assert created["admin"] == 1 and created["grower"] == 4
        assert authenticate(c, "admin", DEMO_PASSWORDS["admin"], ip="10.1.1.3") is not None
        assert authenticate(c, "G-00001", DEMO_PASSWORDS["grower"], ip="10.1.1.3") is not None
        c.commit()
