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
-- TimescaleDB: samples is a hypertable (1-day chunks, compressed after 7 days segmented by device and
-- ordered by time, raw rows kept 400 days). The rollups become continuous aggregates over samples
-- with a column group per metric (samples_hourly, samples_daily) and the contract views
-- readings_hourly / readings_daily (device_id, metric, bucket, n, min, max, avg, sum) unpivot them,
-- so readers are unchanged. Rows of the narrow hypertable are moved into samples here.

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
);
COMMENT ON TABLE samples IS 'raw sensor samples, one row per device and measurement time; columns in the units of registry.metrics (°C, %, m³/m³, mm per interval, W/m², m/s)';

SELECT create_hypertable('samples', 'time', chunk_time_interval => INTERVAL '1 day');

ALTER TABLE samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('samples', INTERVAL '7 days');
SELECT add_retention_policy('samples', INTERVAL '400 days');

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

DROP MATERIALIZED VIEW readings_daily;
DROP MATERIALIZED VIEW readings_hourly;
SELECT remove_compression_policy('readings', if_exists => true);
SELECT remove_retention_policy('readings', if_exists => true);
DROP TABLE readings;

CREATE OR REPLACE FUNCTION ingest_drop_partitions_before(p_cutoff timestamptz)
RETURNS integer LANGUAGE sql AS $$
    SELECT count(*)::integer FROM drop_chunks('samples', older_than => p_cutoff)
$$;

-- Rollups: hourly on the UTC hour, daily on the local day in Asia/Shanghai (time_bucket with time
-- zone); n = values counted, min/max/avg/sum in the metric's unit. Real-time aggregation on,
-- created WITH NO DATA so the migration runs inside the runner's transaction. Refresh policies as in
-- 003_rollups.tsdb.sql; ingest.rollups.refresh() refreshes older late data from readings_dirty.
CREATE MATERIALIZED VIEW samples_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', time) AS bucket,
       count(air_temp_c)::integer AS air_temp_c_n, min(air_temp_c) AS air_temp_c_min, max(air_temp_c) AS air_temp_c_max, avg(air_temp_c) AS air_temp_c_avg, sum(air_temp_c) AS air_temp_c_sum,
       count(air_rh_pct)::integer AS air_rh_pct_n, min(air_rh_pct) AS air_rh_pct_min, max(air_rh_pct) AS air_rh_pct_max, avg(air_rh_pct) AS air_rh_pct_avg, sum(air_rh_pct) AS air_rh_pct_sum,
       count(soil_vwc_10cm)::integer AS soil_vwc_10cm_n, min(soil_vwc_10cm) AS soil_vwc_10cm_min, max(soil_vwc_10cm) AS soil_vwc_10cm_max, avg(soil_vwc_10cm) AS soil_vwc_10cm_avg, sum(soil_vwc_10cm) AS soil_vwc_10cm_sum,
       count(soil_vwc_30cm)::integer AS soil_vwc_30cm_n, min(soil_vwc_30cm) AS soil_vwc_30cm_min, max(soil_vwc_30cm) AS soil_vwc_30cm_max, avg(soil_vwc_30cm) AS soil_vwc_30cm_avg, sum(soil_vwc_30cm) AS soil_vwc_30cm_sum,
       count(soil_temp_10cm_c)::integer AS soil_temp_10cm_c_n, min(soil_temp_10cm_c) AS soil_temp_10cm_c_min, max(soil_temp_10cm_c) AS soil_temp_10cm_c_max, avg(soil_temp_10cm_c) AS soil_temp_10cm_c_avg, sum(soil_temp_10cm_c) AS soil_temp_10cm_c_sum,
       count(soil_temp_30cm_c)::integer AS soil_temp_30cm_c_n, min(soil_temp_30cm_c) AS soil_temp_30cm_c_min, max(soil_temp_30cm_c) AS soil_temp_30cm_c_max, avg(soil_temp_30cm_c) AS soil_temp_30cm_c_avg, sum(soil_temp_30cm_c) AS soil_temp_30cm_c_sum,
       count(rain_mm)::integer AS rain_mm_n, min(rain_mm) AS rain_mm_min, max(rain_mm) AS rain_mm_max, avg(rain_mm) AS rain_mm_avg, sum(rain_mm) AS rain_mm_sum,
       count(leaf_wetness_pct)::integer AS leaf_wetness_pct_n, min(leaf_wetness_pct) AS leaf_wetness_pct_min, max(leaf_wetness_pct) AS leaf_wetness_pct_max, avg(leaf_wetness_pct) AS leaf_wetness_pct_avg, sum(leaf_wetness_pct) AS leaf_wetness_pct_sum,
       count(solar_wm2)::integer AS solar_wm2_n, min(solar_wm2) AS solar_wm2_min, max(solar_wm2) AS solar_wm2_max, avg(solar_wm2) AS solar_wm2_avg, sum(solar_wm2) AS solar_wm2_sum,
       count(wind_ms)::integer AS wind_ms_n, min(wind_ms) AS wind_ms_min, max(wind_ms) AS wind_ms_max, avg(wind_ms) AS wind_ms_avg, sum(wind_ms) AS wind_ms_sum
  FROM samples
 GROUP BY device_id, time_bucket(INTERVAL '1 hour', time)
