-- Readings on plain PostgreSQL: native range partitions by time, one per UTC day.
--
-- NARROW rows (device_id, metric, time, value), one row per measured quantity, rather than one wide
-- row per sample with a column per sensor, because:
--   * gateways send any subset of metrics per sample (a ChirpStack codec object may carry two keys,
--     a sensor may fail alone), so wide rows would be mostly NULL and a late partial sample would
--     have to be merged into an existing row (UPDATE), while narrow rows make every re-send a plain
--     INSERT ... ON CONFLICT (device_id, metric, time) DO NOTHING;
--   * a new sensor type is a new metric name in registry.metrics, not an ALTER TABLE on a
--     multi-billion-row table;
--   * the rollups (and every consumer: charts, risk models) are per (device, metric) anyway.
-- The cost is ~10x the row count and a per-row header; on TimescaleDB compression segmented by
-- device (ordered by metric, time) removes most of it, on plain PostgreSQL it is accepted.
--
-- No foreign key to devices: ingest validates the device against the registry before it writes,
-- and a per-row FK check would halve COPY throughput.
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
) PARTITION BY RANGE (time);

-- Safety net: rows for a day without a partition land here instead of failing the batch.
-- ingest_ensure_partitions() moves them out when it creates that day's partition.
CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- Create the daily partitions covering [p_from, p_to] (UTC days) that do not exist yet; rows
-- parked in readings_default for such a day are moved into the new partition. Safe to call
-- concurrently (advisory lock) and cheap when everything exists. Returns partitions created.
CREATE FUNCTION ingest_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d      date := (p_from AT TIME ZONE 'UTC')::date;
    d_end  date := (p_to AT TIME ZONE 'UTC')::date;
    lo     timestamptz;
    hi     timestamptz;
    part   text;
    made   integer := 0;
BEGIN
    IF d_end - d > 3660 THEN
        RAISE EXCEPTION 'refusing to create % daily partitions at once', d_end - d;
    END IF;
    WHILE d <= d_end LOOP
        part := 'readings_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass(quote_ident(current_schema()) || '.' || part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('yuncang.ingest.partitions'));
            IF to_regclass(quote_ident(current_schema()) || '.' || part) IS NULL THEN
                lo := d::timestamp AT TIME ZONE 'UTC';
                hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
                EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS)', part);
                EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (time >= %L AND time < %L)',
                               part, part || '_range', lo, hi);
                EXECUTE format('WITH moved AS (DELETE FROM readings_default WHERE time >= $1 AND time < $2 '
                               'RETURNING device_id, metric, time, value) '
                               'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
                EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               part, lo, hi);
                EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
                made := made + 1;
            END IF;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN made;
END
$$;

-- Retention on raw readings: drop whole daily partitions that end before p_cutoff (rollups are
-- kept). Returns the partitions dropped.
CREATE FUNCTION ingest_drop_partitions_before(p_cutoff timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r      record;
    n      integer := 0;
BEGIN
    FOR r IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_class p ON p.oid = i.inhparent
         WHERE p.relname = 'readings' AND c.relname ~ '^readings_p[0-9]{8}$'
           AND (to_date(substr(c.relname, 11), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= p_cutoff
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', r.relname);
        n := n + 1;
    END LOOP;
    DELETE FROM readings_default WHERE time < p_cutoff;
    RETURN n;
END
$$;

-- Track rollup buckets touched by ANY insert (ingest, a backfill, a hand-written INSERT): a
-- statement-level trigger sees only the rows actually inserted (not ON CONFLICT skips).
CREATE FUNCTION ingest_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO readings_dirty (device_id, hour)
    SELECT DISTINCT device_id, date_trunc('hour', time, 'UTC') FROM new_rows
    ON CONFLICT (device_id, hour) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER readings_mark_dirty_ins AFTER INSERT ON readings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ingest_mark_dirty();
CREATE TRIGGER readings_mark_dirty_upd AFTER UPDATE ON readings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ingest_mark_dirty();

-- Partitions for the recent past and the coming week exist from the start; ingest creates others
-- (a gateway's late buffer, a historical backfill) on demand before it writes.
SELECT ingest_ensure_partitions(now() - interval '2 days', now() + interval '7 days');
