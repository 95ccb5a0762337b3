-- Issue 12, defects 1 and 2 on TimescaleDB.
--
-- 1. Raw retention follows ingest.windows (the one rule for accept / refresh / retain windows): raw
--    chunks are dropped only when they end at or before drop_before(now), a local (Asia/Shanghai)
--    midnight one day before the oldest accepted day, by the scheduler's `retention` job
--    (ingest.storage.apply_retention -> ingest_drop_partitions_before), as on plain PostgreSQL.
--    TimescaleDB's own retention policy cut at now - 400 days, mid local day, and took raw rows of
--    the oldest accepted day with it; it is removed here.
SELECT remove_retention_policy('samples', if_exists => true);

-- 2. Rollup marks carry the time they were made (clock_timestamp()), not their transaction's start
--    (now()): ingest.rollups deletes, after a refresh, exactly the marks made before it took them under
--    its lock; a transaction that started earlier but marks after that must keep its marks. A row
--    trigger stamps every insert and update of a mark, whoever writes it (ingest's writer, the narrow
--    view's insert trigger, a hand-written INSERT), so no writer can get it wrong.
ALTER TABLE readings_dirty ALTER COLUMN marked_at SET DEFAULT clock_timestamp();

CREATE FUNCTION ingest_stamp_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.marked_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER readings_dirty_stamp BEFORE INSERT OR UPDATE ON readings_dirty
    FOR EACH ROW EXECUTE FUNCTION ingest_stamp_mark();
