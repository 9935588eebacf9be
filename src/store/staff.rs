//! What staff do by hand: end an outreach themselves when they reached the patient another way
//! (they rang back, the patient came to the desk), and pause a campaign's calls. Each is kept
//! with the name they give.

use chrono::{DateTime, Utc};

use super::outreach::WITHDRAW_OUTREACH;
use super::{BeginWrite, Db, StoreError, millis, new_id, on_pool};
use crate::outreach::Outcome;

/// Staff's name and note on what they do by hand, trimmed: a name of 1–200 characters and a
/// note of at most 2,000, as when they resolve a follow-up. The error names the field at fault
/// and what it takes.
pub fn signed_by<'a>(
    by: &'a str,
    note: Option<&'a str>,
) -> Result<(&'a str, Option<&'a str>), (&'static str, &'static str)> {
    let by = by.trim();
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if by.is_empty() || by.chars().count() > 200 {
        return Err(("by", "by: who does it, for the record (1-200 characters)"));
    }
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err(("note", "note: at most 2000 characters"));
    }
    Ok((by, note))
}

/// What asking to withdraw an outreach came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawal {
    /// Ended now, `withdrawn`, and every planned call and SMS withdrawn with it.
    Done,
    /// It had ended already, with this outcome.
    Ended(Option<String>),
    /// No such outreach.
    Unknown,
}

impl Db {
    /// End active outreach `id` as `withdrawn` by `by` (with `note`), in one transaction: its
    /// planned attempts withdrawn, the end in its events. A call already ringing goes on (it
    /// cannot be taken back), but nothing follows it.
    pub async fn withdraw_outreach(
        &self,
        id: &str,
        by: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Withdrawal, StoreError> {
        let at = millis(now);
        let outcome = Outcome::Withdrawn.name();
        Ok(on_pool!(self, pool => {
            let mut tx = pool.begin_with(pool.write_begin()).await?;
            let ended = sqlx::query(
                "UPDATE outreach SET state = 'finished', outcome = $2, outcome_at = $3, updated_at = $3,
                        withdrawn_by = $4, withdrawn_note = $5
                 WHERE id = $1 AND state = 'active'",
            )
            .bind(id).bind(outcome).bind(at).bind(by).bind(note)
            .execute(&mut *tx).await?.rows_affected();
            let withdrawal = if ended == 1 {
                sqlx::query(WITHDRAW_OUTREACH).bind(id).bind(at).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO outreach_events (id, outreach_id, at, kind, detail) VALUES ($1, $2, $3, 'finished', $4)",
                )
                .bind(new_id()).bind(id).bind(at).bind(outcome).execute(&mut *tx).await?;
                Withdrawal::Done
            } else {
                let stored: Option<Option<String>> =
                    sqlx::query_scalar("SELECT outcome FROM outreach WHERE id = $1")
                        .bind(id).fetch_optional(&mut *tx).await?;
                stored.map_or(Withdrawal::Unknown, Withdrawal::Ended)
            };
            tx.commit().await?;
            withdrawal
        }))
    }
}

/// A campaign's pause in force: who stopped its calls, when and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    pub campaign: String,
    pub paused_at: DateTime<Utc>,
    pub paused_by: String,
    pub note: Option<String>,
}

/// The columns of a [`Pause`], in its order.
macro_rules! pause_columns {
    () => {
        "campaign, paused_at, paused_by, note"
    };
}

type PauseRow = (String, i64, String, Option<String>);

fn pause(row: PauseRow) -> Pause {
    Pause {
        campaign: row.0,
        paused_at: super::instant(row.1),
        paused_by: row.2,
        note: row.3,
    }
}

impl Db {
    /// Pause `campaign`: from now on nothing of it is queued, dialled or texted until it is
    /// resumed. Returns the pause in force and whether it began now (`false`: it was paused
    /// already, by whoever the pause names).
    pub async fn pause_campaign(
        &self,
        campaign: &str,
        by: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Pause, bool), StoreError> {
        let began = on_pool!(self, pool => sqlx::query(
            "INSERT INTO campaign_pauses (id, campaign, paused_at, paused_by, note) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (campaign) WHERE resumed_at IS NULL DO NOTHING",
        ).bind(new_id()).bind(campaign).bind(millis(now)).bind(by).bind(note)
         .execute(pool).await?.rows_affected())
            == 1;
        let pause = self.campaign_pause(campaign).await?.ok_or_else(|| {
            StoreError::Stored(format!("the pause of {campaign} ended as it began"))
        })?;
        Ok((pause, began))
    }

    /// End `campaign`'s pause (kept, with who resumed it): its calls are queued again, the
    /// overdue ones first. The pause that ended, or `None` if it was not paused.
    pub async fn resume_campaign(
        &self,
        campaign: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Pause>, StoreError> {
        let ended: Option<PauseRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "UPDATE campaign_pauses SET resumed_at = $2, resumed_by = $3
             WHERE campaign = $1 AND resumed_at IS NULL RETURNING ",
            pause_columns!(),
        )).bind(campaign).bind(millis(now)).bind(by).fetch_optional(pool).await?);
        Ok(ended.map(pause))
    }

    /// `campaign`'s pause in force, if any.
    pub async fn campaign_pause(&self, campaign: &str) -> Result<Option<Pause>, StoreError> {
        let row: Option<PauseRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ",
            pause_columns!(),
            " FROM campaign_pauses WHERE campaign = $1 AND resumed_at IS NULL",
        )).bind(campaign).fetch_optional(pool).await?);
        Ok(row.map(pause))
    }

    /// Every pause in force, by campaign.
    pub async fn campaign_pauses(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Pause>, StoreError> {
        let rows: Vec<PauseRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ",
            pause_columns!(),
            " FROM campaign_pauses WHERE resumed_at IS NULL",
        )).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|r| (r.0.clone(), pause(r))).collect())
    }
}
