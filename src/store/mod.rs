//! Storage: one API over SQLite (the default, nothing to install) and PostgreSQL (scale-out),
//! picked by the URL scheme. The tables are the truth; the queue only wakes things up.

/// Outcomes a later answer of the patient's own (an SMS reply) may still replace, as SQL.
macro_rules! undecided {
    () => {
        "('voicemail_left', 'sms_sent', 'reached', 'unreachable', 'expired')"
    };
}

/// A query on both backends that takes a list as a JSON array of texts.
pub(crate) struct ListQuery {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl ListQuery {
    /// The statement for `db`'s backend.
    pub(crate) fn for_db(&self, db: &Db) -> &'static str {
        match db {
            Db::Sqlite(_) => self.sqlite,
            Db::Postgres(_) => self.postgres,
        }
    }
}

/// `… IN (the texts of the JSON array $n)` on each backend.
macro_rules! list_query {
    ($before:expr, $n:literal, $after:literal) => {
        $crate::store::ListQuery {
            sqlite: concat!($before, "(SELECT value FROM json_each($", $n, "))", $after),
            postgres: concat!(
                $before,
                "(SELECT json_array_elements_text($",
                $n,
                "::json))",
                $after
            ),
        }
    };
}

mod callbacks;
mod calls;
mod connect;
mod import;
mod imports;
mod metrics;
mod outcomes;
mod outreach;
mod purge;
mod queue;
mod replies;
mod report;
mod sqlite_bulk;
mod staff;
mod visits;

pub use callbacks::{FirstStep, KnownCaller, NewCallback, OpenCallback};
pub use calls::StatusMove;
pub use imports::ImportRecord;
pub use metrics::{MetricFacts, PlacedCount};
pub use outcomes::{Cursor, OutcomeQuery, OutcomeRecord};
pub use outreach::{AttemptContext, Claim, Limits};
pub use purge::{MIN_RETENTION_DAYS, Purged};
pub use replies::{BY_PATIENT, OptOut, OptOutRemoval, Remover, ReplyTarget};
pub use report::{AttemptView, Followup, KpiFacts, OutreachView};
pub use staff::{Pause, Withdrawal, signed_by};
pub use visits::VisitRecord;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (use sqlite://FILE or postgres://…)")]
    BadUrl,
    #[error("database: {}", describe(.0))]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("bulk statement: {0}")]
    Bulk(String),
    #[error("queue tables: {0}")]
    Queue(String),
    #[error("stored data: {0}")]
    Stored(String),
}

/// The database's own words for what went wrong, without the server's source line that sqlx
/// appends to PostgreSQL's messages ("… at line 948"), which only its developers can use.
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => match e.code() {
            Some(code) => format!("{} (code {code})", e.message()),
            None => e.message().to_string(),
        },
        other => other.to_string(),
    }
}

/// What [`Db::connect_current`] found.
pub enum Current {
    Ready(Db),
    /// No database file yet.
    Missing,
    /// A database that `ringback migrate` has not brought up to date (or an empty one).
    Behind,
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

/// A list as the JSON array of texts the list queries take.
pub(crate) fn json_list(
    items: &[impl AsRef<str> + serde::Serialize],
) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Bulk(e.to_string()))
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
