# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Traceability through HTTP as its users would: a warehouse manager records harvest -> grade -> pack ->
store -> merge -> ship; the label's QR resolves to the consumer page (HTML), the linkset and the EPCIS
events by content negotiation; buyers poll the EPCIS query interface and see only their own chain;
another cooperative's manager is refused; a consumer complaint is recorded once."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfReader
from test_web_fixtures import (  # noqa: F401
    DEMO_PASSWORDS,
    TEST_PASSWORD,
    bearer,
    client,
    sample,
    token_for,
    web_app,
    web_db,
)

SCHEMA = json.loads((Path(__file__).parent / "data" / "gs1" / "EPCIS-JSON-Schema.json").read_text("utf-8"))


def _mgr(client: TestClient, coop: str) -> dict[str, str]:
    return bearer(token_for(client, coop, role="manager"))


def _chain(client: TestClient, h: dict[str, str], orchard_id: str, buyer: str,
           harvested_on: str = "2026-07-20") -> dict[str, Any]:
    k = secrets.token_hex(4)
    r = client.post("/api/v1/genealogy/harvest", headers=h, json={
        "orchard_id": orchard_id, "harvested_on": harvested_on, "kg": "800", "idempotency_key": f"h-{k}"})
    assert r.status_code == 201, r.text
    hl = r.json()["created"]["lot"]
    bad = client.post("/api/v1/genealogy/grade", headers=h, json={
        "inputs": {hl: "800"}, "outputs_kg_by_grade": {"XL": "300", "L": "450"}, "site_id": "WH-WUSHAN"})
    assert bad.status_code == 422 and "mass balance" in bad.json()["detail"]["message"]
    r = client.post("/api/v1/genealogy/grade", headers=h, json={
        "inputs": {hl: "800"}, "outputs_kg_by_grade": {"XL": "300", "L": "450"},
        "losses": [{"kg": "50", "reason": "裂果"}], "site_id": "WH-WUSHAN", "idempotency_key": f"g-{k}"})
    assert r.status_code == 201, r.text
    graded = r.json()["created"]
    again = client.post("/api/v1/genealogy/grade", headers=h, json={
        "inputs": {hl: "800"}, "outputs_kg_by_grade": {"XL": "300", "L": "450"},
        "losses": [{"kg": "50", "reason": "裂果"}], "site_id": "WH-WUSHAN", "idempotency_key": f"g-{k}"})
    assert again.status_code == 200 and again.json()["replayed"] and again.json()["created"] == graded
    r = client.post("/api/v1/genealogy/pack", headers=h, json={"children": {graded["L"]: "450"}, "site_id": "WH-WUSHAN"})
    assert r.status_code == 201, r.text
    unit = r.json()["created"]["unit"]
    assert client.post("/api/v1/genealogy/store", headers=h, json={"object_ids": [unit], "cold_room_id": "CR-01"}
                       ).status_code == 201
    r = client.post("/api/v1/genealogy/merge", headers=h, json={"inputs": {unit: "450"}, "site_id": "WH-WUSHAN"})
    assert r.status_code == 201, r.text
    sl = r.json()["created"]["lot"]
    r = client.post("/api/v1/genealogy/ship", headers=h, json={
        "items": {sl: "450"}, "buyer_id": buyer, "destination": "烟台", "site_id": "WH-WUSHAN"})
    assert r.status_code == 201, r.text
    over = client.post("/api/v1/genealogy/ship", headers=h, json={
        "items": {sl: "1"}, "buyer_id": buyer, "destination": "烟台", "site_id": "WH-WUSHAN"})
    assert over.status_code == 409                       # nothing left to ship: never shipped twice
    return {"harvest": hl, "graded": graded, "unit": unit, "shipment_lot": sl}


def _other_coop(web_db: str, coop: str) -> tuple[str, str]:
    with psycopg.connect(web_db) as conn:
        row = conn.execute("SELECT cooperative_id, orchard_id FROM orchards WHERE cooperative_id <> %s "
                           "ORDER BY orchard_id LIMIT 1", (coop,)).fetchone()
    return row[0], row[1]


def test_manager_records_the_chain_and_recall_answers_both_ways(client, web_db, sample):
    h = _mgr(client, sample["cooperative_id"])
    c = _chain(client, h, sample["orchard_id"], "buyer-test-a")
    r = client.get("/api/v1/genealogy/recall", headers=h, params={
        "orchard_id": sample["orchard_id"], "date_from": "2026-07-19", "date_to": "2026-07-21"})
    assert r.status_code == 200 and "buyer-test-a" in r.json()["buyers"]
    assert c["shipment_lot"] in {s["object_id"] for s in r.json()["shipments"]}
    back = client.get(f"/api/v1/genealogy/objects/{c['shipment_lot']}/origins", headers=h).json()["origins"]
    assert {o["orchard_id"] for o in back} == {sample["orchard_id"]}
    # another cooperative's manager can neither read the recall nor record steps on these lots
    other_coop, other_orchard = _other_coop(web_db, sample["cooperative_id"])
    ho = _mgr(client, other_coop)
    assert client.get("/api/v1/genealogy/recall", headers=ho, params={
        "orchard_id": sample["orchard_id"], "date_from": "2026-07-19", "date_to": "2026-07-21"}).status_code == 404
    assert client.post("/api/v1/genealogy/store", headers=ho, json={
        "object_ids": [c["graded"]["XL"]], "cold_room_id": "CR-02"}).status_code == 403
    assert client.post("/api/v1/genealogy/harvest", headers=ho, json={
        "orchard_id": sample["orchard_id"], "harvested_on": "2026-07-20", "kg": "1"}).status_code == 403
    hb = bearer(token_for(client, "buyer-test-a-user", TEST_PASSWORD))
    assert client.post("/api/v1/genealogy/harvest", headers=hb, json={
        "orchard_id": other_orchard, "harvested_on": "2026-07-20", "kg": "1"}).status_code == 403
    assert client.get("/api/v1/genealogy/recall", headers=hb, params={
        "orchard_id": other_orchard, "date_from": "2026-07-19", "date_to": "2026-07-21"}).status_code == 403
    bad = client.post("/api/v1/genealogy/harvest", headers=h, json={
        "orchard_id": sample["orchard_id"], "harvested_on": "9999-12-31", "kg": "1"})
    assert bad.status_code == 422


