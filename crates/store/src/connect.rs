//! Opening the store: which backend a URL names, and how each pool is configured.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::{Result, StoreError};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The durable job store. Cloning is cheap: the clone shares the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

/// How long a SQLite writer waits for another writer before giving up with `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL lets readers run beside the one writer; a few connections are enough for that.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);
/// A pooled Postgres connection idle for longer than this is pinged before it is handed out.
/// sqlx pings on *every* acquire by default, which doubles the round trips of a job poll; a
/// connection in steady use has just proven itself, so only one that sat idle is checked.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

impl Store {
    /// Opens a store.
    ///
    /// `postgres://…` / `postgresql://…` → PostgreSQL. `sqlite://path`, `sqlite:path`,
    /// `sqlite::memory:` or a bare file path → SQLite; the file (and its directory) is created if
    /// missing, in WAL mode with a busy timeout and foreign keys on. Does not migrate: call
    /// [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_IF_IDLE_FOR {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            Pool::Postgres(pool)
        } else {
            Pool::Sqlite(connect_sqlite(url).await?)
        };
        Ok(Store { pool })
    }

    /// Brings the schema up to date. Safe to run from several processes at once on Postgres
    /// (sqlx serialises migrations with an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match &self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    /// Closes every connection; later calls fail. Lets a test or a shutdown finish cleanly.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

async fn connect_sqlite(url: &str) -> Result<SqlitePool> {
    let in_memory = url == "sqlite::memory:" || url.starts_with("sqlite::memory:?");
    let options = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else if url.contains("://") {
        // Any other scheme is a mistake (mysql://, http://): refuse rather than create a file
        // with a URL for a name. Only the scheme is echoed back, never credentials.
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(StoreError::InvalidUrl(format!("{scheme}://…")));
    } else if url.is_empty() {
        return Err(StoreError::InvalidUrl("empty database url".to_owned()));
    } else {
        SqliteConnectOptions::new().filename(url)
    };

    if !in_memory {
        create_parent_dir(options.get_filename())?;
    }

    let options = options
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // Deleted pages are overwritten: purged inputs must not linger in free pages of the file.
        .pragma("secure_delete", "ON");
    let options = if in_memory {
        options
    } else {
        options.journal_mode(SqliteJournalMode::Wal)
    };

    let pool_options = if in_memory {
        // Every connection to `:memory:` is its own empty database: keep exactly one, forever.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
    };
    Ok(pool_options
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?)
}

fn create_parent_dir(file: &Path) -> Result<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => {
            std::fs::create_dir_all(dir).map_err(|err| StoreError::Database(sqlx::Error::Io(err)))
        }
        _ => Ok(()),
    }
}
