-- Periodic statistics reports (数据统计分析: week / month / season) made by the scheduler, kept so a
-- manager downloads the one handed to the county rather than a figure that moved since.
CREATE TABLE statistics_reports (
    report_id      bigserial PRIMARY KEY,
    period         text NOT NULL CHECK (period IN ('week', 'month', 'season')),
    period_start   date NOT NULL,
    period_end     date NOT NULL,              -- exclusive
    cooperative_id text REFERENCES cooperatives,  -- NULL: the whole county
    created_at     timestamptz NOT NULL DEFAULT now(),
    figures        jsonb NOT NULL,
    xlsx           bytea NOT NULL,
    pdf            bytea NOT NULL,
    CHECK (period_end > period_start)
);
CREATE INDEX statistics_reports_latest_idx ON statistics_reports (period, cooperative_id, created_at DESC);
