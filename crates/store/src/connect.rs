//! Opening the store: which backend a URL names, and how each pool is configured.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, SqlSafeStr, Sqlite, Transaction};
use tokio::time::Instant;

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
    /// How long one operation waits to get in: for a connection, and on SQLite for its turn to
    /// write and the database's write lock. Past it the operation fails as unavailable
    /// ([`StoreError::is_unavailable`]) instead of hanging. Per clone ([`Store::with_wait`]): an
    /// HTTP request waits a fraction of a second, a worker longer.
    wait: Duration,
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

/// How long one try at SQLite's write lock waits in SQLite's busy handler. This process's
/// writers queue on `sqlite_writes` first, so the lock is busy only when another process holds
/// it; the store then tries again until its own deadline ([`Store::with_wait`]), which a short
/// busy timeout lets it keep.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_millis(50);
/// WAL lets readers run beside the one writer; a few connections are enough for that.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;
/// How long an operation waits to get in unless the store is told otherwise (workers, the
/// janitor, the command line); also the pool's own ceiling on waiting for a connection.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);
const ACQUIRE_TIMEOUT: Duration = DEFAULT_WAIT;
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
            wait: DEFAULT_WAIT,
            _checkpointer: checkpointer,
        })
    }

    /// This store (same pool, same write queue) with operations that wait at most `wait` to get
    /// in, then fail as unavailable. Capped by the pool's own wait, [`DEFAULT_WAIT`].
    pub fn with_wait(&self, wait: Duration) -> Store {
        Store {
            wait,
            ..self.clone()
        }
    }

    /// When an operation starting now must have got in.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.wait
    }

    /// A pooled connection, or `PoolTimedOut` at `deadline`: a database that refuses or does not
    /// answer connections makes the pool retry until then.
    pub(crate) async fn acquire<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
        deadline: Instant,
    ) -> Result<PoolConnection<DB>> {
        match tokio::time::timeout_at(deadline, pool.acquire()).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }

    /// This process's turn to write to SQLite (see `sqlite_writes`), waited for until
    /// `deadline`.
    pub(crate) async fn write_turn(
        &self,
        deadline: Instant,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        tokio::time::timeout_at(deadline, self.sqlite_writes.lock())
            .await
            .map_err(|_| StoreError::Unavailable {
                waiting_for: "its turn to write",
                waited_ms: self.wait.as_millis() as u64,
            })
    }

    /// A SQLite transaction holding the write lock. `IMMEDIATE` takes the lock up front: a
    /// deferred transaction that reads first and writes later can fail with
    /// `SQLITE_BUSY_SNAPSHOT`, which no busy timeout retries. While another process holds the
    /// lock, tries again until `deadline`, then fails with `SQLITE_BUSY`.
    pub(crate) async fn begin_immediate(
        &self,
        pool: &SqlitePool,
        deadline: Instant,
    ) -> Result<Transaction<'static, Sqlite>> {
        loop {
            let conn = self.acquire(pool, deadline).await?;
            match Transaction::begin(conn, Some("BEGIN IMMEDIATE".into_sql_str())).await {
                Ok(tx) => return Ok(tx),
                Err(err) if is_busy(&err) && Instant::now() < deadline => continue,
                Err(err) => return Err(err.into()),
            }
        }
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

    /// The connection pool's use now (shared by every clone of this store).
    pub fn pool_stats(&self) -> crate::PoolStats {
        let (open, idle, max) = match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Pool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        crate::PoolStats {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }

    /// Whether the database takes work, within this store's wait: for readiness checks, and for
    /// workers waiting out an outage. On SQLite that is whether this process could write: a
    /// read answers while another process holds the write lock, and every job writes.
    pub async fn ping(&self) -> Result<()> {
        let deadline = self.deadline();
        match &self.pool {
            Pool::Sqlite(pool) => {
                let _writing = self.write_turn(deadline).await?;
                self.begin_immediate(pool, deadline)
                    .await?
                    .rollback()
                    .await?;
            }
            Pool::Postgres(pool) => {
                let mut conn = self.acquire(pool, deadline).await?;
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
            }
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

/// SQLite's `SQLITE_BUSY` (and its extended codes): the write lock is another connection's.
fn is_busy(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
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
