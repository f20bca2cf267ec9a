-- What a client watching a job is sent (`GET /v1/jobs/{id}/events`): one row for each change of
-- its status, stage or progress, appended in the transaction of that change, `seq` counting
-- from 1 per job. Each row is the job's snapshot at that moment (status, stage, progress) copied
-- from the job row by the same statement, so a client resuming after any `seq` misses nothing,
-- whichever process made the change. Counts only: no identifier is ever in a progress document.
CREATE TABLE job_events (
    job_id   BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('status', 'stage', 'progress')),
    status   TEXT NOT NULL,
    stage    TEXT,
    progress TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
);
