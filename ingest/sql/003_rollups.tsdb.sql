-- Rollups on TimescaleDB: continuous aggregates with the same columns as the plain-path tables,
--   readings_hourly.bucket = start of the UTC hour;
--   readings_daily.bucket  = start of the local day in Asia/Shanghai (time_bucket with time zone);
-- n = number of readings, min/max/avg/sum of value in the metric's unit. Real-time aggregation is
-- on (materialized_only = false) so the newest buckets are always complete for readers.
-- Created WITH NO DATA so this migration can run inside the runner's transaction.
--
-- Refresh: a policy refreshes the last 3 days every 30 minutes; older late data (a gateway's buffer
-- from last week) is refreshed by ingest.rollups.refresh(), which calls
-- refresh_continuous_aggregate() for the hours marked in readings_dirty. Both policies' windows
-- start well inside the raw retention (400 days), so dropping raw chunks never erases rollups.
-- The daily aggregate reads the raw hypertable (not the hourly one) so it does not depend on
-- hierarchical-aggregate support.
CREATE MATERIALIZED VIEW readings_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       metric,
       time_bucket(INTERVAL '1 hour', time) AS bucket,
       count(*)::integer   AS n,
       min(value)          AS min,
       max(value)          AS max,
       avg(value)          AS avg,
       sum(value)          AS sum
  FROM readings
 GROUP BY device_id, metric, time_bucket(INTERVAL '1 hour', time)
WITH NO DATA;

CREATE MATERIALIZED VIEW readings_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       metric,
       time_bucket(INTERVAL '1 day', time, 'Asia/Shanghai') AS bucket,
       count(*)::integer   AS n,
       min(value)          AS min,
       max(value)          AS max,
       avg(value)          AS avg,
       sum(value)          AS sum
  FROM readings
 GROUP BY device_id, metric, time_bucket(INTERVAL '1 day', time, 'Asia/Shanghai')
WITH NO DATA;

SELECT add_continuous_aggregate_policy('readings_hourly',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
SELECT add_continuous_aggregate_policy('readings_daily',
    start_offset => INTERVAL '4 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
