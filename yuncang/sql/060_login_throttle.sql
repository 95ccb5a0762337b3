-- Login throttling that strangers cannot use to lock a user out (issue 14; owned by yuncang.login_throttle).
-- login_failures gains two scopes: 'user_ip' (one account from one address: exponential backoff) and
-- 'device' (one remembered browser). Known-good devices: a browser that signed in successfully gets a
-- random cookie whose SHA-256 is stored here; its owner is throttled per device only, never by what
-- strangers do to the account.
DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'login_failures'::regclass AND contype = 'c' LOOP
        EXECUTE format('ALTER TABLE login_failures DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE login_failures ADD CONSTRAINT login_failures_scope_check
    CHECK (scope IN ('user', 'ip', 'user_ip', 'device'));

-- one row per (device, account): a shared phone is known-good for every account that signed in on it
CREATE TABLE login_devices (
    token_sha256  bytea NOT NULL,
    user_id       bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    PRIMARY KEY (token_sha256, user_id)
);
CREATE INDEX login_devices_user_idx ON login_devices (user_id);
