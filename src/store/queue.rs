//! What the feeder and the queue need of the attempts: which are due without a job, the right to
//! queue each (taken once, by one worker), and giving it back.

use chrono::{DateTime, Utc};

use super::{BeginWrite, Db, StoreError, instant, millis, on_pool};

/// Take the right to queue attempt `$1` as job `$2` (only while it is still due at `$3`, if given).
const TAKE: &str =
    "UPDATE attempts SET task_id = $2 WHERE id = $1 AND task_id IS NULL AND status = 'planned'
    AND ($3 IS NULL OR due_at = $3)";
/// Give back the right to queue attempt `$1`.
const RELEASE: &str = "UPDATE attempts SET task_id = NULL WHERE id = $1 AND status = 'planned'";

impl Db {
    /// Planned attempts due before `before` that have no queue job yet, soonest first; none of a
    /// paused campaign.
    pub async fn unqueued_due(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT t.id, t.due_at FROM attempts t
             WHERE t.status = 'planned' AND t.task_id IS NULL AND t.due_at <= $1
               AND NOT EXISTS (SELECT 1 FROM outreach o JOIN campaign_pauses p ON p.campaign = o.campaign
                               WHERE o.id = t.outreach_id AND p.resumed_at IS NULL)
             ORDER BY t.due_at LIMIT $2",
        ).bind(millis(before)).bind(limit).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(id, at)| (id, instant(at))).collect())
    }

    /// Take the right to queue `id` (`false` if another worker did), recording its job id.
    pub async fn take_for_queue(&self, id: &str, task_id: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(TAKE)
            .bind(id).bind(task_id).bind(None::<i64>).execute(pool).await?.rows_affected());
        Ok(done == 1)
    }

    /// [`Db::take_for_queue`] for many attempts `(id, task id, due)` in one transaction, each
    /// only while it is still due then (a re-plan that moved it meanwhile makes the feeder read
    /// it again rather than wake it at the old instant): the ones taken, in order.
    pub async fn take_many_for_queue(
        &self,
        batch: &[(&str, ulid::Ulid, DateTime<Utc>)],
    ) -> Result<Vec<bool>, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(pool.write_begin()).await?;
            let mut taken = Vec::with_capacity(batch.len());
            for (id, task_id, due) in batch {
                let n = sqlx::query(TAKE)
                    .bind(id).bind(task_id.to_string()).bind(Some(millis(*due))).execute(&mut *tx).await?.rows_affected();
                taken.push(n == 1);
            }
            tx.commit().await?;
            Ok(taken)
        })
    }

    /// [`Db::release_queue`] for many attempts, in one transaction.
    pub async fn release_many(&self, ids: &[&str]) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(pool.write_begin()).await?;
            for id in ids {
                sqlx::query(RELEASE).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Attempts taken for dialling at once (task id `prefix…`) and still planned though due
    /// before `before`: their process stopped; let the feeder queue them.
    pub async fn reclaim_direct(
        &self,
        prefix: &str,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET task_id = NULL WHERE status = 'planned' AND task_id LIKE $1 AND due_at < $2",
        ).bind(format!("{prefix}%")).bind(millis(before)).execute(pool).await?.rows_affected()))
    }

    /// A planned attempt that cannot be decided now is looked at again at `due`.
    pub async fn postpone(
        &self,
        id: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET due_at = $2, task_id = NULL, updated_at = $3 WHERE id = $1 AND status = 'planned'",
        ).bind(id).bind(millis(due)).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Give back the right to queue `id` when pushing its job failed.
    pub async fn release_queue(&self, id: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(RELEASE).bind(id).execute(pool).await?.rows_affected());
        Ok(())
    }
}
