-- Every scheduled job run: when it started and ended, how it went, and why it failed.
CREATE TABLE job_runs (
    run_id        bigserial PRIMARY KEY,
    job           text NOT NULL,
    scheduled_for timestamptz,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    outcome       text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'error')),
    error         text,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    host          text NOT NULL,
    pid           integer NOT NULL
);
CREATE INDEX job_runs_job_idx ON job_runs (job, started_at DESC);
