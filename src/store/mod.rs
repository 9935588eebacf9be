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
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        let mut handle = conn.lock_handle().await?;
                        sqlite_bulk::short_busy_waits(handle.as_raw_handle().as_ptr());
                        Ok(())
                    })
                })
                .connect_with(options)
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
            Db::Sqlite(pool) => {
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
