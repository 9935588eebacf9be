//! Opening the database: the pool for each backend with its settings, the migrations (in a
//! ledger of their own, beside the queue's), and SQLite's pinned statistics, so that the
//! dialer's statements keep their plans whatever the tables hold.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Current, Db, StoreError, on_pool, sqlite_bulk};

/// Our migrations keep their own ledger, so apalis's `_sqlx_migrations` never clashes with it.
const MIGRATIONS_TABLE: &str = "_ringback_migrations";

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
                .pragma("temp_store", "memory")
                // Copy the log back into the database every 4,000 pages (16 MiB) rather than
                // every 1,000: the busiest pages (the queue's, the attempts' indexes) change
                // again and again, and each copy is made once per checkpoint, by whichever
                // writer crosses the mark while the others wait.
                .pragma("wal_autocheckpoint", "4000");
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
            let options = PgConnectOptions::from_str(url)?;
            let pool = || {
                PgPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.clone())
            };
            match pool().await {
                Ok(pool) => Ok(Db::Postgres(pool)),
                // The pool waits out a refused connection (a server still starting), then says
                // only that it timed out: one more try of its own names the reason.
                Err(sqlx::Error::PoolTimedOut) => {
                    let alone = tokio::time::timeout(
                        Duration::from_secs(10),
                        <sqlx::PgConnection as sqlx::Connection>::connect_with(&options),
                    );
                    match alone.await {
                        Ok(Err(reason)) => Err(reason.into()),
                        Ok(Ok(conn)) => {
                            sqlx::Connection::close(conn).await?;
                            Ok(Db::Postgres(pool().await?))
                        }
                        Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
                    }
                }
                Err(other) => Err(other.into()),
            }
        } else {
            Err(StoreError::BadUrl)
        }
    }

    /// Connect to a database that exists and has every one of ringback's migrations, changing
    /// nothing on the way (no file created, no migration run). For what only reads, such as a
    /// dry run.
    pub async fn connect_current(url: &str) -> Result<Current, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            if !options.get_filename().exists() {
                return Ok(Current::Missing);
            }
        }
        let db = Db::connect(url).await?;
        let wanted = db.migrator().iter().count();
        let applied = applied_migrations(&db, MIGRATIONS_TABLE).await?;
        if applied < wanted as i64 {
            db.close().await;
            return Ok(Current::Behind);
        }
        Ok(Current::Ready(db))
    }

    /// ringback's own migrations for this backend, kept in their own ledger.
    fn migrator(&self) -> sqlx::migrate::Migrator {
        let mut migrator = match self {
            Db::Sqlite(_) => sqlx::migrate!("migrations/sqlite"),
            Db::Postgres(_) => sqlx::migrate!("migrations/postgres"),
        };
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator
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
                self.migrator().run(pool).await?;
                // The queue's setup also tunes and analyses the database (`PRAGMA optimize`),
                // which waits for every writer: only run it when its tables need migrating, so a
                // command beside a running server (an import, an opt-out list) never waits on it.
                let wanted = apalis_sqlite::SqliteStorage::<()>::migrations()
                    .iter()
                    .count() as i64;
                let applied =
                    applied_migrations(&Db::Sqlite(pool.clone()), "_sqlx_migrations").await?;
                if applied < wanted {
                    apalis_sqlite::SqliteStorage::<()>::setup(pool)
                        .await
                        .map_err(|e| StoreError::Queue(e.to_string()))?;
                    // apalis turns durability off on the connection it used; keep ours.
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(pool)
                        .await?;
                }
                pin_statistics(pool).await?;
                pool.close().await;
            }
            Db::Postgres(pool) => {
                self.migrator().run(pool).await?;
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

/// How many migrations the ledger table `ledger` records as applied; 0 before it exists.
async fn applied_migrations(db: &Db, ledger: &'static str) -> Result<i64, StoreError> {
    let exists = match db {
        Db::Sqlite(_) => "SELECT COUNT(*) FROM sqlite_master WHERE name = $1",
        Db::Postgres(_) => {
            "SELECT COUNT(*) FROM pg_tables WHERE tablename = $1 AND schemaname = current_schema()"
        }
    };
    let count = format!("SELECT COUNT(*) FROM {ledger} WHERE success");
    Ok(on_pool!(db, pool => {
        let found: i64 = sqlx::query_scalar(exists).bind(ledger).fetch_one(pool).await?;
        if found == 0 {
            0
        } else {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count))
                .fetch_one(pool)
                .await?
        }
    }))
}