WITH NO DATA;

CREATE MATERIALIZED VIEW samples_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 day', time, 'Asia/Shanghai') AS bucket,
       count(air_temp_c)::integer AS air_temp_c_n, min(air_temp_c) AS air_temp_c_min, max(air_temp_c) AS air_temp_c_max, avg(air_temp_c) AS air_temp_c_avg, sum(air_temp_c) AS air_temp_c_sum,
       count(air_rh_pct)::integer AS air_rh_pct_n, min(air_rh_pct) AS air_rh_pct_min, max(air_rh_pct) AS air_rh_pct_max, avg(air_rh_pct) AS air_rh_pct_avg, sum(air_rh_pct) AS air_rh_pct_sum,
       count(soil_vwc_10cm)::integer AS soil_vwc_10cm_n, min(soil_vwc_10cm) AS soil_vwc_10cm_min, max(soil_vwc_10cm) AS soil_vwc_10cm_max, avg(soil_vwc_10cm) AS soil_vwc_10cm_avg, sum(soil_vwc_10cm) AS soil_vwc_10cm_sum,
       count(soil_vwc_30cm)::integer AS soil_vwc_30cm_n, min(soil_vwc_30cm) AS soil_vwc_30cm_min, max(soil_vwc_30cm) AS soil_vwc_30cm_max, avg(soil_vwc_30cm) AS soil_vwc_30cm_avg, sum(soil_vwc_30cm) AS soil_vwc_30cm_sum,
       count(soil_temp_10cm_c)::integer AS soil_temp_10cm_c_n, min(soil_temp_10cm_c) AS soil_temp_10cm_c_min, max(soil_temp_10cm_c) AS soil_temp_10cm_c_max, avg(soil_temp_10cm_c) AS soil_temp_10cm_c_avg, sum(soil_temp_10cm_c) AS soil_temp_10cm_c_sum,
       count(soil_temp_30cm_c)::integer AS soil_temp_30cm_c_n, min(soil_temp_30cm_c) AS soil_temp_30cm_c_min, max(soil_temp_30cm_c) AS soil_temp_30cm_c_max, avg(soil_temp_30cm_c) AS soil_temp_30cm_c_avg, sum(soil_temp_30cm_c) AS soil_temp_30cm_c_sum,
       count(rain_mm)::integer AS rain_mm_n, min(rain_mm) AS rain_mm_min, max(rain_mm) AS rain_mm_max, avg(rain_mm) AS rain_mm_avg, sum(rain_mm) AS rain_mm_sum,
       count(leaf_wetness_pct)::integer AS leaf_wetness_pct_n, min(leaf_wetness_pct) AS leaf_wetness_pct_min, max(leaf_wetness_pct) AS leaf_wetness_pct_max, avg(leaf_wetness_pct) AS leaf_wetness_pct_avg, sum(leaf_wetness_pct) AS leaf_wetness_pct_sum,
       count(solar_wm2)::integer AS solar_wm2_n, min(solar_wm2) AS solar_wm2_min, max(solar_wm2) AS solar_wm2_max, avg(solar_wm2) AS solar_wm2_avg, sum(solar_wm2) AS solar_wm2_sum,
       count(wind_ms)::integer AS wind_ms_n, min(wind_ms) AS wind_ms_min, max(wind_ms) AS wind_ms_max, avg(wind_ms) AS wind_ms_avg, sum(wind_ms) AS wind_ms_sum
  FROM samples
 GROUP BY device_id, time_bucket(INTERVAL '1 day', time, 'Asia/Shanghai')
WITH NO DATA;

