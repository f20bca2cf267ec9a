//! Throwaway databases for tests: a SQLite file in a temp dir, always; a fresh Postgres database
//! when `ICP_TEST_DATABASE_URL` names a server. Also the jobs tests create and the rows they read
//! or write behind the store's back. Test code: failures here panic with a message.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::connect::{Backend, Pool, Store};
use crate::model::{NewJob, Stage};

/// The env var naming a Postgres server (any database on it) where tests may create databases.
pub const TEST_DATABASE_URL_ENV: &str = "ICP_TEST_DATABASE_URL";

/// One database that exists for the life of this value.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
        dropped: bool,
    },
}

impl TestDatabase {
    /// A fresh SQLite file in a new temp dir (removed on drop).
    pub async fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("create a temp dir for the test database");
        let url = dir
            .path()
            .join("icp-test.db")
            .to_str()
            .expect("temp dir path is UTF-8")
            .to_owned();
        TestDatabase {
            url,
            kind: Kind::Sqlite { _dir: dir },
        }
    }

    /// A freshly created, empty Postgres database when `ICP_TEST_DATABASE_URL` is set; `None`
    /// when it is not. Dropped (`WITH (FORCE)`) when this value drops or on [`cleanup`].
    ///
    /// # Panics
    /// When the variable is set but the server cannot be reached or refuses `CREATE DATABASE`:
    /// a configured Postgres must never be skipped silently.
    ///
    /// [`cleanup`]: TestDatabase::cleanup
    pub async fn postgres() -> Option<TestDatabase> {
        let admin_url = std::env::var(TEST_DATABASE_URL_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())?;
        let name = format!("icp_test_{}", Uuid::new_v4().simple());
        let create = format!("CREATE DATABASE \"{name}\"");
        if let Err(err) = admin_sql(admin_url.clone(), create).await {
            panic!(
                "{TEST_DATABASE_URL_ENV} is set but creating a test database on that server \
                 failed: {err}"
            );
        }
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|err| panic!("{TEST_DATABASE_URL_ENV} is not a valid URL: {err}"));
        url.set_path(&name);
        Some(TestDatabase {
            url: url.into(),
            kind: Kind::Postgres {
                admin_url,
                name,
                dropped: false,
            },
        })
    }

    /// SQLite always, then Postgres when configured: run a test body over each.
    pub async fn all() -> Vec<TestDatabase> {
        let mut databases = vec![TestDatabase::sqlite().await];
        databases.extend(TestDatabase::postgres().await);
        databases
    }

    /// The URL to pass to [`Store::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        match self.kind {
            Kind::Sqlite { .. } => Backend::Sqlite,
            Kind::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A connected, migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.unwrap_or_else(|err| {
            panic!("connect to the {:?} test database: {err}", self.backend())
        });
        store
            .migrate()
            .await
            .unwrap_or_else(|err| panic!("migrate the {:?} test database: {err}", self.backend()));
        store
    }

    /// Drops the database now (Postgres; SQLite's temp dir goes on drop). Idempotent.
    pub async fn cleanup(mut self) {
        if let Kind::Postgres {
            admin_url,
            name,
            dropped,
        } = &mut self.kind
            && !*dropped
        {
            *dropped = true;
            if let Err(err) = admin_sql(admin_url.clone(), drop_sql(name)).await {
                panic!("dropping test database {name}: {err}");
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres {
            admin_url,
            name,
            dropped: false,
        } = &self.kind
        {
            // No panic in drop (it may run during another panic's unwinding): report and move on.
            if let Err(err) = run_blocking(admin_sql(admin_url.clone(), drop_sql(name))) {
                eprintln!("warning: could not drop test database {name}: {err}");
            }
        }
    }
}

/// Takes the write lock of the SQLite database at `path` from a connection of its own and holds
/// it until [`SqliteWriteLock::release`], as another process (a backup, a migration, a stuck
/// `sqlite3` shell) would: writers then find the database busy, readers still read. The lock is
/// what makes a SQLite file unwritable whoever the service runs as (permissions do not stop
/// root; a file renamed or removed stays open under its old descriptors), and releasing it puts
/// everything back as it was.
///
/// # Panics
/// When the lock cannot be taken within 10 s.
pub async fn lock_sqlite_writes(path: &str) -> SqliteWriteLock {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .expect("open a second connection to the test database");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("take the write lock of the test database");
    SqliteWriteLock { conn }
}

/// A SQLite write lock held by a connection outside the store (see [`lock_sqlite_writes`]);
/// dropping it without `release` releases it too, when the connection closes.
#[derive(Debug)]
pub struct SqliteWriteLock {
    conn: SqliteConnection,
}

impl SqliteWriteLock {
    /// Rolls back the empty transaction: the lock is free again.
    pub async fn release(mut self) {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.conn)
            .await
            .expect("release the write lock");
        let _ = self.conn.close().await;
    }
}

