"""A flood of bad messages cannot fill the database: dead letters keep at most 4 KiB of payload (with the
original size and SHA-256) and past a per-sender budget become one summary row per sender, reason and
minute (issue 14)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import psycopg
import pytest

from ingest.batch import Batch, Pending
from ingest.dead_letters import MAX_STORED_PAYLOAD_BYTES, FloodGate
from ingest.model import Decoded
from ingest.writer import BatchWriter


@pytest.fixture
def writer(ingest_db: str) -> Iterator[BatchWriter]:
    w = BatchWriter(ingest_db)
    yield w
    w.close()


def _bad(topic: str, payload: bytes, received: float, reasons: tuple[str, ...] = ("malformed_json",)) -> tuple[
        Pending, Decoded]:
    d = Decoded()
    for r in reasons:
        d.reject(r, f"{r}: test", device_id="gw-flood")
    return Pending(topic, payload, received, 0, 0, 1), d


def _q(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(sql, args).fetchall()


def test_a_megabyte_payload_keeps_4_kib_its_size_and_hash(ingest_db: str, writer: BatchWriter, prefix: str) -> None:
    payload = b"{" + b"x" * (1 << 20) + b"}"
    b = Batch(gate=FloodGate())
    b.add(*_bad(f"{prefix}big/up", payload, time.time()))
    writer.write(b)
    [(kept, size, detail)] = _q(ingest_db, "SELECT payload, payload_bytes, detail FROM dead_letters WHERE topic = %s",
                                f"{prefix}big/up")
    assert bytes(kept) == payload[:MAX_STORED_PAYLOAD_BYTES] and size == len(payload)  # type: ignore[arg-type]
    assert hashlib.sha256(payload).hexdigest() in str(detail) and f"of {len(payload)} bytes" in str(detail)


def test_a_flood_is_summarised_per_sender_reason_and_minute(ingest_db: str, writer: BatchWriter,
                                                            prefix: str) -> None:
    gate = FloodGate(per_sender=10, total=1000)
    t0 = (int(time.time()) // 60) * 60 + 1.0
    loud, quiet = f"{prefix}loud/up", f"{prefix}quiet/up"
    payload = b"x" * 2000
    for batch_no in range(5):  # 5 batches of 100 bad messages from one sender, in one minute
        b = Batch(gate=gate)
        for k in range(100):
            b.add(*_bad(loud, payload + str((batch_no, k)).encode(), t0 + batch_no))
        # another sender: not held back
        b.add(*_bad(quiet, b"{" + bytes([batch_no]), t0 + batch_no, ("malformed_json", "not_finite")))
        writer.write(b)
    rows = _q(ingest_db, "SELECT msg_key LIKE 'flood:%%', detail, payload_bytes, payload IS NOT NULL FROM dead_letters"
              " WHERE topic = %s ORDER BY dead_letter_id", loud)
    singles = [r for r in rows if not r[0]]
    floods = [r for r in rows if r[0]]
    assert len(singles) == 10 and all(r[3] for r in singles)
    assert len(floods) == 1 and str(floods[0][1]).startswith("flood: 490 more malformed_json rejects")
    assert floods[0][2] == sum(len(payload + str((b_, k)).encode()) for b_ in range(5) for k in range(100)
                                 if (b_, k) >= (0, 10))  # the bytes of the 490 held back
    quiet_rows = _q(ingest_db, "SELECT reason FROM dead_letters WHERE topic = %s", quiet)
    assert len(quiet_rows) == 10  # 5 messages x 2 rejects, each its own row (under the budget)
    # the next minute opens a new budget
    b = Batch(gate=gate)
    b.add(*_bad(loud, b"next minute", t0 + 60))
    writer.write(b)
    assert _q(ingest_db, "SELECT count(*) FROM dead_letters WHERE topic = %s AND msg_key NOT LIKE 'flood:%%'",
              loud) == [(11,)]
    assert gate.held_back == 490


def test_all_senders_share_a_ceiling(ingest_db: str, writer: BatchWriter, prefix: str) -> None:
    gate = FloodGate(per_sender=5, total=20)
    t0 = (int(time.time()) // 60) * 60 + 2.0
    b = Batch(gate=gate)
    for k in range(200):  # 200 senders (an attacker rotating topics), one bad message each
        b.add(*_bad(f"{prefix}rot-{k}/up", b"{" + str(k).encode(), t0))
    writer.write(b)
    n_rows = _q(ingest_db, "SELECT count(*) FROM dead_letters WHERE topic LIKE %s", f"{prefix}rot-%")
    [(detail,)] = _q(ingest_db, "SELECT detail FROM dead_letters WHERE topic = '*' AND detail LIKE %s",
                     "% in the minute from %")
    assert n_rows == [(20,)] and str(detail).startswith("flood: 180 more malformed_json rejects from all senders")
