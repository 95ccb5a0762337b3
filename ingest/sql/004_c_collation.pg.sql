-- Databases migrated before 002/003 declared COLLATE "C" on device_id/metric get it here (see the note
-- in 002_readings.pg.sql: byte-order comparison makes inserts into the primary-key index much cheaper).
-- A no-op on databases created with the current 001-003.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['readings', 'readings_staging', 'readings_hourly', 'readings_daily'] LOOP
        IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
                    WHERE a.attrelid = t::regclass AND a.attname = 'device_id' AND c.collname <> 'C') THEN
            EXECUTE format('ALTER TABLE %I ALTER COLUMN device_id TYPE text COLLATE "C",'
                           ' ALTER COLUMN metric TYPE text COLLATE "C"', t);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
                WHERE a.attrelid = 'readings_dirty'::regclass AND a.attname = 'device_id' AND c.collname <> 'C') THEN
        ALTER TABLE readings_dirty ALTER COLUMN device_id TYPE text COLLATE "C";
    END IF;
END
$$;
