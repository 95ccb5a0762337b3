-- Alerts raised by any module (risk models, device health, unsold-risk warnings), shown to growers
-- and managers. Owned by registry because every module writes them; raise through registry.alerts.
CREATE TABLE alerts (
    alert_id     bigserial PRIMARY KEY,
    dedupe_key   text NOT NULL UNIQUE,              -- same condition re-raised updates, never duplicates
    kind         text NOT NULL,                     -- 'frost', 'drought', 'brown_rot', 'heat', 'device_offline', 'unsold_risk', ...
    severity     text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    orchard_id   text REFERENCES orchards ON DELETE CASCADE,
    device_id    text REFERENCES devices ON DELETE CASCADE,
    cooperative_id text REFERENCES cooperatives,
    title_zh     text NOT NULL,
    title_en     text NOT NULL,
    advice_zh    text NOT NULL DEFAULT '',
    advice_en    text NOT NULL DEFAULT '',
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
CREATE INDEX alerts_open_idx ON alerts (orchard_id, raised_at DESC) WHERE resolved_at IS NULL;
CREATE INDEX alerts_kind_idx ON alerts (kind, raised_at DESC);