/// A job to create, expiring in a day.
pub fn new_job(owner: Option<&str>, key: Option<&str>, hash: &str) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        owner: owner.map(str::to_owned),
        options: json!({ "strategies": ["precision", "reach"] }),
        progress: json!({}),
        input: json!({ "emails": ["a@example.com", "b@example.com"] }),
        idempotency_key: key.map(str::to_owned),
        request_hash: hash.to_owned(),
        expires_at: OffsetDateTime::now_utc() + time::Duration::days(1),
    }
}

/// Row counts of every table that holds data of one job: after a delete, all must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobFootprint {
    pub jobs: i64,
    pub inputs: i64,
    pub checkpoints: i64,
    pub exports: i64,
    pub traces: i64,
}

impl JobFootprint {
    pub fn is_empty(&self) -> bool {
        *self == JobFootprint::default()
    }
}

/// Stores an export chunk as the store wrote them before they were compressed: the text in
/// `body`, no `body_lz4`.
pub async fn put_plain_export_chunk(store: &Store, id: Uuid, strategy: &str, no: i64, body: &str) {
    let sql = "INSERT INTO job_exports (job_id, strategy, chunk_no, body) VALUES ($1, $2, $3, $4)";
    put_plain(store, sql, id, strategy, no, body).await;
}

/// Stores a checkpoint as the store wrote them before they were compressed: the text in
/// `payload`, no `payload_lz4`.
pub async fn put_plain_checkpoint(store: &Store, id: Uuid, stage: Stage, seq: i64, payload: &str) {
    let sql = "INSERT INTO job_checkpoints (job_id, stage, seq, payload) VALUES ($1, $2, $3, $4)";
    put_plain(store, sql, id, stage.as_str(), seq, payload).await;
}

async fn put_plain(store: &Store, sql: &'static str, id: Uuid, key: &str, no: i64, text: &str) {
    let written = match &store.pool {
        Pool::Sqlite(pool) => {
            let q = sqlx::query(sql).bind(id).bind(key).bind(no).bind(text);
            q.execute(pool).await.map(drop)
        }
        Pool::Postgres(pool) => {
            let q = sqlx::query(sql).bind(id).bind(key).bind(no).bind(text);
            q.execute(pool).await.map(drop)
        }
    };
    written.unwrap_or_else(|err| panic!("write a plain row: {err}"));
}

/// Counts the rows one job has in each table, reading the tables directly.
pub async fn job_footprint(store: &Store, id: Uuid) -> JobFootprint {
    async fn count(store: &Store, table: &str, column: &str, id: Uuid) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
        let counted: Result<i64, sqlx::Error> = match &store.pool {
            Pool::Sqlite(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(pool)
                    .await
            }
            Pool::Postgres(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(pool)
                    .await
            }
        };
        counted.unwrap_or_else(|err| panic!("count rows of {table}: {err}"))
    }
    JobFootprint {
        jobs: count(store, "jobs", "id", id).await,
        inputs: count(store, "job_inputs", "job_id", id).await,
        checkpoints: count(store, "job_checkpoints", "job_id", id).await,
        exports: count(store, "job_exports", "job_id", id).await,
        traces: count(store, "job_traces", "job_id", id).await,
    }
}

/// Every table with a `job_id` column — where a job's data can be — read from the schema itself,
/// so a table added later is covered without anyone remembering to.
pub async fn job_tables(store: &Store) -> Vec<String> {
    let tables: Result<Vec<String>, sqlx::Error> = match &store.pool {
        Pool::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c \
                 WHERE m.type = 'table' AND c.name = 'job_id' ORDER BY m.name",
            )
            .fetch_all(pool)
            .await
        }
        Pool::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_name = 'job_id' \
                 ORDER BY table_name",
            )
            .fetch_all(pool)
            .await
        }
    };
    tables.unwrap_or_else(|err| panic!("list the tables of job data: {err}"))
}

