//! What the provider says of a call: each status report applied once and only forward, who
//! answered, the key pressed; and the calls and attempts in flight, counted.

use chrono::{DateTime, Utc};

use super::{BeginWrite, Db, StoreError, millis, on_pool};

/// A call or message status moves forward only: `$1` attempt, `$2` status, `$3` its rank,
/// `$4` who answered, `$5` duration, `$6` now, `$7` whether it is the last.
macro_rules! advance {
    () => {
        "UPDATE attempts SET call_status = $2, status_rank = $3,
            answered_by = COALESCE($4, answered_by), duration_s = COALESCE($5, duration_s),
            answered_at = CASE WHEN $3 = 3 THEN $6 ELSE answered_at END,
            ended_at = CASE WHEN $7 THEN $6 ELSE ended_at END,
            status = CASE WHEN $7 THEN 'done' ELSE status END,
            result = CASE WHEN $7 THEN $2 ELSE result END,
            updated_at = $6
        WHERE id = $1 AND status_rank < $3"
    };
}

const ADVANCE: &str = advance!();

/// A status report with delivery key `$8`: remembered, and only if it is new, applied as
/// [`ADVANCE`]. Returns whether it was new, then whether the status moved (`changes()` reads the
/// statement before it; a `SELECT` leaves it as it was).
pub(super) const REPORT_SQLITE: &str = concat!(
    "INSERT INTO webhook_deliveries (key, received_at) VALUES ($8, $6) ON CONFLICT (key) DO NOTHING;
    SELECT changes();
    ",
    advance!(),
    " AND changes() = 1;
    SELECT changes()"
);

/// [`REPORT_SQLITE`] as one PostgreSQL statement.
const REPORT_POSTGRES: &str = concat!(
    "WITH first AS (
        INSERT INTO webhook_deliveries (key, received_at) VALUES ($8, $6) ON CONFLICT (key) DO NOTHING
        RETURNING 1),
    moved AS (",
    advance!(),
    " AND EXISTS (SELECT 1 FROM first) RETURNING 1)
    SELECT (SELECT COUNT(*) FROM first) + (SELECT COUNT(*) FROM moved)"
);

/// Where a call's or a message's status moves: the provider's status and its rank (statuses
/// only move forward), who answered and how long it lasted when the provider says, and whether
/// it is the last.
#[derive(Debug, Clone, Copy)]
pub struct StatusMove<'a> {
    pub status: &'a str,
    pub rank: i64,
    pub answered_by: Option<&'a str>,
    pub duration_s: Option<i64>,
    pub done: bool,
}

impl Db {
    /// Remember a webhook delivery; `false` if it was seen before (apply it only once).
    pub async fn first_delivery(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO webhook_deliveries (key, received_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        ).bind(key).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(done == 1)
    }

    /// Move a call's status forward (never back): `false` if its rank is not beyond what is
    /// stored.
    pub async fn advance_call(
        &self,
        id: &str,
        to: &StatusMove<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = millis(now);
        let changed = on_pool!(self, pool => sqlx::query(ADVANCE)
            .bind(id).bind(to.status).bind(to.rank).bind(to.answered_by).bind(to.duration_s).bind(now).bind(to.done)
            .execute(pool).await?.rows_affected());
        Ok(changed == 1)
    }

    /// A provider status report: remembered by its delivery key and applied (forward only,
    /// as [`Db::advance_call`]) in one transaction, so a report that fails half-way is applied
    /// whole when the provider sends it again. `None` if it was seen before; else whether the
    /// status moved forward.
    pub async fn apply_status(
        &self,
        key: &str,
        id: &str,
        to: &StatusMove<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        let now = millis(now);
        // The same parameters for either backend's statement.
        macro_rules! report {
            ($sql:expr) => {
                sqlx::query_scalar($sql)
                    .bind(id)
                    .bind(to.status)
                    .bind(to.rank)
                    .bind(to.answered_by)
                    .bind(to.duration_s)
                    .bind(now)
                    .bind(to.done)
                    .bind(key)
            };
        }
        let applied: i64 = match self {
            // One trip to the connection's thread inside the transaction (see `decide_outreach`).
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with(pool.write_begin()).await?;
                let rows: Vec<i64> = report!(REPORT_SQLITE).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.iter().sum()
            }
            Db::Postgres(pool) => report!(REPORT_POSTGRES).fetch_one(pool).await?,
        };
        // 0: seen before; 1: new, but the status was not beyond the stored one; 2: moved forward.
        Ok(match applied {
            0 => None,
            n => Some(n == 2),
        })
    }

    /// Record who answered (machine detection), without changing the status.
    pub async fn set_answered_by(
        &self,
        id: &str,
        answered_by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET answered_by = $2, answered_at = COALESCE(answered_at, $3), updated_at = $3 WHERE id = $1",
        ).bind(id).bind(answered_by).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Record the key the patient pressed.
    pub async fn set_digits(
        &self,
        id: &str,
        digits: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE attempts SET digits = $2, updated_at = $3 WHERE id = $1")
            .bind(id).bind(digits).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Voice calls being dialled or live now (every campaign: one provider account).
    pub async fn live_calls(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM attempts WHERE channel = 'voice' AND status IN ('dialing', 'live')",
        ).fetch_one(pool).await?))
    }

    /// Live calls placed before `before` whose final status never came: to ask the provider about.
    pub async fn stale_live_calls(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, provider_id FROM attempts WHERE status IN ('live', 'dialing') AND placed_at < $1 ORDER BY placed_at LIMIT 100",
        ).bind(millis(before)).fetch_all(pool).await?))
    }

    /// Attempts still to be placed or settled (the demo waits for none to remain).
    pub async fn pending_attempts(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM attempts WHERE status IN ('planned', 'dialing', 'live')",
        ).fetch_one(pool).await?))
    }

    /// Attempts due by `now` and not yet settled, plus calls in flight.
    pub async fn due_or_live(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM attempts WHERE (status = 'planned' AND due_at <= $1) OR status IN ('dialing', 'live')",
        ).bind(millis(now)).fetch_one(pool).await?))
    }
}
