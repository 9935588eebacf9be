//! Storage: one API over SQLite (the default, nothing to install) and PostgreSQL (scale-out),
//! picked by the URL scheme. The tables are the truth; the queue only wakes things up.

/// Outcomes a later answer of the patient's own (an SMS reply) may still replace, as SQL.
macro_rules! undecided {
    () => {
        "('voicemail_left', 'sms_sent', 'reached', 'unreachable', 'expired')"
    };
}

mod callbacks;
mod import;
mod outreach;
mod queue;
mod replies;
mod report;
mod sqlite_bulk;

pub use callbacks::{FirstStep, KnownCaller, NewCallback, OpenCallback};
pub use outreach::{AttemptContext, Claim, Limits};
pub use replies::{OptOut, ReplyTarget};
pub use report::{AttemptView, Followup, KpiFacts, OutreachView};

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Our migrations keep their own ledger, so apalis's `_sqlx_migrations` never clashes with it.
const MIGRATIONS_TABLE: &str = "_ringback_migrations";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (use sqlite://FILE or postgres://…)")]
    BadUrl,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("bulk insert: {0}")]
    Bulk(String),
    #[error("queue tables: {0}")]
    Queue(String),
    #[error("stored data: {0}")]
    Stored(String),
}

/// A connection pool on one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run the same body on whichever pool `db` holds. The body is compiled once per backend, so
/// shared SQL (`$1` placeholders work on both) is written once.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Db {
    /// Connect to `sqlite://FILE` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // 8 MiB of page cache per connection (a large import takes more, for itself).
                .pragma("cache_size", "-8192")
                .pragma("temp_store", "memory");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                // Each statement is a round trip to the connection's own thread; a ping before
                // each one would double them, and a file on this machine never goes stale.
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        let mut handle = conn.lock_handle().await?;
                        sqlite_bulk::short_busy_waits(handle.as_raw_handle().as_ptr());
                        Ok(())
                    })
                })
                // Opened as they are needed, after `migrate` (see there); the file is checked now.
                .connect_lazy_with(options.clone());
            sqlx::Connection::close(
                <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await?,
            )
            .await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::BadUrl)
        }
    }

    /// Apply ringback's migrations and create the queue's tables beside them.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(server) => {
                // On a connection of its own: a connection reads the planner's statistics as it
                // opens, so the pool's, opened after this, all plan with those pinned below.
                let pool = &SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with((*server.connect_options()).clone())
                    .await?;
                let mut migrator = sqlx::migrate!("migrations/sqlite");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrator.run(pool).await?;
                // The queue's setup also tunes and analyses the database (`PRAGMA optimize`),
                // which waits for every writer: only run it when its tables need migrating, so a
                // command beside a running server (an import, an opt-out list) never waits on it.
                let wanted = apalis_sqlite::SqliteStorage::<()>::migrations()
                    .iter()
                    .count() as i64;
                let ledger: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
                )
                .fetch_one(pool)
                .await?;
                let applied: i64 = if ledger == 0 {
                    0
                } else {
                    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                        .fetch_one(pool)
                        .await?
                };
                if applied < wanted {
                    apalis_sqlite::SqliteStorage::<()>::setup(pool)
                        .await
                        .map_err(|e| StoreError::Queue(e.to_string()))?;
                    // apalis turns durability off on the connection it used; keep ours.
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(pool)
                        .await?;
                }
                pin_queue_statistics(pool).await?;
                pool.close().await;
            }
            Db::Postgres(pool) => {
                let mut migrator = sqlx::migrate!("migrations/postgres");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrator.run(pool).await?;
                sqlx::query("CREATE EXTENSION IF NOT EXISTS hstore")
                    .execute(pool)
                    .await?;
                apalis_postgres::PostgresStorage::<()>::setup(pool)
                    .await
                    .map_err(|e| StoreError::Queue(e.to_string()))?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// What SQLite's planner is told about the queue's `Jobs` table, whatever it holds now: many
/// jobs, few per worker (`lock_by` keeps the worker's name after the job is done), a handful of
/// statuses, one job per id. Without it, an empty or young table has no statistics and the planner
/// takes the queue's per-task updates (`… WHERE id IN (SELECT value FROM json_each(?))` and the
/// acknowledgement joined on `lock_by`) through the worker's or the status's index: every job
/// finished or waiting is read and the task list parsed again for each, so each dial grows
/// slower with the jobs behind it. Told this, it goes straight to the id.
const QUEUE_STATISTICS: &[(&str, &str)] = &[
    ("sqlite_autoindex_Jobs_1", "1000000 1"),
    ("LIdx", "1000000 100000"),
    ("idx_jobs_job_type_status_run_at", "1000000 200000 100000 2"),
    ("idx_jobs_status_run_at", "1000000 500000 2"),
    ("idx_jobs_completed_done_at", "1000000 300000 2 1"),
    ("idx_jobs_running", "1000 2"),
    ("idx_jobs_idempotency_key", "1000000 200000 1"),
    ("idx_jobs_pending", "100000 20000 20000 2 1"),
    ("idx_jobs_failed", "100000 100000 100000 2 1"),
    ("idx_jobs_claimable", "1000000 500000 500000"),
];

/// Write [`QUEUE_STATISTICS`] unless they are there already (connections opened after this plan
/// with them).
async fn pin_queue_statistics(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'Jobs'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let wanted: Vec<(&str, &str)> = QUEUE_STATISTICS
        .iter()
        .copied()
        .filter(|(index, _)| indexes.iter().any(|i| i == index))
        .collect();
    let has_table: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            .fetch_one(&mut *conn)
            .await?;
    if has_table == 1 {
        let present: Vec<(String, String)> =
            sqlx::query_as("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'Jobs' ORDER BY idx")
                .fetch_all(&mut *conn)
                .await?;
        let mut expected: Vec<(String, String)> = wanted
            .iter()
            .map(|(i, s)| (i.to_string(), s.to_string()))
            .collect();
        expected.sort();
        if present == expected {
            return Ok(());
        }
    }
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    // Creates `sqlite_stat1` if need be, and gathers nothing (the schema table has no indexes).
    sqlx::query("ANALYZE sqlite_schema")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sqlite_stat1 WHERE tbl = 'Jobs'")
        .execute(&mut *tx)
        .await?;
    for (index, stat) in &wanted {
        sqlx::query("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('Jobs', $1, $2)")
            .bind(index)
            .bind(stat)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How a transaction that writes begins: SQLite takes the write lock at once, since a transaction
/// that reads first and writes later fails with "database is locked" when another writer came
/// in between; PostgreSQL needs nothing special.
pub(crate) trait BeginWrite {
    fn write_begin(&self) -> &'static str;
}

impl BeginWrite for SqlitePool {
    fn write_begin(&self) -> &'static str {
        "BEGIN IMMEDIATE"
    }
}

impl BeginWrite for PgPool {
    fn write_begin(&self) -> &'static str {
        "BEGIN"
    }
}

/// Milliseconds since the Unix epoch, the way instants are stored.
pub fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// An instant read back from storage.
pub fn instant(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A new id: sortable by creation time, unguessable enough for webhook URLs. Ids made in one
/// thread increase strictly, so bulk inserts append to their indexes instead of splitting pages.
pub fn new_id() -> String {
    thread_local! {
        static IDS: std::cell::RefCell<ulid::Generator> = const { std::cell::RefCell::new(ulid::Generator::new()) };
    }
    IDS.with(|ids| ids.borrow_mut().generate().ok())
        .unwrap_or_else(ulid::Ulid::generate)
        .to_string()
}
