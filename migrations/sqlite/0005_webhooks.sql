-- Webhooks. A job whose options carry a `callback_url` gets one message when it ends, written
-- in the transaction that ends it (an outbox), so a crash between the two loses nothing.
-- Deliveries are claimed under a lease like jobs; every attempt is kept and shown on the job.
-- The signing secret of each API key is kept as it is (a signature needs it, a hash would not do).
ALTER TABLE api_keys ADD COLUMN webhook_secret TEXT;

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY NOT NULL,
    job_id           BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    owner            TEXT,
    event            TEXT NOT NULL,
    url              TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('pending', 'delivered', 'gone', 'abandoned', 'refused')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_job_idx ON webhook_deliveries (job_id);

CREATE TABLE webhook_attempts (
    delivery_id     TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    job_id          BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    status_code     INTEGER,
    error_kind      TEXT,
    duration_ms     INTEGER NOT NULL,
    next_attempt_at INTEGER,
    outcome         TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX webhook_attempts_job_idx ON webhook_attempts (job_id);
