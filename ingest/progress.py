"""How far ingest has got, for publishers that must not outrun it (replays, benchmarks, the rehearsal).

A broker queues at most so many messages for a subscriber that falls behind (Mosquitto's default
``max_queued_messages`` is 1,000) and drops the rest without telling the publisher: a PUBACK only says
the broker took the message. So a publisher of a large backlog keeps a window against what ingest has
*committed*, which only the database knows.
"""

from __future__ import annotations

import psycopg


def committed_messages(conn: psycopg.Connection) -> int:
    """Messages ingest has committed so far, counted per device (``device_health.messages`` summed: a
    ThingsBoard message carrying k devices counts k; a redelivered message counts again). Ends the
    read transaction, so the next call sees newer commits."""
    row = conn.execute("SELECT COALESCE(sum(messages), 0) FROM device_health").fetchone()
    conn.commit()
    return int(row[0]) if row else 0
