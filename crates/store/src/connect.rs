//! Opening the store: which backend a URL names, and how each pool is configured.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
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
    /// SQLite writes one transaction at a time. This process's writers wait their turn here,
    /// first come first served, rather than in SQLite's busy handler, which sleeps with a
    /// growing backoff (1, 2, 5, 10 … 100 ms) and lets a writer that keeps the lock busy
    /// starve the others: one audience's export waited 0.9 s behind another's chunks. (Unused
    /// on Postgres, whose row locks queue writers themselves.)
    pub(crate) sqlite_writes: Arc<tokio::sync::Mutex<()>>,
    /// Copies a SQLite file's write-ahead log into the database in the background while the
    /// store is open (see [`checkpoint_in_background`]).
    _checkpointer: Option<Arc<AbortOnDrop>>,
}

/// How often the background checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Pages of write-ahead log after which a writer checkpoints itself, should the background
/// checkpointer fall behind (SQLite's default is 1000: 4 MB).
const WAL_AUTOCHECKPOINT_PAGES: &str = "25000";
/// The write-ahead log is cut back to this size after it has been copied in full.
const WAL_SIZE_LIMIT_BYTES: &str = "67108864";

/// Aborts a background task when the last clone of the store holding it goes.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SQLite's own checkpoints run inside the commit that crosses the threshold: that writer copies
/// the log into the database (reads, writes, a sync) before its commit returns, and with a
/// megabyte a commit (an export's chunks) that was most of a write's time. Passive checkpoints
/// from a task of their own do the copying beside the writers instead, never blocking them.
fn checkpoint_in_background(pool: SqlitePool) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            // A failed round (the database busy, a connection lost) is made up by the next,
            // or by a writer's own checkpoint at the threshold.
            let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await;
        }
    }))
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
        let checkpointer = match &pool {
            Pool::Sqlite(pool) if !is_in_memory(url) => {
                Some(Arc::new(checkpoint_in_background(pool.clone())))
            }
            _ => None,
        };
        Ok(Store {
            pool,
            sqlite_writes: Arc::default(),
            _checkpointer: checkpointer,
        })
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

fn is_in_memory(url: &str) -> bool {
    url == "sqlite::memory:" || url.starts_with("sqlite::memory:?")
}

async fn connect_sqlite(url: &str) -> Result<SqlitePool> {
    let in_memory = is_in_memory(url);
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
        options
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES)
    };

    let pool_options = if in_memory {
        // Every connection to `:memory:` is its own empty database: keep exactly one, forever.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .test_before_acquire(false)
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
