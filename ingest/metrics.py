"""Prometheus counters of the ingest service (default registry; the web app serves ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("yuncang_ingest_messages_total", "MQTT messages committed, by wire format", ["format"])
READINGS = Counter("yuncang_ingest_readings_total", "Readings accepted and committed (re-sends included)")
READINGS_NEW = Counter("yuncang_ingest_readings_stored_total", "Readings that were new rows in readings")
DUPLICATES = Counter("yuncang_ingest_duplicate_readings_total",
                     "Accepted readings already stored (re-sent or redelivered), skipped by ON CONFLICT")
REJECTS = Counter("yuncang_ingest_rejects_total", "Items dead-lettered, by reason", ["reason"])
BATCH_SECONDS = Histogram("yuncang_ingest_batch_seconds", "Time to write and commit one batch, s",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
BATCH_READINGS = Histogram("yuncang_ingest_batch_readings", "Readings per committed batch",
                           buckets=(1, 10, 100, 1000, 5000, 10000, 20000, 50000, 100000))
QUEUE_DEPTH = Gauge("yuncang_ingest_queue_depth", "Messages received but not yet committed and acknowledged")
DB_RETRIES = Counter("yuncang_ingest_db_retries_total", "Batch writes retried after a database error")
RECONNECTS = Counter("yuncang_ingest_mqtt_reconnects_total", "MQTT (re)connection attempts that failed or dropped")
DEAD_LETTERS_SUMMARISED = Counter("yuncang_ingest_dead_letters_summarised_total",
                                  "Rejects a flood summary row stands for instead of rows of their own, by reason",
                                  ["reason"])
