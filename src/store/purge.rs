//! Retention: deleting what is no longer needed of patients who were called long ago.
//!
//! Kept whatever their age: active outreach and everything they use, outreach with an open
//! follow-up, appointments still to come, and the opt-out ledger (a patient who said stop is
//! never called again, however long ago that was).

use chrono::{DateTime, Utc};
use serde::Serialize;

use sqlx::Connection;

use super::report::answerer;
use super::{Db, StoreError, millis};

/// The fewest days a purge may keep: the weekly cap counts the calls of the last seven days.
pub const MIN_RETENTION_DAYS: u32 = 14;

/// Rows a purge deleted (or, in a dry run, would delete), by table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub outreach: u64,
    pub attempts: u64,
    pub events: u64,
    pub followups: u64,
    pub appointments: u64,
    pub patients: u64,
    pub webhook_deliveries: u64,
    pub channel_blocks: u64,
    /// The queue's wake-ups that ran (or were given up) before the cutoff: attempt ids only.
    pub queue_jobs: u64,
    /// Queue workers last seen before the cutoff (one per `serve` or `worker` ever started).
    pub queue_workers: u64,
}

/// The statements of a purge, in order (children before what they reference), given how each
/// backend best asks "no row refers to this one": `$doomed`, outreach `o` that may go (finished
/// before the cutoff $1, no follow-up of it open, its appointment if any before the cutoff too);
/// `$unused_appointment` and `$unused_patient`, rows nothing kept refers to; then the queue's own
/// tables, named and timed apart on each backend.
macro_rules! steps {
    ($doomed:expr, $unused_appointment:expr, $unused_patient:expr, $queue_jobs:expr, $queue_workers:expr) => {
        [
            // The calls and messages placed, counted before they go (see `Db::metric_facts`).
            concat!(
                "INSERT INTO purged_attempts (campaign, channel, call_status, answerer, n)
                 SELECT o.campaign, t.channel, COALESCE(t.call_status, ''), COALESCE(",
                answerer!(),
                ", ''), COUNT(*)
                 FROM attempts t JOIN outreach o ON o.id = t.outreach_id
                 WHERE t.status IN ('dialing', 'live', 'done') AND ",
                $doomed,
                " GROUP BY 1, 2, 3, 4
                 ON CONFLICT (campaign, channel, call_status, answerer)
                 DO UPDATE SET n = purged_attempts.n + excluded.n"
            ),
            concat!(
                "DELETE FROM outreach_events WHERE outreach_id IN (SELECT o.id FROM outreach o WHERE ",
                $doomed,
                ")"
            ),
            concat!(
                "DELETE FROM attempts WHERE outreach_id IN (SELECT o.id FROM outreach o WHERE ",
                $doomed,
                ")"
            ),
            // Resolved ones only: an open follow-up keeps its outreach.
            concat!(
                "DELETE FROM followups WHERE outreach_id IN (SELECT o.id FROM outreach o WHERE ",
                $doomed,
                ")"
            ),
            concat!("DELETE FROM outreach AS o WHERE ", $doomed),
            // Follow-ups of no outreach (a free-text SMS from an unknown number), resolved long ago.
            "DELETE FROM followups WHERE outreach_id IS NULL AND status = 'resolved' AND resolved_at < $1",
            concat!("DELETE FROM appointments AS p WHERE p.starts_at < $1 AND ", $unused_appointment),
            concat!("DELETE FROM patients AS p WHERE p.updated_at < $1 AND ", $unused_patient),
            "DELETE FROM webhook_deliveries WHERE received_at < $1",
            "DELETE FROM channel_blocks WHERE created_at < $1",
            $queue_jobs,
            $queue_workers,
        ]
    };
}

/// SQLite runs a correlated subquery once per row, through a full scan where no index serves
/// (follow-ups by outreach, appointments by patient); a list it builds once is what it is quick at.
const SQLITE_STEPS: [&str; 12] = steps!(
    "o.state = 'finished' AND COALESCE(o.outcome_at, o.updated_at) < $1
     AND o.id NOT IN (SELECT outreach_id FROM followups WHERE status = 'open' AND outreach_id IS NOT NULL)
     AND (o.appointment_id IS NULL OR o.appointment_id IN (SELECT id FROM appointments WHERE starts_at < $1))",
    "p.id NOT IN (SELECT appointment_id FROM outreach WHERE appointment_id IS NOT NULL)",
    "p.id NOT IN (SELECT patient_id FROM appointments) AND p.id NOT IN (SELECT patient_id FROM outreach)",
    // The queue keeps its times in seconds. A job that failed with tries left is still the queue's.
    "DELETE FROM Jobs
     WHERE (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))
       AND (done_at < $1 / 1000 OR (done_at IS NULL AND run_at < $1 / 1000))",
    "DELETE FROM Workers
     WHERE last_seen < $1 / 1000 AND id NOT IN (SELECT lock_by FROM Jobs WHERE lock_by IS NOT NULL)"
);

