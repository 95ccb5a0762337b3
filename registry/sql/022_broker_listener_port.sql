-- A ThingsBoard gateway cannot choose its topic (v1/gateway/telemetry is fixed), so the broker gives it
-- an identity by where it connects: a Mosquitto listener of its own whose mount_point puts
-- <prefix>tbgw/<username>/ in front of everything it publishes. A ThingsBoard device-API device
-- (v1/devices/me/telemetry, fixed too) gets the same, with mount_point <prefix>tb/<device_id>/. The listener's TCP port is stored so that
-- it stays the same when other gateways are added or removed (the technician configures it once).
-- Assigned by registry.broker_accounts.issue; rendered by `yuncang devices credentials files` into
-- thingsboard-listeners.conf.
ALTER TABLE broker_accounts
    ADD COLUMN listener_port integer UNIQUE CHECK (listener_port BETWEEN 1024 AND 65535),
    ADD CONSTRAINT broker_accounts_listener_port_kind CHECK (listener_port IS NULL
        OR kind IN ('thingsboard_gateway', 'thingsboard_device'));
