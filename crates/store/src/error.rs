/// Everything the store can fail with.
///
/// Messages never contain job inputs or other personal data: they name ids and tables only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The job asked for does not exist (or belongs to another owner).
    #[error("no such job")]
    NotFound,
    /// The `Idempotency-Key` was already used by this owner for a different request body.
    #[error("idempotency key already used with a different request")]
    IdempotencyConflict,
    /// A job with this id already exists (a caller reused an id).
    #[error("a job with id {0} already exists")]
    DuplicateId(uuid::Uuid),
    /// The worker's lease no longer matches the row (expired and reclaimed, job finished, deleted):
    /// the write was refused so a stale worker can never overwrite a newer attempt.
    #[error("lease lost: the job is no longer held by this worker and attempt")]
    LeaseLost,
    /// The connection URL is neither a Postgres URL nor a SQLite URL or path.
    #[error("unsupported database url: {0}")]
    InvalidUrl(String),
    /// A row holds a value the code cannot read back (an unknown status, a timestamp out of range).
    #[error("invalid data in the store: {0}")]
    InvalidData(String),
    /// The operation could not get in within the store's wait (see `Store::with_wait`).
    #[error("the database is unavailable: no {waiting_for} within {waited_ms} ms")]
    Unavailable {
        waiting_for: &'static str,
        waited_ms: u64,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the same call may succeed if made again: a dropped connection, a pool timeout,
    /// a busy SQLite file. Logical outcomes (`NotFound`, `LeaseLost`, conflicts) never are.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Database(err) => {
                matches!(
                    err,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                ) || err
                    .as_database_error()
                    .and_then(|db| db.code())
                    .is_some_and(|code| is_transient_code(&code))
            }
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached or entered at all — no connection, a dropped
    /// one, the server shutting down, SQLite's write lock held elsewhere — as opposed to a
    /// statement that reached it and failed. Such an error says nothing about the work: a worker
    /// waits for the database to answer again and carries on with the same attempt.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Database(err) => {
                matches!(
                    err,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                ) || err
                    .as_database_error()
                    .and_then(|db| db.code())
                    .is_some_and(|code| is_unavailable_code(&code))
            }
            _ => false,
        }
    }
}

/// Postgres: SQLSTATE classes 08 (connection) and 57P (shutdown, cannot connect now), and 53300
/// (too many connections). SQLite: BUSY (5) and LOCKED (6), primary codes.
fn is_unavailable_code(code: &str) -> bool {
    if code.len() == 5 {
        code.starts_with("08") || code.starts_with("57P") || code == "53300"
    } else {
        code.parse::<i32>()
            .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6))
    }
}

/// Postgres: SQLSTATE (always five characters) classes 08 (connection), 40 (serialization,
/// deadlock), 53 (resources), 57P (shutdown). SQLite: numeric result codes (at most four digits)
/// whose primary code is 5 (BUSY) or 6 (LOCKED).
fn is_transient_code(code: &str) -> bool {
    if code.len() == 5 {
        ["08", "40", "53", "57P"]
            .iter()
            .any(|class| code.starts_with(class))
    } else {
        code.parse::<i32>()
            .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6))
    }
}

#[cfg(test)]
mod tests {
    use super::{is_transient_code, is_unavailable_code};

    #[test]
    fn transient_codes_by_backend() {
        // Postgres: serialization failure, connection failure, admin shutdown, too many connections.
        for code in ["40001", "40P01", "08006", "57P01", "53300"] {
            assert!(is_transient_code(code), "{code}");
        }
        // Postgres: unique violation, syntax error, undefined table — numeric-looking too.
        for code in ["23505", "42601", "42P01", "22P02"] {
            assert!(!is_transient_code(code), "{code}");
        }
        // SQLite: BUSY, BUSY_SNAPSHOT (517), LOCKED; not CONSTRAINT_UNIQUE (2067) or ERROR (1).
        for code in ["5", "517", "6", "262"] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in ["2067", "1", "19"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn unavailable_codes_are_transient_and_not_the_other_way() {
        // Connection failure, admin shutdown, cannot connect now, too many connections, BUSY.
        for code in ["08006", "08001", "57P01", "57P03", "53300", "5", "517", "6"] {
            assert!(is_unavailable_code(code), "{code}");
            assert!(is_transient_code(code), "{code}");
        }
        // Reached the database and failed: serialization, deadlock, disk full, constraint.
        for code in ["40001", "40P01", "53100", "23505", "2067", "1"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }
}
