-- MQTT broker accounts issued by yuncang (`yuncang devices credentials`): one per native gateway,
-- ThingsBoard gateway/device or network-server integration, and ingest's own. Only the Mosquitto
-- password_file hash is kept ($7$: PBKDF2-HMAC-SHA512, iterations and salt inside); the password is
-- shown once when issued. registry.broker_accounts renders Mosquitto's password_file and acl_file.
CREATE TABLE broker_accounts (
    username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$'),
    kind          text NOT NULL CHECK (kind IN ('gateway', 'chirpstack', 'tts', 'thingsboard_gateway',
                                                'thingsboard_device', 'ingest')),
    device_id     text REFERENCES devices ON DELETE CASCADE,
    password_hash text NOT NULL CHECK (password_hash LIKE '$7$%'),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK (kind NOT IN ('gateway', 'thingsboard_device') OR device_id IS NOT NULL)
);
CREATE INDEX broker_accounts_device_idx ON broker_accounts (device_id) WHERE device_id IS NOT NULL;
