-- API keys. A job's `owner` is the id of the key that created it. Only a slow hash of the secret
-- is kept (an Argon2id PHC string); the key itself is shown once, when it is created.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
