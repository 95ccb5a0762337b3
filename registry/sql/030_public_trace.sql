-- What a consumer scanning a trace code sees (issue 14): an orchard's public display name (orchard names
-- often hold the grower's full name), and per cooperative which facts its trace page discloses.
ALTER TABLE orchards ADD COLUMN public_name text
    CHECK (public_name IS NULL OR char_length(public_name) BETWEEN 1 AND 60);
ALTER TABLE cooperatives ADD COLUMN trace_shows text[];  -- NULL: registry.trace_disclosure.DEFAULT_SHOWN
