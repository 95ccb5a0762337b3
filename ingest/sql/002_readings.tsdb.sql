-- Readings on TimescaleDB: a hypertable with one-day chunks, compressed after 7 days (segmented
-- by device, ordered by metric and time), raw rows kept 400 days (ingest.storage.RETENTION_DAYS;
-- the rollups are kept for ever).
--
-- NARROW rows (device_id, metric, time, value), one row per measured quantity, rather than one wide
-- row per sample with a column per sensor, because gateways send any subset of metrics per sample
-- (narrow rows make a late partial sample a plain INSERT ... ON CONFLICT DO NOTHING instead of a
-- merge), a new sensor is a new metric name and not an ALTER TABLE, and rollups and readers work
-- per (device, metric). Compression segmented by device and ordered by (metric, time) stores each
-- device's series as contiguous columnar runs, which removes most of the per-row overhead.
-- device_id and metric use the "C" collation (byte order): the primary-key B-tree compares them on every
-- insert, and the database default (e.g. C.UTF-8, en_US.UTF-8) goes through the much slower locale
-- comparison (measured: about 1.4-1.5x more rows/s into the indexed table). Ids are ASCII, so the order is
-- the same and equality joins with registry tables work unchanged.
CREATE TABLE readings (
    device_id  text COLLATE "C"             NOT NULL,   -- registry devices.device_id
    metric     text COLLATE "C"             NOT NULL,   -- registry.metrics.METRICS name
    time       timestamptz      NOT NULL,   -- measurement time, UTC
    value      double precision NOT NULL,   -- in the metric's unit
    PRIMARY KEY (device_id, metric, time)
);

SELECT create_hypertable('readings', 'time', chunk_time_interval => INTERVAL '1 day');

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'metric, time DESC'
);
SELECT add_compression_policy('readings', INTERVAL '7 days');
SELECT add_retention_policy('readings', INTERVAL '400 days');

-- Same function names as the plain path so ingest code is path-agnostic: chunks are created by
-- TimescaleDB on insert, so "ensuring partitions" is a no-op; retention drops whole chunks.
CREATE FUNCTION ingest_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;

CREATE FUNCTION ingest_drop_partitions_before(p_cutoff timestamptz)
RETURNS integer LANGUAGE sql AS $$
    SELECT count(*)::integer FROM drop_chunks('readings', older_than => p_cutoff)
$$;
