-- Baselines of running-total profile fields ("counter = true", e.g. a rain gauge's mm since power-on):
-- the newest total ingest has committed per device and key, written in the same transaction as the
-- readings derived from it, so a restarted (or crashed and redelivered) ingest continues the
-- increments where the committed data ended. Loaded by ingest at start and merged on each device
-- reload (newer time wins).
CREATE TABLE device_counter_state (
    device_id   text             NOT NULL REFERENCES devices ON DELETE CASCADE,
    key         text             NOT NULL,          -- the payload key (profile field), e.g. 'rainfall_total'
    last_time   timestamptz      NOT NULL,          -- measurement time of last_total
    last_total  double precision NOT NULL,          -- in the metric's unit (after conversion)
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, key)
);
