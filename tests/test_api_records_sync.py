# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Farm records from a phone's outbox: a client-generated id makes every retry land once."""

from __future__ import annotations

import threading
import uuid
from datetime import date
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from test_web_fixtures import SAMPLE_GROWER, bearer, client, sample, token_for, web_app, web_db  # noqa: F401


def _count(web_db: str, cid: uuid.UUID) -> int:
    with psycopg.connect(web_db) as c:
        return int(c.execute("SELECT count(*) FROM farm_records r JOIN farm_record_submissions s USING (record_id) "
                             "WHERE s.client_id = %s", (cid,)).fetchone()[0])  # type: ignore[index]


def test_a_retried_outbox_record_is_stored_once(client: TestClient, web_db: str, sample: dict[str, Any]) -> None:
    h = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    url = f"/api/v1/orchards/{sample['orchard_id']}/records"
    cid = uuid.uuid4()
    body = {"observed_on": date.today().isoformat(), "kind": "pest", "value": 5, "note": "outbox 1",
            "client_id": str(cid)}
    first = client.post(url, json=body, headers=h)
    again = client.post(url, json=body, headers=h)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["record_id"] == again.json()["record_id"] and _count(web_db, cid) == 1
    # the same id for another kind is a client bug, not a retry
    clash = client.post(url, json={**body, "kind": "note"}, headers=h)
    assert clash.status_code == 409 and clash.json()["detail"]["error"] == "conflict"
    # without an id every post is a new record (the old behaviour)
    plain = {k: v for k, v in body.items() if k != "client_id"}
    ids = {client.post(url, json=plain, headers=h).json()["record_id"] for _ in range(2)}
    assert len(ids) == 2


def test_concurrent_sends_of_one_record_store_one(client: TestClient, web_db: str, sample: dict[str, Any]) -> None:
    h = bearer(token_for(client, SAMPLE_GROWER, role="grower"))
    url = f"/api/v1/orchards/{sample['orchard_id']}/records"
    cid = uuid.uuid4()
    body = {"observed_on": date.today().isoformat(), "kind": "work", "note": "race", "client_id": str(cid)}
    codes: list[int] = []

    def send() -> None:
        codes.append(client.post(url, json=body, headers=h).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(codes) == [200] * 5 + [201] and _count(web_db, cid) == 1