def test_buyers_poll_epcis_and_see_only_their_own_chain(client, web_db, sample):
    h = _mgr(client, sample["cooperative_id"])
    ca = _chain(client, h, sample["orchard_id"], "buyer-test-a")
    cb = _chain(client, h, sample["orchard_id"], "buyer-test-b")
    ha = bearer(token_for(client, "buyer-test-a-user", TEST_PASSWORD))
    r = client.get("/api/v1/epcis/events", headers=ha, params={"GE_eventTime": "2020-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")
    assert r.headers["GS1-EPCIS-Version"] == "2.0.0"
    doc = r.json()
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    text = json.dumps(doc)
    assert ca["shipment_lot"] in text and cb["shipment_lot"] not in text and "buyer-test-b" not in text
    assert client.get("/api/v1/epcis/events", headers=ha, params={"GE_eventTime": "2026-07-20T00:00:00"}
                      ).status_code == 422                 # no timezone
    hg = bearer(token_for(client, "G-00001", role="grower"))
    assert client.get("/api/v1/epcis/events", headers=hg).status_code == 403
    assert client.get("/api/v1/epcis/events").status_code == 401


def _gtin_of(web_db: str, object_id: str) -> str:
    with psycopg.connect(web_db) as conn:
        return conn.execute("SELECT gtin FROM trace_objects WHERE object_id = %s", (object_id,)).fetchone()[0]


def test_label_qr_resolves_by_content_negotiation_and_names_no_person(client, web_db, sample):
    h = _mgr(client, sample["cooperative_id"])
    c = _chain(client, h, sample["orchard_id"], "buyer-test-a")
    pdf = client.get("/api/v1/genealogy/labels.pdf", headers=h, params={"id": [c["shipment_lot"], c["unit"]]})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    uris = []
    for page in PdfReader(io.BytesIO(pdf.content)).pages:
        for img in page.images:
            uris += [x.text for x in zxingcpp.read_barcodes(Image.open(io.BytesIO(img.data)).convert("L"))]
    path = "/01/" + _gtin_of(web_db, c["shipment_lot"]) + "/10/" + c["shipment_lot"]
    assert any(u.endswith(path) for u in uris) and len(uris) == 2
    page = client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "巫山脆李" in page.text and c["shipment_lot"] in page.text
    with psycopg.connect(web_db) as conn:
        grower, orchard_name = conn.execute(
            "SELECT g.name, o.name FROM orchards o JOIN growers g USING (grower_id) WHERE o.orchard_id = %s",
            (sample["orchard_id"],)).fetchone()
    assert grower not in page.text and orchard_name not in page.text and "buyer-test" not in page.text
    assert len(page.content) < 30_000                       # small page for a phone on a poor network
    ls = client.get(path, headers={"Accept": "application/linkset+json"})
    assert ls.status_code == 200 and ls.json()["linkset"][0]["anchor"].endswith(path)
    ev = client.get(path, headers={"Accept": "application/ld+json"})
    assert ev.status_code == 200 and ev.json()["type"] == "EPCISQueryDocument"
    assert "shipping" not in {e["bizStep"] for e in ev.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]}
    assert client.get("/01/06970000000017/10/NOPE-LOT", headers={"Accept": "text/html"}).status_code == 404
    assert client.get("/01/06970000000018/10/X", headers={"Accept": "text/html"}).status_code == 422  # check digit


def test_a_consumer_complaint_is_recorded_once_and_managers_see_it(client, web_db, sample):
    h = _mgr(client, sample["cooperative_id"])
    c = _chain(client, h, sample["orchard_id"], "buyer-test-a")
    path = "/01/" + _gtin_of(web_db, c["shipment_lot"]) + "/10/" + c["shipment_lot"]
    form = {"category": "damage", "text": "收到时有三个果子腐烂", "contact": "", "client_id": secrets.token_hex(10)}
    first = client.post(path + "/complaint", data=form)
    again = client.post(path + "/complaint", data=form)
    assert first.status_code == 201 and again.status_code == 201 and "已收到" in first.text
    got = [x for x in client.get("/api/v1/genealogy/complaints", headers=h).json()["complaints"]
           if x["object_id"] == c["shipment_lot"]]
    assert len(got) == 1 and got[0]["text"] == form["text"]
    bad = client.post(path + "/complaint", data={**form, "category": "nope", "client_id": secrets.token_hex(10)})
    assert bad.status_code == 422 and "投诉类别" in bad.text
    hb = bearer(token_for(client, "buyer-test-a-user", TEST_PASSWORD))
    assert client.get("/api/v1/genealogy/complaints", headers=hb).status_code == 403