/// What SQLite's planner is told about each table, whatever it holds now: `(table, index, stat)`
/// as `sqlite_stat1` keeps them (rows, then rows per distinct prefix of the index's columns).
/// A young table has no statistics, and without them the planner guesses, often wrongly:
///
/// - The queue's `Jobs`: many jobs, few per worker (`lock_by` keeps the worker's name after the
///   job is done), a handful of statuses, one job per id. Unpinned, the queue's per-task updates
///   (`… WHERE id IN (SELECT value FROM json_each(?))` and the acknowledgement joined on
///   `lock_by`) go through the worker's or the status's index: every job finished or waiting is
///   read and the task list parsed again for each, so each dial grows slower with the jobs
///   behind it.
/// - ringback's own tables: an attempt's status has a handful of values and an outreach, a
///   number or an appointment a few rows each. Unpinned, `… WHERE outreach_id = ? AND status =
///   'planned'` (ending an outreach) and `… WHERE phone = ? AND status = 'planned'` (an opt-out)
///   read every planned attempt instead of the outreach's or the number's few.
///
/// The figures describe a large clinic group (a million attempts); only their proportions matter.
const STATISTICS: &[(&str, &str, &str)] = &[
    ("Jobs", "sqlite_autoindex_Jobs_1", "1000000 1"),
    ("Jobs", "LIdx", "1000000 100000"),
    (
        "Jobs",
        "idx_jobs_job_type_status_run_at",
        "1000000 200000 100000 2",
    ),
    ("Jobs", "idx_jobs_status_run_at", "1000000 500000 2"),
    ("Jobs", "idx_jobs_completed_done_at", "1000000 300000 2 1"),
    ("Jobs", "idx_jobs_running", "1000 2"),
    ("Jobs", "idx_jobs_idempotency_key", "1000000 200000 1"),
    ("Jobs", "idx_jobs_pending", "100000 20000 20000 2 1"),
    ("Jobs", "idx_jobs_failed", "100000 100000 100000 2 1"),
    ("Jobs", "idx_jobs_claimable", "1000000 500000 500000"),
    // id; (clinic, external_id); phone.
    ("patients", "sqlite_autoindex_patients_1", "100000 1"),
    ("patients", "sqlite_autoindex_patients_2", "100000 100000 1"),
    ("patients", "patients_phone", "100000 1"),
    // id; (campaign, external_id).
    (
        "appointments",
        "sqlite_autoindex_appointments_1",
        "300000 1",
    ),
    (
        "appointments",
        "sqlite_autoindex_appointments_2",
        "300000 30000 1",
    ),
    ("outreach", "sqlite_autoindex_outreach_1", "300000 1"),
    ("outreach", "outreach_campaign_state", "300000 30000 10000"),
    ("outreach", "outreach_phone_state", "300000 3 2"),
    ("outreach", "outreach_one_open_per_appointment", "20000 1"),
    ("outreach", "outreach_one_open_callback", "1000 100 1"),
    // (outcome_at, id) of what ended.
    ("outreach", "outreach_outcome_at", "280000 2 1"),
    // id; (outreach_id, seq).
    ("attempts", "sqlite_autoindex_attempts_1", "1000000 1"),
    ("attempts", "sqlite_autoindex_attempts_2", "1000000 3 1"),
    ("attempts", "attempts_phone_due", "1000000 8 1"),
    ("attempts", "attempts_status_due", "1000000 200000 2"),
    ("attempts", "attempts_provider_id", "700000 1"),
    ("attempts", "attempts_in_flight", "100 50"),
    ("followups", "sqlite_autoindex_followups_1", "50000 1"),
    ("followups", "followups_campaign_status", "50000 5000 2500"),
    ("followups", "followups_outreach", "50000 1"),
    (
        "outreach_events",
        "sqlite_autoindex_outreach_events_1",
        "1000000 1",
    ),
    ("outreach_events", "outreach_events_outreach", "1000000 3 1"),
];

