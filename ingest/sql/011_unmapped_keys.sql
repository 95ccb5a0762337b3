-- Payload keys that a device's profile neither maps to a metric nor ignores ("unmapped"), per device:
-- nothing a device sends is dropped silently. Counted on every message (a redelivered message counts
-- again, like device_health); the raw message is also dead-lettered (reason unmapped_key) at most once
-- per key, device and hour per ingest process. Read by the device-health API and alerts.
CREATE TABLE device_unmapped_keys (
    device_id      text        NOT NULL REFERENCES devices ON DELETE CASCADE,
    key            text        NOT NULL,               -- key or path as the payload has it ('object.foo', 'messages[4120]')
    first_seen_at  timestamptz NOT NULL,               -- ingest clock
    last_seen_at   timestamptz NOT NULL,
    count          bigint      NOT NULL DEFAULT 0,     -- occurrences (one per message and record)
    sample_value   text,                               -- the latest value seen, truncated to 120 characters
    PRIMARY KEY (device_id, key)
);
