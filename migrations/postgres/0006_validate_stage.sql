-- A sixth stage, `validate` (each audience's sample set against the customers), is a value of
-- `jobs.stage`: the column's CHECK constraint (named by Postgres after the table and column) is
-- replaced by one that admits it.
ALTER TABLE jobs DROP CONSTRAINT jobs_stage_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_stage_check
    CHECK (stage IN ('resolve', 'enrich', 'analyze', 'map', 'find', 'validate'));
