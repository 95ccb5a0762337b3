-- Grower-side records the yield model learns from, owned by orchard_models.

-- Harvested kg per orchard and season (harvest year). source: 'record' (entered by grower or
-- cooperative), 'warehouse' (summed from received lots), 'import', 'simulated'.
CREATE TABLE yield_history (
    orchard_id    text NOT NULL REFERENCES orchards ON DELETE CASCADE,
    season        integer NOT NULL,
    harvested_kg  double precision NOT NULL CHECK (harvested_kg >= 0),
    source        text NOT NULL DEFAULT 'record',
    PRIMARY KEY (orchard_id, season)
);

-- Farm work and in-season observations entered by growers (web/phone).
--   flower_density: 0-1 score of bloom intensity (0 = no flowers, 1 = full bloom everywhere);
--   fruit_set:      fruits per metre of branch, counted after fruit set;
--   work, pest, note: free records, value optional.
CREATE TABLE farm_records (
    record_id    bigserial PRIMARY KEY,
    orchard_id   text NOT NULL REFERENCES orchards ON DELETE CASCADE,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    observed_on  date NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('work', 'flower_density', 'fruit_set', 'pest', 'note')),
    value        double precision,
    note         text,
    recorded_by  text,
    CHECK (kind <> 'flower_density' OR value IS NULL OR (value >= 0 AND value <= 1)),
    CHECK (kind <> 'fruit_set' OR value IS NULL OR value >= 0)
);
CREATE INDEX farm_records_orchard_idx ON farm_records (orchard_id, observed_on DESC);
CREATE INDEX farm_records_kind_idx ON farm_records (kind, observed_on);
