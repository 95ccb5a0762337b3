-- Versioned supply forecasts, owned by orchard_models. One forecast run = one call of
-- orchard_models.run.forecast_all(conn, as_of): all orchards, computed from what was known at as_of.

CREATE TABLE forecast_runs (
    run_id         bigserial PRIMARY KEY,
    as_of          timestamptz NOT NULL,          -- information cut-off of the run (UTC)
    season         integer NOT NULL,              -- harvest year, e.g. 2026
    model_version  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    orchard_count  integer NOT NULL,
    meta           jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX forecast_runs_season_idx ON forecast_runs (season, as_of DESC, run_id DESC);

-- kg per orchard, harvest week (Monday, Asia/Shanghai) and grade (registry.grades.GRADE_CODES).
CREATE TABLE forecasts (
    run_id      bigint NOT NULL REFERENCES forecast_runs ON DELETE CASCADE,
    orchard_id  text NOT NULL REFERENCES orchards ON DELETE CASCADE,
    week_start  date NOT NULL,                     -- Monday of the harvest week, Asia/Shanghai
    grade       text NOT NULL,
    p10_kg      double precision NOT NULL,
    p50_kg      double precision NOT NULL,
    p90_kg      double precision NOT NULL,
    PRIMARY KEY (run_id, orchard_id, week_start, grade),
    CHECK (0 <= p10_kg AND p10_kg <= p50_kg AND p50_kg <= p90_kg),
    CHECK (extract(isodow FROM week_start) = 1)
);
CREATE INDEX forecasts_orchard_idx ON forecasts (orchard_id, run_id);

-- Per-orchard summary of a run: phenology dates, season totals (kg) and risk indices.
CREATE TABLE forecast_orchards (
    run_id         bigint NOT NULL REFERENCES forecast_runs ON DELETE CASCADE,
    orchard_id     text NOT NULL REFERENCES orchards ON DELETE CASCADE,
    bloom_date     date,                           -- predicted (or observed) full bloom, Asia/Shanghai
    harvest_start  date,
    harvest_end    date,
    total_p10_kg   double precision NOT NULL,
    total_p50_kg   double precision NOT NULL,
    total_p90_kg   double precision NOT NULL,
    risk           jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, orchard_id),
    CHECK (0 <= total_p10_kg AND total_p10_kg <= total_p50_kg AND total_p50_kg <= total_p90_kg)
);
CREATE INDEX forecast_orchards_orchard_idx ON forecast_orchards (orchard_id, run_id);

-- The newest run of each season: the one with the latest as_of (ties: the latest run_id).
CREATE VIEW latest_forecast_runs AS
SELECT DISTINCT ON (season) run_id, season, as_of, model_version, created_at, orchard_count, meta
FROM forecast_runs
ORDER BY season, as_of DESC, run_id DESC;

CREATE VIEW latest_forecasts AS
SELECT f.run_id, f.orchard_id, f.week_start, f.grade, f.p10_kg, f.p50_kg, f.p90_kg, r.season, r.as_of
FROM forecasts f JOIN latest_forecast_runs r USING (run_id);

CREATE VIEW latest_forecast_orchards AS
SELECT o.run_id, o.orchard_id, o.bloom_date, o.harvest_start, o.harvest_end,
       o.total_p10_kg, o.total_p50_kg, o.total_p90_kg, o.risk, r.season, r.as_of
FROM forecast_orchards o JOIN latest_forecast_runs r USING (run_id);
