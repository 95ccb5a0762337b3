-- Rollups on plain PostgreSQL: ordinary tables, refreshed by ingest.rollups.refresh() from the
-- buckets marked in readings_dirty (late data included). Same columns as the TimescaleDB
-- continuous aggregates, so readers never care which path runs:
--   readings_hourly.bucket = start of the UTC hour;
--   readings_daily.bucket  = start of the local day in Asia/Shanghai (16:00 UTC the day before).
-- n = number of readings, min/max/avg/sum of value in the metric's unit.
-- Other writers (the simulator's history writer) may upsert daily rows directly with
-- ON CONFLICT (device_id, metric, bucket) DO UPDATE; a refresh overwrites a bucket only when raw
-- readings for it arrived.
CREATE TABLE readings_hourly (
    device_id  text COLLATE "C"             NOT NULL,
    metric     text COLLATE "C"             NOT NULL,
    bucket     timestamptz      NOT NULL,
    n          integer          NOT NULL,
    min        double precision,
    max        double precision,
    avg        double precision,
    sum        double precision,
    PRIMARY KEY (device_id, metric, bucket)
);
CREATE INDEX readings_hourly_bucket_idx ON readings_hourly (bucket);

CREATE TABLE readings_daily (
    device_id  text COLLATE "C"             NOT NULL,
    metric     text COLLATE "C"             NOT NULL,
    bucket     timestamptz      NOT NULL,
    n          integer          NOT NULL,
    min        double precision,
    max        double precision,
    avg        double precision,
    sum        double precision,
    PRIMARY KEY (device_id, metric, bucket)
);
CREATE INDEX readings_daily_bucket_idx ON readings_daily (bucket);
