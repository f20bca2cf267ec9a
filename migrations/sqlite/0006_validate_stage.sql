-- no-transaction
-- A sixth stage, `validate` (each audience's sample set against the customers), is a value of
-- `jobs.stage`. SQLite cannot alter a CHECK constraint, so the table is rebuilt the way its
-- documentation prescribes (https://sqlite.org/lang_altertable.html, "other kinds of table
-- schema changes"): foreign keys off outside the transaction, so that dropping the old table
-- does not cascade to what the jobs own; a new table, every row copied, the old one dropped, the
-- new one renamed, its indexes made again; then foreign keys on. `-- no-transaction` (first
-- line) lets the script switch foreign keys itself and run its own transaction.
PRAGMA foreign_keys = OFF;

BEGIN;

CREATE TABLE jobs_new (
    id               BLOB PRIMARY KEY NOT NULL,
    owner            TEXT,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    stage            TEXT
                     CHECK (stage IN ('resolve', 'enrich', 'analyze', 'map', 'find', 'validate')),
    progress         TEXT NOT NULL,
    workflow_id      TEXT,
    options          TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    run_after        INTEGER NOT NULL,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key  TEXT,
    request_hash     TEXT NOT NULL,
    resolution       TEXT,
    error            TEXT,
    result           TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    expires_at       INTEGER NOT NULL
);

-- The same columns in the same order (the table was never altered since 0001).
INSERT INTO jobs_new SELECT * FROM jobs;

DROP TABLE jobs;

ALTER TABLE jobs_new RENAME TO jobs;

-- The claim query scans active jobs oldest first; finished jobs are not in this index at all.
CREATE INDEX jobs_claim_idx ON jobs (created_at, id) WHERE status IN ('queued', 'running');

-- Listing, newest first, with keyset pagination on (created_at, id).
CREATE INDEX jobs_list_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_owner_list_idx ON jobs (owner, created_at DESC, id DESC);
CREATE INDEX jobs_status_list_idx ON jobs (status, created_at DESC, id DESC);

-- Retention sweep over finished jobs only.
CREATE INDEX jobs_expiry_idx ON jobs (expires_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');

-- One job per (owner, Idempotency-Key); jobs without an owner share one key space.
CREATE UNIQUE INDEX jobs_idempotency_idx ON jobs (COALESCE(owner, ''), idempotency_key)
    WHERE idempotency_key IS NOT NULL;

COMMIT;

PRAGMA foreign_keys = ON;
