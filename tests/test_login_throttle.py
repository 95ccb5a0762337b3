"""Login throttling that strangers cannot abuse (issue 14 #1): X-Forwarded-For believed only from
configured proxies, per account+address backoff, a much higher account-wide ceiling, and a known-good
client (device cookie) whose correct password is never locked out."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from yuncang.app import create_app
from yuncang.auth import create_user
from yuncang.db import make_pool
from yuncang.login_throttle import BACKOFF_BASE_S, DEVICE_COOKIE, FREE_FAILS, MAX_FAILS_PER_DEVICE, MAX_FAILS_PER_USER
from yuncang.settings import Settings
from yuncang.web.client_address import client_address, parse_trusted

PW = "persimmon-ladder-3380"


@pytest.fixture(scope="module")
def throttle_db(make_registry_db: Callable[..., str]) -> str:
    url = make_registry_db(seed_no=17, orchards=4, area_mu=400.0)
    with psycopg.connect(url) as c:
        for name in ("victim", "rotator", "backoff", "devicey"):
            create_user(c, username=name, password=PW, role="admin")
        c.commit()
    return url


@pytest.fixture(scope="module")
def app(throttle_db: str) -> Iterator[object]:
    pool = make_pool(throttle_db, min_size=1, max_size=3, name="throttle-tests")
    yield create_app(Settings(database_url=throttle_db), pool)
    pool.close()


def _try(c: TestClient, user: str, pw: str, **headers: str) -> int:
    return c.post("/api/v1/auth/token", json={"username": user, "password": pw}, headers=headers).status_code


def _sql(url: str, sql: str, *args: object) -> None:
    with psycopg.connect(url) as c:
        c.execute(sql, args)


def test_rotating_x_forwarded_for_does_not_escape_the_limit(app: object) -> None:
    with TestClient(app) as c:
        codes = [_try(c, "rotator", "wrong-guess", **{"X-Forwarded-For": f"203.0.113.{k}"}) for k in range(6)]
    assert codes[:FREE_FAILS] == [401] * FREE_FAILS and set(codes[FREE_FAILS:]) == {429}


def test_trusted_proxy_rules() -> None:
    none = parse_trusted("")
    proxy = parse_trusted("10.0.0.5, 172.28.0.0/24")
    assert client_address("198.51.100.7", ["1.2.3.4"], none) == "198.51.100.7"  # no proxies: the peer
    assert client_address("198.51.100.7", ["1.2.3.4"], proxy) == "198.51.100.7"  # peer is not a proxy
    assert client_address("10.0.0.5", ["1.2.3.4"], proxy) == "1.2.3.4"
    # the client wrote a fake first hop; the proxy appended the real address: the right-most untrusted wins
    assert client_address("10.0.0.5", ["6.6.6.6, 1.2.3.4"], proxy) == "1.2.3.4"
    assert client_address("10.0.0.5", ["6.6.6.6, 1.2.3.4, 172.28.0.9"], proxy) == "1.2.3.4"
    assert client_address("10.0.0.5", ["not-an-ip"], proxy) == "10.0.0.5"
    with pytest.raises(ValueError):
        Settings(trusted_proxies="10.0.0.300")


def test_backoff_grows_and_ends(app: object, throttle_db: str) -> None:
    with TestClient(app) as c:
        assert [_try(c, "backoff", "nope-nope") for _ in range(FREE_FAILS)] == [401] * FREE_FAILS
        r = c.post("/api/v1/auth/token", json={"username": "backoff", "password": PW})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= BACKOFF_BASE_S
        # the wait passes (failures moved 20 s into the past instead of sleeping): the right password works
        _sql(throttle_db, "UPDATE login_failures SET failed_at = failed_at - interval '20 seconds'")
        assert _try(c, "backoff", PW) == 200


def test_strangers_cannot_lock_out_a_known_good_client(app: object, throttle_db: str) -> None:
    with TestClient(app) as owner, TestClient(app) as stranger:
        assert _try(owner, "victim", PW) == 200  # the owner's browser/app signed in once: it is known
        assert owner.cookies.get(DEVICE_COOKIE)
        # a distributed attack: the account-wide ceiling is reached from many addresses
        _sql(throttle_db, "INSERT INTO login_failures (scope, subject) SELECT 'user', 'victim' "
             "FROM generate_series(1, %s)", MAX_FAILS_PER_USER)
        assert _try(stranger, "victim", PW) == 429  # an unknown client waits, even with the password
        assert _try(owner, "victim", PW) == 200  # the owner is never locked out
        # and the owner's own typos are counted per device, not per account
        assert _try(owner, "victim", "typo-typo") == 401
        assert _try(owner, "victim", PW) == 200
        # a stolen device cookie does not open the door to guessing: it is retired after its own limit
        thief = TestClient(app)
        thief.cookies.set(DEVICE_COOKIE, owner.cookies.get(DEVICE_COOKIE) or "")
        codes = [_try(thief, "victim", f"guess-{k}") for k in range(MAX_FAILS_PER_DEVICE + 1)]
        assert codes[:MAX_FAILS_PER_DEVICE] == [401] * MAX_FAILS_PER_DEVICE and codes[-1] == 429
        thief.close()


def test_a_device_cookie_counts_only_for_its_own_account(app: object) -> None:
    with TestClient(app) as c:
        assert _try(c, "devicey", PW) == 200
        # the cookie is devicey's: guessing another account from this client is throttled as usual
        codes = [_try(c, "ghost-account", "other-guess") for _ in range(FREE_FAILS + 1)]
        assert codes[-1] == 429


def test_one_shared_phone_is_known_good_for_every_account_signed_in_on_it(app: object, throttle_db: str) -> None:
    with psycopg.connect(throttle_db) as c:
        for name in ("family-a", "family-b"):
            create_user(c, username=name, password=PW, role="admin")
        c.commit()
    with TestClient(app) as phone, TestClient(app) as stranger:
        assert _try(phone, "family-a", PW) == 200
        cookie = phone.cookies.get(DEVICE_COOKIE)
        assert _try(phone, "family-b", PW) == 200 and phone.cookies.get(DEVICE_COOKIE) == cookie  # same cookie
        _sql(throttle_db, "INSERT INTO login_failures (scope, subject) SELECT 'user', u "
             "FROM generate_series(1, %s), unnest(ARRAY['family-a', 'family-b']) AS u", MAX_FAILS_PER_USER)
        assert _try(stranger, "family-a", PW) == 429 and _try(stranger, "family-b", PW) == 429
        assert _try(phone, "family-a", PW) == 200 and _try(phone, "family-b", PW) == 200
