//! What staff do by hand to an outreach: end it themselves when they reached the patient
//! another way (they rang back, the patient came to the desk).

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
