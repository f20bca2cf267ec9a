-- The job queue and everything a job owns. Timestamps are unix milliseconds (BIGINT), set by the
-- application clock, so both backends store and compare them identically.

CREATE TABLE jobs (
    id               UUID PRIMARY KEY,
    owner            TEXT,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    stage            TEXT
                     CHECK (stage IN ('resolve', 'enrich', 'analyze', 'map', 'find')),
    progress         JSONB NOT NULL,
    workflow_id      TEXT,
    options          JSONB NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    run_after        BIGINT NOT NULL,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key  TEXT,
    request_hash     TEXT NOT NULL,
    resolution       JSONB,
    error            JSONB,
    result           JSONB,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    expires_at       BIGINT NOT NULL
);

-- The claim query scans active jobs oldest first; finished jobs (the vast majority over time)
-- are not in this index at all.
CREATE INDEX jobs_claim_idx ON jobs (created_at, id) WHERE status IN ('queued', 'running');

-- Listing, newest first, with keyset pagination on (created_at, id).
CREATE INDEX jobs_list_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_owner_list_idx ON jobs (owner, created_at DESC, id DESC);
CREATE INDEX jobs_status_list_idx ON jobs (status, created_at DESC, id DESC);

-- Retention sweep over finished jobs only.
CREATE INDEX jobs_expiry_idx ON jobs (expires_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');

-- One job per (owner, Idempotency-Key). COALESCE so that jobs without an owner (auth disabled)
-- share one key space instead of NULLs never colliding.
CREATE UNIQUE INDEX jobs_idempotency_idx ON jobs (COALESCE(owner, ''), idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The customer identifiers: personal data, kept apart so it can be purged the moment the job ends.
CREATE TABLE job_inputs (
    job_id UUID PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    input  JSONB NOT NULL
);

-- Stage checkpoints (may hold person ids: purged with the input).
CREATE TABLE job_checkpoints (
    job_id  UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (job_id, stage, seq)
);

-- The downloaded audience exports, chunked so a large audience streams out without one huge row.
CREATE TABLE job_exports (
    job_id   UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    strategy TEXT NOT NULL,
    chunk_no BIGINT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (job_id, strategy, chunk_no)
);

-- Upstream tool_trace_ids, for support and feedback.
CREATE TABLE job_traces (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage         TEXT NOT NULL,
    tool          TEXT NOT NULL,
    tool_trace_id TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX job_traces_job_idx ON job_traces (job_id, id);
