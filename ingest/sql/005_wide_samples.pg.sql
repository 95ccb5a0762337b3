-- Raw readings become WIDE rows: one row per (device, sample time) with a column per metric of
-- registry.metrics.METRICS (NULL = not measured), primary key (device_id, time). Readers keep the
-- narrow view `readings` (device_id, metric, time, value) defined below, so no query changes.
--
-- Chosen by measurement: `python -m bench storage` (binary COPY of one day of 350 gateways, 1,008,000
-- readings, into each shape; PostgreSQL 15 on the 2-core dev machine, figures in
-- docs/dev-notes/issue-3-ingest.md). Quiet machine, readings/s:
--   narrow rows (device_id, metric, time, value), PK (device_id, metric, time):   405,000
--   narrow, same + the rollup-marking statement trigger:                          325,000
--   wide rows (device_id, time, 10 metric columns), PK (device_id, time):        4,910,000
--   (index-free heaps: narrow 2,290,000, wide 12,800,000)
-- and 11.5x wide over narrow (both indexed, partitioned, with the trigger) under heavy load: the
-- database spends ~12x less per reading, one index entry and one tuple header per sample instead of
-- per value. The database is the part of ingest that cannot be scaled out by starting
-- more processes, so its cost per reading decides how many orchards one server carries.
-- What narrow rows had going for them, and how wide rows keep it:
--   * a partial sample (a failed sensor, a ChirpStack codec with two keys) is a row with NULLs;
--     a late value for a stored sample fills its NULL column (ON CONFLICT ... DO UPDATE SET
--     col = COALESCE(samples.col, EXCLUDED.col)): the first value stored wins, exactly like the
--     narrow ON CONFLICT DO NOTHING, so re-sends stay idempotent per value;
--   * a new sensor type is ALTER TABLE samples ADD COLUMN (nullable, no default: a catalogue-only
--     change in PostgreSQL, instant on any size) plus a line in the view;
--   * per-(device, metric) readers use the narrow view.
--
-- Plain PostgreSQL: native range partitions by UTC day (samples_pYYYYMMDD, created on demand by
-- ingest_ensure_partitions), statement triggers mark the rollup buckets, retention drops partitions.
-- Data of the narrow table (databases migrated before this file) is moved into samples here.

CREATE TABLE samples (
    device_id          text COLLATE "C" NOT NULL,   -- registry devices.device_id
    time               timestamptz      NOT NULL,   -- measurement time, UTC
    air_temp_c         double precision,
    air_rh_pct         double precision,
    soil_vwc_10cm      double precision,
    soil_vwc_30cm      double precision,
    soil_temp_10cm_c   double precision,
    soil_temp_30cm_c   double precision,
    rain_mm            double precision,
    leaf_wetness_pct   double precision,
    solar_wm2          double precision,
    wind_ms            double precision,
    PRIMARY KEY (device_id, time)
) PARTITION BY RANGE (time);
COMMENT ON TABLE samples IS 'raw sensor samples, one row per device and measurement time; columns in the units of registry.metrics (°C, %, m³/m³, mm per interval, W/m², m/s)';

CREATE TABLE samples_default PARTITION OF samples DEFAULT;

