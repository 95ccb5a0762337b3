-- Devices in cold rooms: registry owns devices, trading owns cold_rooms and migrates after registry,
-- so the composition root ties them together here. A cold room may be run by a cooperative (its
-- managers then see the room's devices); NULL = the county's cloud warehouse (admins).
ALTER TABLE devices ADD CONSTRAINT devices_cold_room_fk FOREIGN KEY (cold_room_id) REFERENCES cold_rooms;
ALTER TABLE device_assignments ADD CONSTRAINT device_assignments_cold_room_fk
    FOREIGN KEY (cold_room_id) REFERENCES cold_rooms ON DELETE CASCADE;
ALTER TABLE cold_rooms ADD COLUMN IF NOT EXISTS cooperative_id text REFERENCES cooperatives;
