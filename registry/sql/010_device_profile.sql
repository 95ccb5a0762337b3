-- Which device profile (ingest/profiles/*.toml or the operator's YUNCANG_DEVICE_PROFILES_DIR) turns a
-- device's decoded payloads into metrics. NULL = the default of the wire format it arrives in
-- (yuncang's native gateway). Devices registered before profiles existed are native gateways.
-- The LoRaWAN identity used to find a device from ChirpStack / The Things Stack uplinks is the existing
-- column dev_eui (text, 16 lowercase hex digits, UNIQUE since 001_registry.sql).
-- IF NOT EXISTS: the devices-registry migration (020_device_fleet) adds it too, whichever runs first.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS profile text;
UPDATE devices SET profile = 'yuncang-native' WHERE profile IS NULL;
COMMENT ON COLUMN devices.profile IS 'device profile id (ingest profile catalogue); NULL = the wire format default';
