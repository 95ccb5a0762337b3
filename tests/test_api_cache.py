# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""The short response cache of conditions and charts: validators (ETag / If-None-Match → 304),
bounded staleness, and access control checked before any cached body is served."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from test_web_fixtures import SAMPLE_GROWER, bearer, client, sample, token_for, web_app, web_db  # noqa: F401

from registry.alerts import Alert, raise_alerts, resolve_alerts
from yuncang.app import create_app
from yuncang.db import make_pool
from yuncang.settings import Settings
from yuncang.web.cache import TtlCache, etag_matches


def _paths(oid: str) -> list[str]:
    return [
        f"/api/v1/orchards/{oid}/conditions",
        f"/api/v1/orchards/{oid}/series?days=7&metric=air_temp_c&metric=rain_mm",
    ]


def test_if_none_match_gives_304_without_body(client: TestClient, sample: dict[str, Any]) -> None:
    h = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    for path in _paths(sample["orchard_id"]):
        first = client.get(path, headers=h)
        assert first.status_code == 200 and first.json()["orchard_id"] == sample["orchard_id"]
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        assert first.headers["cache-control"].startswith("private, max-age=")
        assert "Authorization" in first.headers["vary"]
        again = client.get(path, headers={**h, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        weak_in_list = client.get(path, headers={**h, "If-None-Match": f'"nope", W/{etag}'})
        assert weak_in_list.status_code == 304
        other = client.get(path, headers={**h, "If-None-Match": '"not-the-current-one"'})
        assert other.status_code == 200 and other.json() == first.json()


def test_long_bodies_are_gzip_coded_for_clients_that_accept_it(client: TestClient, sample: dict[str, Any]) -> None:
    h = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    path = _paths(sample["orchard_id"])[1]  # a 7-day chart: tens of KB of JSON
    plain = client.get(path, headers={**h, "Accept-Encoding": "identity"})
    coded = client.get(path, headers={**h, "Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers and coded.headers["content-encoding"] == "gzip"
    assert coded.json() == plain.json()  # httpx decodes the gzip body
    assert int(coded.headers["content-length"]) * 4 < int(plain.headers["content-length"])
    assert coded.headers["etag"] != plain.headers["etag"] and "Accept-Encoding" in coded.headers["vary"]
    refused = client.get(path, headers={**h, "Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_cache_never_bypasses_access_control(client: TestClient, sample: dict[str, Any]) -> None:
    """A body cached for its owner (and for the admin) is refused to another grower and to a buyer —
    with or without its ETag — and to nobody signed in."""
    owner = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    admin = bearer(token_for(client, "admin", role="admin"))
    intruder = bearer(token_for(client, "G-00002", role="grower"))
    buyer = bearer(token_for(client, "buyer-test-a-user", "correct horse battery"))
    for path in _paths(sample["orchard_id"]):
        cached = client.get(path, headers=owner)
        assert cached.status_code == 200
        assert client.get(path, headers=admin).headers["etag"] == cached.headers["etag"]  # same cached body
        etag = cached.headers["etag"]
        for who in (intruder, {**intruder, "If-None-Match": etag}):
            r = client.get(path, headers=who)
            assert r.status_code == 403 and sample["orchard_id"] in r.json()["detail"]
            assert "metrics" not in r.text and "series" not in r.text
        assert client.get(path, headers={**buyer, "If-None-Match": etag}).status_code == 403
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 401
    assert client.get("/api/v1/orchards/NO-SUCH/conditions", headers=admin).status_code == 404


@pytest.fixture
def short_ttl_client(web_db: str) -> Iterator[TestClient]:
    pool = make_pool(web_db, min_size=1, max_size=2, name="cache-tests")
    app = create_app(Settings(database_url=web_db, api_cache_ttl_s=1.0), pool)
    with TestClient(app) as c:
        yield c
    pool.close()


def test_staleness_is_bounded_by_the_ttl(short_ttl_client: TestClient, web_db: str) -> None:
    """A new alert shows in conditions' open_alerts at most ttl seconds later, with a new ETag."""
    c = short_ttl_client
    h = bearer(token_for(c, "G-00009", role="grower"))
    oid = c.get("/api/v1/orchards", headers=h).json()["items"][0]["orchard_id"]
    path = f"/api/v1/orchards/{oid}/conditions"
    before = c.get(path, headers=h)
    assert before.status_code == 200
    with psycopg.connect(web_db) as conn:
        raise_alerts(conn, [Alert(dedupe_key=f"cache-test:{oid}", kind="cache-test", severity="info",
                                  title_zh="缓存测试", title_en="cache test", orchard_id=oid)])
        conn.commit()
    try:
        t0 = time.monotonic()
        while True:
            now = c.get(path, headers={**h, "If-None-Match": before.headers["etag"]})
            if now.status_code == 200:
                break
            assert now.status_code == 304 and time.monotonic() - t0 < 1.5, "stale beyond the 1 s TTL"
            time.sleep(0.05)
        assert now.json()["open_alerts"] == before.json()["open_alerts"] + 1
        assert now.headers["etag"] != before.headers["etag"]
    finally:
        with psycopg.connect(web_db) as conn:
            resolve_alerts(conn, kind="cache-test", keep_open=set())
            conn.commit()


def test_ttl_cache_fills_once_for_concurrent_misses_and_never_caches_errors() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def slow_fill() -> str:
        calls.append(1)
        gate.wait(5)
        return "body"

    def failing() -> str:
        calls.append(1)
        raise ValueError("database down")

    async def go() -> None:
        cache: TtlCache[str] = TtlCache(ttl_s=30)
        waiters = [asyncio.create_task(cache.get("k", slow_fill)) for _ in range(20)]
        await asyncio.sleep(0.2)
        gate.set()
        assert [v for _, v in await asyncio.gather(*waiters)] == ["body"] * 20
        assert len(calls) == 1 and cache.misses == 1
        calls.clear()
        for _ in range(2):
            with pytest.raises(ValueError):
                await cache.get("bad", failing)
        assert len(calls) == 2  # the error was not remembered
        off: TtlCache[str] = TtlCache(ttl_s=0)
        calls.clear()
        gate.set()
        await off.get("k", slow_fill)
        await off.get("k", slow_fill)
        assert len(calls) == 2  # ttl 0: no caching at all

    asyncio.run(go())


def test_ttl_cache_refreshes_ahead_in_the_background() -> None:
    """A value past refresh_at × ttl is served at once while one background fill replaces it; a value is
    never served ttl seconds after its fill started."""
    n = [0]

    def fill() -> int:
        n[0] += 1
        return n[0]

    async def go() -> None:
        cache: TtlCache[int] = TtlCache(ttl_s=1.0, refresh_at=0.5)  # refreshes due at 0.5-0.75 s
        assert (await cache.get("k", fill))[1] == 1
        assert (await cache.get("k", fill))[1] == 1 and n[0] == 1  # young: no refresh
        await asyncio.sleep(0.8)
        age, v = await cache.get("k", fill)
        assert v == 1 and 0.75 <= age < 1.0  # old but fresh: served at once...
        await asyncio.sleep(0.1)
        assert n[0] == 2  # ...and refreshed once in the background
        age, v = await cache.get("k", fill)
        assert v == 2 and age < 0.5
        await asyncio.sleep(1.1)
        age, v = await cache.get("k", fill)
        assert v == 3 and age == 0.0  # expired: filled in the request

    asyncio.run(go())


def test_nul_characters_are_refused_before_any_handler(client: TestClient, sample: dict[str, Any]) -> None:
    h = bearer(token_for(client, "admin", role="admin"))
    base = f"/api/v1/orchards/{sample['orchard_id']}"
    assert client.get(f"{base}/series?metric=air_temp_c%00", headers=h).status_code == 422
    assert client.get("/api/v1/orchards/WS-0001%00/conditions", headers=h).status_code == 422
    assert client.get(f"{base}/conditions", headers=h).status_code == 200


def test_etag_comparison() -> None:
    assert etag_matches('"a"', '"a"') and etag_matches('W/"a"', '"a"') and etag_matches("*", '"a"')
    assert etag_matches('"b", "a"', '"a"') and not etag_matches('"b"', '"a"') and not etag_matches("", '"a"')


def test_no_two_routers_claim_the_same_request(web_app: Any) -> None:
    """Routers are matched hottest first (ROUTER_ORDER); that is only safe while every documented
    method + path is fully matched by exactly one of them."""
    import re

    from starlette.routing import Match

    checked = 0
    for path, ops in web_app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "X-1", path)
        for method in ops:
            scope = {"type": "http", "method": method.upper(), "path": concrete, "root_path": "", "headers": []}
            full = [r for r in web_app.router.routes if r.matches(scope)[0] == Match.FULL]
            assert len(full) == 1, (method, path, full)
            checked += 1
    assert checked >= 25
