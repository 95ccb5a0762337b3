-- Ingest tables shared by both storage paths (plain PostgreSQL and TimescaleDB).
--
-- Owned by the ingest package. The readings table itself and the rollups differ by path and live in
-- 002_readings.{pg,tsdb}.sql and 003_rollups.{pg,tsdb}.sql.

-- Staging table for binary COPY. Ingest COPYs each batch into a session-private TEMP table created
-- LIKE this one (so several ingest processes never see each other's rows), then moves the rows into
-- readings with INSERT ... SELECT ... ON CONFLICT DO NOTHING in the same transaction. UNLOGGED and
-- normally empty: it is the column contract of the COPY stream, and a place an operator can COPY
-- into by hand (e.g. a CSV backfill) before running the same INSERT ... SELECT.
CREATE UNLOGGED TABLE readings_staging (
    device_id  text COLLATE "C"             NOT NULL,   -- registry devices.device_id ('gw-0001')
    metric     text COLLATE "C"             NOT NULL,   -- registry.metrics.METRICS name ('air_temp_c')
    time       timestamptz      NOT NULL,   -- measurement time, UTC
    value      double precision NOT NULL    -- in the metric's unit (°C, %, m³/m³, mm, W/m², m/s)
);

-- Everything ingest refused, one row per rejected item (a whole message when it could not be
-- decoded at all, otherwise one reading or one sample), with the reason code and a human detail.
-- The raw payload is kept on the first row of each message (payload_stored = true) and NULL on the
-- others of the same message, which share msg_key; (msg_key, item) is unique so a message the
-- broker redelivers after a crash, or a gateway re-sends, is dead-lettered once.
CREATE TABLE dead_letters (
    dead_letter_id bigserial PRIMARY KEY,
    received_at    timestamptz NOT NULL DEFAULT now(),   -- when ingest received the message
    topic          text        NOT NULL,
    device_id      text,                                 -- when known (may be an unknown device's id)
    reason         text        NOT NULL,                 -- code: malformed_json, wrong_type, not_finite,
                                                         -- out_of_range, unknown_device, future_time,
                                                         -- too_old, oversized, unknown_topic, ...
    detail         text        NOT NULL DEFAULT '',
    metric         text,                                 -- for a rejected reading
    reading_time   timestamptz,                          -- for a rejected reading or sample
    msg_key        text        NOT NULL,                 -- sha256(topic NUL payload), hex
    item           integer     NOT NULL DEFAULT 0,       -- index of the reject within its message
    payload        bytea,                                -- raw message bytes (first reject of a message)
    payload_bytes  integer     NOT NULL,                 -- size of the raw message, bytes
    UNIQUE (msg_key, item)
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_device_idx ON dead_letters (device_id, received_at DESC) WHERE device_id IS NOT NULL;
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at DESC);

-- Device health, one row per registry device that ever sent anything ingest could attribute to it.
-- Counters are cumulative since first_seen_at (a redelivered message counts again: it was received
-- again); rates come from device_traffic_hourly.
CREATE TABLE device_health (
    device_id        text PRIMARY KEY REFERENCES devices ON DELETE CASCADE,
    first_seen_at    timestamptz NOT NULL,              -- first message received (ingest clock)
    last_seen_at     timestamptz NOT NULL,              -- last message received (ingest clock)
    last_reading_at  timestamptz,                       -- newest measurement time stored
    messages         bigint NOT NULL DEFAULT 0,         -- messages received from the device
    readings         bigint NOT NULL DEFAULT 0,         -- readings accepted (before de-duplication)
    rejects          bigint NOT NULL DEFAULT 0,         -- items dead-lettered
    battery_v        double precision,                  -- latest battery voltage, V
    battery_at       timestamptz,                       -- its measurement time
    rssi_dbm         double precision,                  -- latest signal strength, dBm
    rssi_at          timestamptz,
    last_seq         bigint,                            -- native format: the gateway's message counter
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Per device and received hour (UTC): message rate and reject rate over time.
CREATE TABLE device_traffic_hourly (
    device_id  text        NOT NULL REFERENCES devices ON DELETE CASCADE,
    hour       timestamptz NOT NULL,                    -- start of the UTC hour the messages arrived in
    messages   integer     NOT NULL DEFAULT 0,
    readings   integer     NOT NULL DEFAULT 0,
    rejects    integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, hour)
);
CREATE INDEX device_traffic_hour_idx ON device_traffic_hourly (hour);

-- Rollup buckets that need recomputing: (device, UTC hour of the READING time) pairs that received
-- new rows since the last refresh, whatever the reading's age (a gateway's day-old buffer marks
-- yesterday's hours). Filled on the plain path by a statement trigger on readings (so any writer is
-- tracked), on TimescaleDB by ingest; drained by ingest.rollups.refresh().
CREATE TABLE readings_dirty (
    device_id  text COLLATE "C"        NOT NULL,
    hour       timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, hour)
);