-- Same contract as before (see 002_readings.pg.sql), now for samples partitions.
CREATE OR REPLACE FUNCTION ingest_ensure_partitions(p_from timestamptz, p_to timestamptz)
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
        part := 'samples_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass(quote_ident(current_schema()) || '.' || part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('yuncang.ingest.partitions'));
            IF to_regclass(quote_ident(current_schema()) || '.' || part) IS NULL THEN
                lo := d::timestamp AT TIME ZONE 'UTC';
                hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
                EXECUTE format('CREATE TABLE %I (LIKE samples INCLUDING DEFAULTS)', part);
                EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (time >= %L AND time < %L)',
                               part, part || '_range', lo, hi);
                EXECUTE format('WITH moved AS (DELETE FROM samples_default WHERE time >= $1 AND time < $2 '
                               'RETURNING *) INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
                EXECUTE format('ALTER TABLE samples ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
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

CREATE OR REPLACE FUNCTION ingest_drop_partitions_before(p_cutoff timestamptz)
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
         WHERE p.relname = 'samples' AND c.relname ~ '^samples_p[0-9]{8}$'
           AND (to_date(substr(c.relname, 10), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= p_cutoff
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', r.relname);
        n := n + 1;
    END LOOP;
    DELETE FROM samples_default WHERE time < p_cutoff;
    RETURN n;
END
$$;

-- Move the narrow table's rows (if any) into samples, then drop it with its partitions and triggers.
SELECT ingest_ensure_partitions(
    GREATEST(COALESCE((SELECT min(time) FROM readings), now()), now() - interval '400 days') - interval '2 days',
    GREATEST(COALESCE((SELECT max(time) FROM readings), now()), now()) + interval '7 days');

INSERT INTO samples (device_id, time, air_temp_c, air_rh_pct, soil_vwc_10cm, soil_vwc_30cm, soil_temp_10cm_c, soil_temp_30cm_c, rain_mm, leaf_wetness_pct, solar_wm2, wind_ms)
SELECT device_id, time,
       max(value) FILTER (WHERE metric = 'air_temp_c'),
       max(value) FILTER (WHERE metric = 'air_rh_pct'),
       max(value) FILTER (WHERE metric = 'soil_vwc_10cm'),
       max(value) FILTER (WHERE metric = 'soil_vwc_30cm'),
       max(value) FILTER (WHERE metric = 'soil_temp_10cm_c'),
       max(value) FILTER (WHERE metric = 'soil_temp_30cm_c'),
       max(value) FILTER (WHERE metric = 'rain_mm'),
       max(value) FILTER (WHERE metric = 'leaf_wetness_pct'),
       max(value) FILTER (WHERE metric = 'solar_wm2'),
       max(value) FILTER (WHERE metric = 'wind_ms')
  FROM readings
 GROUP BY device_id, time;

DROP TABLE readings CASCADE;

-- Rollup buckets touched by any insert or fill (see ingest_mark_dirty in 002_readings.pg.sql).
CREATE TRIGGER samples_mark_dirty_ins AFTER INSERT ON samples
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ingest_mark_dirty();
CREATE TRIGGER samples_mark_dirty_upd AFTER UPDATE ON samples
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ingest_mark_dirty();

-- Readers keep the narrow shape (device_id, metric, time, value): one row per stored value.
-- The planner pushes device/time conditions into the samples scan (its primary-key index).
CREATE VIEW readings AS
SELECT s.device_id, v.metric, s.time, v.value
  FROM samples s
 CROSS JOIN LATERAL (VALUES
        ('air_temp_c' COLLATE "C", s.air_temp_c),
        ('air_rh_pct', s.air_rh_pct),
        ('soil_vwc_10cm', s.soil_vwc_10cm),
        ('soil_vwc_30cm', s.soil_vwc_30cm),
        ('soil_temp_10cm_c', s.soil_temp_10cm_c),
        ('soil_temp_30cm_c', s.soil_temp_30cm_c),
        ('rain_mm', s.rain_mm),
        ('leaf_wetness_pct', s.leaf_wetness_pct),
        ('solar_wm2', s.solar_wm2),
        ('wind_ms', s.wind_ms)
       ) AS v(metric, value)
 WHERE v.value IS NOT NULL;

-- Writing through the narrow view still works (tests, hand fixes, small tools): each row fills its
-- metric's column of the (device_id, time) sample unless that value is already stored, i.e. the
-- narrow table's ON CONFLICT DO NOTHING semantics (first value wins); the row is reported as
-- inserted only when it was new. One statement per row: bulk writers use samples directly.
CREATE FUNCTION readings_view_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF NEW.metric IS NULL OR NEW.metric IN ('device_id', 'time') THEN
        RAISE EXCEPTION 'not a metric: %', NEW.metric USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.value IS NULL THEN
        RAISE EXCEPTION 'null value for % at %', NEW.metric, NEW.time USING ERRCODE = 'not_null_violation';
    END IF;
    EXECUTE format('INSERT INTO samples AS s (device_id, time, %1$I) VALUES ($1, $2, $3) '
                   'ON CONFLICT (device_id, time) DO UPDATE SET %1$I = EXCLUDED.%1$I WHERE s.%1$I IS NULL',
                   NEW.metric)
        USING NEW.device_id, NEW.time, NEW.value;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN NULL;  -- already stored
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER readings_view_insert INSTEAD OF INSERT ON readings
    FOR EACH ROW EXECUTE FUNCTION readings_view_insert();