SELECT add_continuous_aggregate_policy('samples_hourly',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
SELECT add_continuous_aggregate_policy('samples_daily',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');

-- The rollup contract (same columns as the plain-path tables).
CREATE VIEW readings_hourly AS
SELECT c.device_id, v.metric, c.bucket, v.n, v.min, v.max, v.avg, v.sum
  FROM samples_hourly c
 CROSS JOIN LATERAL (VALUES
        ('air_temp_c' COLLATE "C", c.air_temp_c_n, c.air_temp_c_min, c.air_temp_c_max, c.air_temp_c_avg, c.air_temp_c_sum),
        ('air_rh_pct', c.air_rh_pct_n, c.air_rh_pct_min, c.air_rh_pct_max, c.air_rh_pct_avg, c.air_rh_pct_sum),
        ('soil_vwc_10cm', c.soil_vwc_10cm_n, c.soil_vwc_10cm_min, c.soil_vwc_10cm_max, c.soil_vwc_10cm_avg, c.soil_vwc_10cm_sum),
        ('soil_vwc_30cm', c.soil_vwc_30cm_n, c.soil_vwc_30cm_min, c.soil_vwc_30cm_max, c.soil_vwc_30cm_avg, c.soil_vwc_30cm_sum),
        ('soil_temp_10cm_c', c.soil_temp_10cm_c_n, c.soil_temp_10cm_c_min, c.soil_temp_10cm_c_max, c.soil_temp_10cm_c_avg, c.soil_temp_10cm_c_sum),
        ('soil_temp_30cm_c', c.soil_temp_30cm_c_n, c.soil_temp_30cm_c_min, c.soil_temp_30cm_c_max, c.soil_temp_30cm_c_avg, c.soil_temp_30cm_c_sum),
        ('rain_mm', c.rain_mm_n, c.rain_mm_min, c.rain_mm_max, c.rain_mm_avg, c.rain_mm_sum),
        ('leaf_wetness_pct', c.leaf_wetness_pct_n, c.leaf_wetness_pct_min, c.leaf_wetness_pct_max, c.leaf_wetness_pct_avg, c.leaf_wetness_pct_sum),
        ('solar_wm2', c.solar_wm2_n, c.solar_wm2_min, c.solar_wm2_max, c.solar_wm2_avg, c.solar_wm2_sum),
        ('wind_ms', c.wind_ms_n, c.wind_ms_min, c.wind_ms_max, c.wind_ms_avg, c.wind_ms_sum)
       ) AS v(metric, n, min, max, avg, sum)
 WHERE v.n > 0;

CREATE VIEW readings_daily AS
SELECT c.device_id, v.metric, c.bucket, v.n, v.min, v.max, v.avg, v.sum
  FROM samples_daily c
 CROSS JOIN LATERAL (VALUES
        ('air_temp_c' COLLATE "C", c.air_temp_c_n, c.air_temp_c_min, c.air_temp_c_max, c.air_temp_c_avg, c.air_temp_c_sum),
        ('air_rh_pct', c.air_rh_pct_n, c.air_rh_pct_min, c.air_rh_pct_max, c.air_rh_pct_avg, c.air_rh_pct_sum),
        ('soil_vwc_10cm', c.soil_vwc_10cm_n, c.soil_vwc_10cm_min, c.soil_vwc_10cm_max, c.soil_vwc_10cm_avg, c.soil_vwc_10cm_sum),
        ('soil_vwc_30cm', c.soil_vwc_30cm_n, c.soil_vwc_30cm_min, c.soil_vwc_30cm_max, c.soil_vwc_30cm_avg, c.soil_vwc_30cm_sum),
        ('soil_temp_10cm_c', c.soil_temp_10cm_c_n, c.soil_temp_10cm_c_min, c.soil_temp_10cm_c_max, c.soil_temp_10cm_c_avg, c.soil_temp_10cm_c_sum),
        ('soil_temp_30cm_c', c.soil_temp_30cm_c_n, c.soil_temp_30cm_c_min, c.soil_temp_30cm_c_max, c.soil_temp_30cm_c_avg, c.soil_temp_30cm_c_sum),
        ('rain_mm', c.rain_mm_n, c.rain_mm_min, c.rain_mm_max, c.rain_mm_avg, c.rain_mm_sum),
        ('leaf_wetness_pct', c.leaf_wetness_pct_n, c.leaf_wetness_pct_min, c.leaf_wetness_pct_max, c.leaf_wetness_pct_avg, c.leaf_wetness_pct_sum),
        ('solar_wm2', c.solar_wm2_n, c.solar_wm2_min, c.solar_wm2_max, c.solar_wm2_avg, c.solar_wm2_sum),
        ('wind_ms', c.wind_ms_n, c.wind_ms_min, c.wind_ms_max, c.wind_ms_avg, c.wind_ms_sum)
       ) AS v(metric, n, min, max, avg, sum)
 WHERE v.n > 0;

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
    -- no statement trigger on hypertables: mark the rollup bucket here (ingest marks its own batches)
    INSERT INTO readings_dirty (device_id, hour) VALUES (NEW.device_id, date_trunc('hour', NEW.time, 'UTC'))
    ON CONFLICT (device_id, hour) DO UPDATE SET marked_at = now();
    RETURN NEW;
END
$$;

CREATE TRIGGER readings_view_insert INSTEAD OF INSERT ON readings
    FOR EACH ROW EXECUTE FUNCTION readings_view_insert();
