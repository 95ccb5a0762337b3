"""Dead letters as stored: a capped payload per message, and floods summarised instead of stored.

Every rejected item still counts (``device_health.rejects``, ``device_traffic_hourly.rejects`` and the
``yuncang_ingest_rejects_total`` counter see every one), but what lands in ``dead_letters`` is bounded:

* the raw payload is kept on the first row of a message up to :data:`MAX_STORED_PAYLOAD_BYTES`
  (4 KiB); a longer one is cut there and its detail names the original length and the payload's SHA-256,
  so the message can still be recognised (``payload_bytes`` keeps the original size as before);
* a :class:`FloodGate` lets at most :data:`ROWS_PER_SENDER` rows a minute through per sender topic and
  reason, and :data:`ROWS_PER_WINDOW` a minute in all; what it holds back becomes one summary row per
  (sender, reason, minute) — reason as before, ``msg_key`` ``flood:...``, detail ``flood: N more ...``,
  ``payload_bytes`` the bytes of the messages it stands for — updated in place while the flood lasts.
  The topic names the sender because each gateway's broker credentials may publish only on its own.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.metrics import DEAD_LETTERS_SUMMARISED

MAX_STORED_PAYLOAD_BYTES = 4096  #: bytes of a refused message's payload kept in ``dead_letters.payload``
FLOOD_WINDOW_S = 60  #: window of the flood gate, s
ROWS_PER_SENDER = 100  #: dead-letter rows per (topic, reason) per window before summarising
ROWS_PER_WINDOW = 5000  #: dead-letter rows per window, all senders together

#: summary rows: insert, or add to the one already stored for the same sender, reason and minute
SUMMARY_SQL = (
    "INSERT INTO dead_letters AS d (received_at, topic, device_id, reason, detail, msg_key, item, payload_bytes)"
    " VALUES (%s, %s, %s, %s, %s, %s, 0, %s)"
    " ON CONFLICT (msg_key, item) DO UPDATE SET"
    " payload_bytes = d.payload_bytes + EXCLUDED.payload_bytes,"
    " detail = regexp_replace(d.detail, '^flood: [0-9]+',"
    "   'flood: ' || (split_part(d.detail, ' ', 2)::bigint + split_part(EXCLUDED.detail, ' ', 2)::bigint))"
)


def stored_payload(payload: bytes) -> tuple[bytes, str]:
    """(what is kept of the payload, a note for the detail: empty unless the payload was cut)."""
    if len(payload) <= MAX_STORED_PAYLOAD_BYTES:
        return payload, ""
    return payload[:MAX_STORED_PAYLOAD_BYTES], (
        f" [payload cut to {MAX_STORED_PAYLOAD_BYTES} of {len(payload)} bytes;"
        f" sha256 {hashlib.sha256(payload).hexdigest()}]")


@dataclass
class FloodGate:
    """How many dead-letter rows each sender and reason may still store in the current window (in-process,
    per ingest process)."""

    per_sender: int = ROWS_PER_SENDER
    total: int = ROWS_PER_WINDOW
    window_s: int = FLOOD_WINDOW_S
    window: int = 0  #: start of the current window, epoch s
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    stored: int = 0
    held_back: int = 0  #: rows summarised instead of stored since this gate was made

    def admit(self, topic: str, reason: str, received_s: float) -> tuple[bool, int, bool]:
        """(may this row be stored, the window it falls in, held back by the all-senders ceiling)."""
        w = int(received_s // self.window_s) * self.window_s
        if w > self.window:
            self.window, self.stored = w, 0
            self.counts.clear()
        over_total = self.stored >= self.total
        if over_total or self.counts[(topic, reason)] >= self.per_sender:
            self.held_back += 1
            DEAD_LETTERS_SUMMARISED.labels(reason).inc()
            return False, self.window, over_total
        self.counts[(topic, reason)] += 1
        self.stored += 1
        return True, self.window, False


#: the gate every batch of this process uses unless given its own
GATE = FloodGate()


def summary_rows(floods: dict[tuple[str, str, int, bool], list[object]]) -> list[tuple[object, ...]]:
    """Parameters of :data:`SUMMARY_SQL`, one per (sender, reason, window) of a batch's held-back rejects."""
    out: list[tuple[object, ...]] = []
    for (sender, reason, window, over_total), (n, n_bytes, device_id) in floods.items():
        start = datetime.fromtimestamp(window, UTC)
        key = hashlib.sha256(f"{sender}\x00{reason}\x00{window}".encode()).hexdigest()
        who = "all senders (over the per-minute ceiling)" if over_total else "this sender"
        detail = (f"flood: {n} more {reason} rejects from {who} in the minute from {start:%Y-%m-%dT%H:%M}Z "
                  f"were counted, not stored")
        out.append((start, sender, device_id, reason, detail, f"flood:{key}", n_bytes))
    return out
