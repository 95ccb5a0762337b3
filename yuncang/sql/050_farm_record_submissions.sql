-- Farm records sent from a phone's outbox carry a client-generated id (a UUID made when the grower
-- pressed save, possibly offline). A retry of the same submission (the network dropped the answer,
-- the page was reopened and the outbox flushed again) finds its record here instead of adding a second.
-- Owned by yuncang (the web layer's sync), pointing at orchard_models' farm_records.
CREATE TABLE farm_record_submissions (
    client_id     uuid PRIMARY KEY,
    record_id     bigint NOT NULL REFERENCES farm_records ON DELETE CASCADE,
    submitted_by  text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