/// The rows one job has in `jobs` and in each of [`job_tables`], by table.
pub async fn job_rows(store: &Store, id: Uuid) -> BTreeMap<String, i64> {
    let mut rows = BTreeMap::new();
    rows.insert("jobs".to_owned(), count_rows(store, "jobs", "id", id).await);
    for table in job_tables(store).await {
        let n = count_rows(store, &table, "job_id", id).await;
        rows.insert(table, n);
    }
    rows
}

async fn count_rows(store: &Store, table: &str, column: &str, id: Uuid) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
    let counted: Result<i64, sqlx::Error> = match &store.pool {
        Pool::Sqlite(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(pool)
                .await
        }
        Pool::Postgres(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(pool)
                .await
        }
    };
    counted.unwrap_or_else(|err| panic!("count rows of {table}: {err}"))
}

/// Everything the store holds for one job, as text: the job row's documents and every row of
/// its input, checkpoints (unpacked), exports (unpacked) and traces. For tests that look for
/// personal data that must be gone.
pub async fn job_text(store: &Store, id: Uuid) -> String {
    const JOB: &str = "SELECT CAST(options AS TEXT) || ' ' || CAST(progress AS TEXT) || ' ' || \
        COALESCE(CAST(resolution AS TEXT), '') || ' ' || COALESCE(CAST(error AS TEXT), '') || ' ' \
        || COALESCE(CAST(result AS TEXT), '') || ' ' || COALESCE(workflow_id, '') \
        FROM jobs WHERE id = $1";
    const INPUT: &str = "SELECT CAST(input AS TEXT) FROM job_inputs WHERE job_id = $1";
    const CHECKPOINTS: &str = "SELECT payload, payload_lz4 FROM job_checkpoints WHERE job_id = $1";
    const EXPORTS: &str = "SELECT body, body_lz4 FROM job_exports WHERE job_id = $1";
    const TRACES: &str =
        "SELECT stage || ' ' || tool || ' ' || tool_trace_id FROM job_traces WHERE job_id = $1";
    macro_rules! read {
        ($sql:expr, $ty:ty) => {{
            let read: Result<Vec<$ty>, sqlx::Error> = match &store.pool {
                Pool::Sqlite(pool) => sqlx::query_as($sql).bind(id).fetch_all(pool).await,
                Pool::Postgres(pool) => sqlx::query_as($sql).bind(id).fetch_all(pool).await,
            };
            read.unwrap_or_else(|err| panic!("read the job's rows: {err}"))
        }};
    }
    let mut text = Vec::new();
    for (row,) in read!(JOB, (String,)) {
        text.push(row);
    }
    for (row,) in read!(INPUT, (String,)) {
        text.push(row);
    }
    for (plain, packed) in read!(CHECKPOINTS, (String, Option<Vec<u8>>)) {
        text.push(crate::artifacts::unpack(plain, packed, String::new).expect("a checkpoint"));
    }
    for (plain, packed) in read!(EXPORTS, (String, Option<Vec<u8>>)) {
        text.push(crate::artifacts::unpack(plain, packed, String::new).expect("an export chunk"));
    }
    for (row,) in read!(TRACES, (String,)) {
        text.push(row);
    }
    text.join("\n")
}

fn drop_sql(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
}

/// Runs one statement on the admin connection (CREATE / DROP DATABASE cannot run in a
/// transaction, so no pool).
async fn admin_sql(admin_url: String, sql: String) -> Result<(), sqlx::Error> {
    let options: PgConnectOptions = admin_url.parse()?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect_with(&options),
    )
    .await
    .map_err(|_| sqlx::Error::PoolTimedOut)??;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// Runs a future to completion on a private runtime in its own thread, so `Drop` can run async
/// cleanup whether or not it is called from inside a runtime.
fn run_blocking<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a runtime for test database setup")
            .block_on(fut)
    })
    .join()
    .expect("test database setup thread panicked")
}