/// Write [`STATISTICS`] unless they are there already (connections opened after this plan with
/// them).
async fn pin_statistics(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let indexes: Vec<(String, String)> =
        sqlx::query_as("SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'")
            .fetch_all(&mut *conn)
            .await?;
    let mut wanted: Vec<(String, String, String)> = STATISTICS
        .iter()
        .filter(|(table, index, _)| indexes.iter().any(|(t, i)| t == table && i == index))
        .map(|(t, i, s)| (t.to_string(), i.to_string(), s.to_string()))
        .collect();
    wanted.sort();
    let tables: Vec<&str> = {
        let mut t: Vec<&str> = STATISTICS.iter().map(|(t, ..)| *t).collect();
        t.dedup();
        t
    };
    let tables_json = serde_json::to_string(&tables).expect("names serialise");
    let has_table: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            .fetch_one(&mut *conn)
            .await?;
    if has_table == 1 {
        let present: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl IN (SELECT value FROM json_each($1))
             ORDER BY tbl, idx",
        )
        .bind(&tables_json)
        .fetch_all(&mut *conn)
        .await?;
        if present == wanted {
            return Ok(());
        }
    }
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    // Creates `sqlite_stat1` if need be, and gathers nothing (the schema table has no indexes).
    sqlx::query("ANALYZE sqlite_schema")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sqlite_stat1 WHERE tbl IN (SELECT value FROM json_each($1))")
        .bind(&tables_json)
        .execute(&mut *tx)
        .await?;
    for (table, index, stat) in &wanted {
        sqlx::query("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ($1, $2, $3)")
            .bind(table)
            .bind(index)
            .bind(stat)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::calls::REPORT_SQLITE;
    use crate::store::outreach::{CLAIM, CONTEXT_SQLITE, DECIDE_SQLITE, WITHDRAW_OUTREACH};
    use crate::store::replies::{FINISH_OPTED_OUT, WITHDRAW_NUMBER};

    /// SQLite's plan for `sql`, its `params` parameters bound to NULL.
    async fn plan(conn: &mut sqlx::SqliteConnection, sql: &str, params: usize) -> String {
        let text = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(text));
        for _ in 0..params {
            query = query.bind(None::<String>);
        }
        let rows = query.fetch_all(conn).await.expect("plan");
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    }

    /// The statements each dial and each outcome run touch only the rows they are about, however
    /// many attempts are planned: not one of them walks the planned attempts by their status.
    #[tokio::test]
    async fn per_attempt_statements_go_straight_to_their_rows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("plans.db").display());
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        let mut conn = pool.acquire().await.expect("connection");
        let checks = [
            (
                WITHDRAW_OUTREACH,
                2,
                vec!["SEARCH attempts USING INDEX sqlite_autoindex_attempts_2 (outreach_id=?)"],
            ),
            (
                WITHDRAW_NUMBER.sqlite,
                2,
                vec!["SEARCH attempts USING INDEX attempts_phone_due (phone=?)"],
            ),
            (
                FINISH_OPTED_OUT.sqlite,
                2,
                vec![
                    "SEARCH outreach USING COVERING INDEX outreach_phone_state (phone=? AND state=?)",
                ],
            ),
            (
                REPORT_SQLITE,
                8,
                vec!["SEARCH attempts USING INDEX sqlite_autoindex_attempts_1 (id=?)"],
            ),
            (
                DECIDE_SQLITE,
                8,
                vec![
                    "SEARCH outreach USING INDEX sqlite_autoindex_outreach_1 (id=?)",
                    "SEARCH attempts USING INDEX sqlite_autoindex_attempts_2 (outreach_id=?)",
                ],
            ),
            (
                CLAIM,
                5,
                vec![
                    "SEARCH attempts USING INDEX sqlite_autoindex_attempts_1 (id=?)",
                    "SEARCH attempts USING INDEX attempts_in_flight (channel=?)",
                ],
            ),
            (
                CONTEXT_SQLITE,
                2,
                vec![
                    "SEARCH t USING INDEX sqlite_autoindex_attempts_1 (id=?)",
                    "SEARCH h USING INDEX sqlite_autoindex_attempts_2 (outreach_id=?)",
                    "SEARCH x USING INDEX attempts_phone_due (phone=? AND due_at>?)",
                ],
            ),
        ];
        for (sql, params, wanted) in checks {
            // A script's statements one by one (EXPLAIN covers only the first of several).
            let mut plans = Vec::new();
            for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                plans.push(plan(&mut conn, statement, params).await);
            }
            let plan = plans.join("\n");
            for line in wanted {
                assert!(plan.contains(line), "{sql}\nwanted: {line}\nplan:\n{plan}");
            }
            assert!(!plan.contains("attempts_status_due"), "{sql}\n{plan}");
            // Walking a statement's own list of numbers (json_each) is no scan of a table.
            let scans = plan.lines().any(|l| {
                l.contains("SCAN") && !l.contains("SCAN CONSTANT ROW") && !l.contains("json_each")
            });
            assert!(!scans, "{sql}\n{plan}");
        }

        // Without the pinned statistics, SQLite walks every planned attempt to end one outreach.
        sqlx::query("DELETE FROM sqlite_stat1 WHERE tbl = 'attempts'")
            .execute(&mut *conn)
            .await
            .expect("unpin");
        sqlx::query("ANALYZE sqlite_schema")
            .execute(&mut *conn)
            .await
            .expect("reload");
        let unpinned = plan(&mut conn, WITHDRAW_OUTREACH, 2).await;
        assert!(
            unpinned.contains("attempts_status_due (status=?)"),
            "{unpinned}"
        );
    }
}