/// PostgreSQL turns `[NOT] EXISTS` into a hash (anti) join; a `NOT IN` list that outgrows
/// `work_mem` it would search row by row.
const POSTGRES_STEPS: [&str; 12] = steps!(
    "o.state = 'finished' AND COALESCE(o.outcome_at, o.updated_at) < $1
     AND NOT EXISTS (SELECT 1 FROM followups f WHERE f.outreach_id = o.id AND f.status = 'open')
     AND (o.appointment_id IS NULL
          OR EXISTS (SELECT 1 FROM appointments a WHERE a.id = o.appointment_id AND a.starts_at < $1))",
    "NOT EXISTS (SELECT 1 FROM outreach o WHERE o.appointment_id = p.id)",
    "NOT EXISTS (SELECT 1 FROM appointments a WHERE a.patient_id = p.id)
     AND NOT EXISTS (SELECT 1 FROM outreach o WHERE o.patient_id = p.id)",
    "DELETE FROM apalis.jobs
     WHERE (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))
       AND COALESCE(done_at, run_at) < to_timestamp($1::float8 / 1000)",
    "DELETE FROM apalis.workers w
     WHERE w.last_seen < to_timestamp($1::float8 / 1000)
       AND NOT EXISTS (SELECT 1 FROM apalis.jobs j WHERE j.lock_by = w.id)"
);

/// A purge's own connection: its statements take seconds over a year of calls, as expected, so
/// sqlx reports them as slow at the info level, not as warnings on every hourly run.
fn quiet<O: sqlx::ConnectOptions>(options: O) -> O {
    options.log_slow_statements(log::LevelFilter::Info, std::time::Duration::from_secs(1))
}

impl Db {
    /// Delete what ended before `cutoff` (see the module), in one transaction; a dry run counts
    /// the same rows and rolls back. On PostgreSQL, a purge another worker is running already
    /// makes this one return `None` at once.
    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Option<Purged>, StoreError> {
        let cutoff = millis(cutoff);
        let mut counts = [0u64; SQLITE_STEPS.len()];
        // Each step in `$tx`, counted; then kept, or (a dry run) rolled back.
        macro_rules! run_steps {
            ($tx:ident, $steps:expr) => {
                for (step, count) in $steps.iter().zip(counts.iter_mut()) {
                    *count = sqlx::query(*step)
                        .bind(cutoff)
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected();
                }
                match dry_run {
                    true => $tx.rollback().await?,
                    false => $tx.commit().await?,
                }
            };
        }
        match self {
            Db::Sqlite(pool) => {
                // SQLite checks a deleted row's foreign keys by scanning each referring table
                // where no index serves (outreach by patient, by appointment): minutes for a
                // year of calls. The steps delete children first and nothing that is still
                // referred to, under the write lock, so this one connection goes without.
                let options = quiet((*pool.connect_options()).clone()).foreign_keys(false);
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
                let mut tx = sqlx::Connection::begin_with(&mut conn, "BEGIN IMMEDIATE").await?;
                run_steps!(tx, SQLITE_STEPS);
                conn.close().await?;
            }
            Db::Postgres(pool) => {
                let options = quiet((*pool.connect_options()).clone());
                let mut conn = sqlx::PgConnection::connect_with(&options).await?;
                let mut tx = sqlx::Connection::begin(&mut conn).await?;
                let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7270657267)")
                    .fetch_one(&mut *tx)
                    .await?;
                if !ours {
                    return Ok(None);
                }
                run_steps!(tx, POSTGRES_STEPS);
                conn.close().await?;
            }
        }
        let [
            _tallied,
            events,
            attempts,
            followups,
            outreach,
            loose_followups,
            appointments,
            patients,
            webhook_deliveries,
            channel_blocks,
            queue_jobs,
            queue_workers,
        ] = counts;
        Ok(Some(Purged {
            outreach,
            attempts,
            events,
            followups: followups + loose_followups,
            appointments,
            patients,
            webhook_deliveries,
            channel_blocks,
            queue_jobs,
            queue_workers,
        }))
    }
}
