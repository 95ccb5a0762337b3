-- Many devices per orchard (gateway, soil probes at several depths, weather station) and devices in
-- cold rooms; where each device was when (device_assignments) so that a moved or replaced device's
-- readings stay with the orchard it measured at the time. Read placements through the view
-- device_placements (registry.devices.PLACEMENT_JOIN), never through devices.orchard_id alone.

-- the profiles work (registry 010-014) adds these too; IF NOT EXISTS lets either migration run first
ALTER TABLE devices ADD COLUMN IF NOT EXISTS profile text, ADD COLUMN IF NOT EXISTS dev_eui text;

ALTER TABLE devices
    ADD COLUMN kind            text NOT NULL DEFAULT 'gateway'
        CHECK (kind IN ('gateway', 'soil_probe', 'weather_station', 'air_sensor', 'other')),
    ADD COLUMN access_token_id text UNIQUE,      -- ThingsBoard device access-token *id* (never the secret)
    ADD COLUMN cold_room_id    text,             -- FK to trading's cold_rooms: yuncang/sql/040
    ADD COLUMN depth_cm        integer CHECK (depth_cm BETWEEN 0 AND 500),  -- soil probe depth, cm
    ADD COLUMN position        text NOT NULL DEFAULT '',                    -- e.g. 'row 3, tree 12'
    ADD COLUMN status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'spare', 'retired')),
    ADD COLUMN retired_at      timestamptz,
    ADD COLUMN replaced_by     text REFERENCES devices,
    ADD COLUMN note            text NOT NULL DEFAULT '';
-- a cold-room device has no orchard; a spare in stock has neither
ALTER TABLE devices ALTER COLUMN orchard_id DROP NOT NULL;
ALTER TABLE devices ADD CONSTRAINT devices_one_place CHECK (num_nonnulls(orchard_id, cold_room_id) <= 1);
ALTER TABLE devices ADD CONSTRAINT devices_retired_at CHECK ((status = 'retired') = (retired_at IS NOT NULL));
CREATE INDEX devices_cold_room_idx ON devices (cold_room_id) WHERE cold_room_id IS NOT NULL;

-- Where a device was from valid_from (inclusive) to valid_to (exclusive; NULL = still there).
-- A device's first placement starts at -infinity: readings it buffered or was back-filled with before
-- its recorded installation belong to the first place it was put.
CREATE TABLE device_assignments (
    assignment_id bigserial PRIMARY KEY,
    device_id     text NOT NULL REFERENCES devices ON DELETE CASCADE,
    orchard_id    text REFERENCES orchards ON DELETE CASCADE,
    cold_room_id  text,                          -- FK to trading's cold_rooms: yuncang/sql/040
    valid_from    timestamptz NOT NULL DEFAULT '-infinity',
    valid_to      timestamptz,
    CHECK (num_nonnulls(orchard_id, cold_room_id) = 1),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX device_assignments_open_idx ON device_assignments (device_id) WHERE valid_to IS NULL;
CREATE INDEX device_assignments_device_idx ON device_assignments (device_id, valid_from);
CREATE INDEX device_assignments_orchard_idx ON device_assignments (orchard_id) WHERE orchard_id IS NOT NULL;

-- No two periods of one device overlap (btree_gist is not in every PostgreSQL build: a trigger instead).
CREATE FUNCTION device_assignments_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('device_assignments:' || NEW.device_id));
    IF EXISTS (SELECT 1 FROM device_assignments a
               WHERE a.device_id = NEW.device_id AND a.assignment_id <> NEW.assignment_id
                 AND tstzrange(a.valid_from, coalesce(a.valid_to, 'infinity'))
                     && tstzrange(NEW.valid_from, coalesce(NEW.valid_to, 'infinity'))) THEN
        RAISE EXCEPTION 'device % already has a placement overlapping % .. %', NEW.device_id, NEW.valid_from,
            coalesce(NEW.valid_to::text, 'now') USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER device_assignments_no_overlap BEFORE INSERT OR UPDATE ON device_assignments
    FOR EACH ROW EXECUTE FUNCTION device_assignments_no_overlap();

-- Keep the history in step when devices rows are written directly (seed, registry CSV import):
-- a new device gets its first placement; a changed place closes the open period now and opens the next;
-- a device written as retired ends its open period at retired_at.
-- registry.devices.move() writes the history first (with the move's own time), so this finds it in step.
CREATE FUNCTION devices_follow_place() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cur device_assignments%ROWTYPE;
    had boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF num_nonnulls(NEW.orchard_id, NEW.cold_room_id) = 1 THEN
            INSERT INTO device_assignments (device_id, orchard_id, cold_room_id, valid_to)
            VALUES (NEW.device_id, NEW.orchard_id, NEW.cold_room_id, NEW.retired_at);
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.status = 'retired' THEN  -- retired by a direct write: its open period ends at retired_at
        UPDATE device_assignments SET valid_to = greatest(NEW.retired_at, valid_from + interval '1 microsecond')
         WHERE device_id = NEW.device_id AND valid_to IS NULL;
        RETURN NEW;
    END IF;
    SELECT * INTO cur FROM device_assignments WHERE device_id = NEW.device_id AND valid_to IS NULL;
    had := FOUND;
    IF had AND cur.orchard_id IS NOT DISTINCT FROM NEW.orchard_id
             AND cur.cold_room_id IS NOT DISTINCT FROM NEW.cold_room_id THEN
        RETURN NEW;
    END IF;
    IF had THEN
        UPDATE device_assignments SET valid_to = greatest(now(), cur.valid_from + interval '1 microsecond')
         WHERE assignment_id = cur.assignment_id;
    END IF;
    IF num_nonnulls(NEW.orchard_id, NEW.cold_room_id) = 1 THEN
        INSERT INTO device_assignments (device_id, orchard_id, cold_room_id, valid_from)
        VALUES (NEW.device_id, NEW.orchard_id, NEW.cold_room_id,
                CASE WHEN had THEN greatest(now(), cur.valid_from + interval '1 microsecond')
                     ELSE coalesce((SELECT max(valid_to) FROM device_assignments WHERE device_id = NEW.device_id),
                                   '-infinity') END);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER devices_follow_place_ins AFTER INSERT ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_follow_place();
CREATE TRIGGER devices_follow_place_upd AFTER UPDATE OF orchard_id, cold_room_id, status ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_follow_place();

INSERT INTO device_assignments (device_id, orchard_id, valid_to)
SELECT device_id, orchard_id, CASE WHEN active THEN NULL ELSE now() END FROM devices WHERE orchard_id IS NOT NULL;
UPDATE devices SET status = 'retired', retired_at = now() WHERE NOT active;

-- Placements with an always-present end ('infinity' while still there): join a reading at time t as
--   JOIN device_placements p ON p.device_id = r.device_id AND t >= p.valid_from AND t < p.valid_to
CREATE VIEW device_placements AS
SELECT device_id, orchard_id, cold_room_id, valid_from, coalesce(valid_to, 'infinity') AS valid_to
  FROM device_assignments;
