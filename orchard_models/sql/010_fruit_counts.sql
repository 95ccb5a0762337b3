-- Sample-tree fruit counts entered by growers, technicians or managers (owned by orchard_models,
-- which assimilates them into the next forecast run: orchard_models.fruit_counts).
--   tree_ids:       the sample trees' labels (as marked in the orchard), one per count;
--   fruit_per_tree: fruits counted on each of those trees (same order);
--   mean_fruit_g:   optional mean fresh mass of a fruit, g (from a weighed sample);
--   client_id:      the client's own id of the submission: the same id twice is one record.
CREATE TABLE fruit_counts (
    count_id        bigserial PRIMARY KEY,
    client_id       text NOT NULL UNIQUE CHECK (length(client_id) BETWEEN 1 AND 100),
    orchard_id      text NOT NULL REFERENCES orchards ON DELETE CASCADE,
    counted_on      date NOT NULL,
    tree_ids        text[] NOT NULL,
    fruit_per_tree  double precision[] NOT NULL,
    mean_fruit_g    double precision CHECK (mean_fruit_g IS NULL OR (mean_fruit_g > 0 AND mean_fruit_g <= 500)),
    recorded_by     text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(tree_ids) = cardinality(fruit_per_tree)),
    CHECK (cardinality(tree_ids) BETWEEN 1 AND 200)
);
CREATE INDEX fruit_counts_orchard_idx ON fruit_counts (orchard_id, counted_on DESC);
