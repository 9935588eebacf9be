//! Patients' SMS replies and the opt-out ledger's other doors (START, lists, the API).

use chrono::{DateTime, Utc};

use super::{BeginWrite, Db, ListQuery, StoreError, instant, json_list, millis, new_id, on_pool};
use crate::outreach::Outcome;
use crate::outreach::machine::FollowupReason;

/// Put the numbers of the JSON array `$1` on the ledger, from source `$2` at `$3`, each unless
/// it is there already.
const ADD_OPTOUTS: ListQuery = ListQuery {
    // `WHERE true` tells SQLite's parser that ON CONFLICT is the upsert's, not a join's.
    sqlite: "INSERT INTO optouts (phone, source, created_at) SELECT value, $2, $3 FROM json_each($1) WHERE true ON CONFLICT (phone) DO NOTHING",
    postgres: "INSERT INTO optouts (phone, source, created_at) SELECT json_array_elements_text($1::json), $2, $3 ON CONFLICT (phone) DO NOTHING",
};

/// End every active outreach to the numbers of `$1` as opted out (`$2` now).
pub(super) const FINISH_OPTED_OUT: ListQuery = list_query!(
    "UPDATE outreach SET state = 'finished', outcome = 'opted_out', outcome_at = $2, updated_at = $2 WHERE state = 'active' AND phone IN ",
    "1",
    ""
);

/// Withdraw every attempt planned to the numbers of `$1`, any campaign (`$2` now).
pub(super) const WITHDRAW_NUMBER: ListQuery = list_query!(
    "UPDATE attempts SET status = 'withdrawn', updated_at = $2 WHERE status = 'planned' AND phone IN ",
    "1",
    ""
);

/// Numbers per statement of a do-not-call list.
const OPTOUT_CHUNK: usize = 5_000;

/// The outreach a reply from a number answers.
#[derive(Debug, Clone)]
pub struct ReplyTarget {
    pub outreach_id: String,
    pub campaign: String,
    pub language: String,
}

/// One entry of the opt-out ledger.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OptOut {
    pub phone: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

/// A number taken off the opt-out ledger: what put it there and when, who took it off and when.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OptOutRemoval {
    pub phone: String,
    /// The opt-out's own source (keypad, sms, list …).
    pub source: String,
    pub opted_out_at: DateTime<Utc>,
    pub removed_at: DateTime<Utc>,
    /// `patient` for a START reply; else the name staff gave.
    pub removed_by: String,
    pub note: Option<String>,
}

/// Who takes a number off the ledger: the patient, whose START undoes only what they or their
/// phone did (keypad, SMS, the provider's STOP); or staff, at the patient's request, any entry.
#[derive(Debug, Clone, Copy)]
pub enum Remover<'a> {
    Patient,
    Staff { by: &'a str, note: Option<&'a str> },
}

/// What `removed_by` records for a patient's own START.
pub const BY_PATIENT: &str = "patient";

impl Db {
    /// The patient's most recent open reminder for `phone`; else their latest reminder for a
    /// visit still ahead that ended without their answer (voicemail, SMS, no answer).
    pub async fn reply_target(
        &self,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ReplyTarget>, StoreError> {
        const SQL: &str = concat!(
            "SELECT o.id, o.campaign, o.language FROM outreach o LEFT JOIN appointments a ON a.id = o.appointment_id
             WHERE o.phone = $1 AND o.kind = 'reminder'
               AND (o.state = 'active' OR (o.outcome IN ",
            undecided!(),
            " AND a.starts_at > $2 AND a.status = 'booked'))
             ORDER BY CASE WHEN o.state = 'active' THEN 0 ELSE 1 END, o.created_at DESC, o.id DESC LIMIT 1"
        );
        let row: Option<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(phone).bind(millis(now)).fetch_optional(pool).await?);
        Ok(row.map(|(outreach_id, campaign, language)| ReplyTarget {
            outreach_id,
            campaign,
            language,
        }))
    }

    /// A reply decides the outreach: `outcome` (even over an earlier voicemail or SMS), planned
    /// attempts withdrawn, a follow-up when staff must act. `false` if it was decided already.
    pub async fn apply_reply(
        &self,
        outreach_id: &str,
        outcome: Outcome,
        followup: Option<(FollowupReason, String)>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.decide_outreach(outreach_id, outcome, followup, true, now)
            .await
    }

    /// Count a reply on the outreach it answers (the `sms.replies` KPI).
    pub async fn record_reply(
        &self,
        outreach_id: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO outreach_events (id, outreach_id, at, kind, detail) VALUES ($1, $2, $3, 'sms_reply', $4)",
        ).bind(new_id()).bind(outreach_id).bind(millis(now)).bind(kind).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// A follow-up carrying a patient's own words, tied to the outreach they answer if any.
    pub async fn patient_message(
        &self,
        campaign: &str,
        outreach_id: Option<&str>,
        phone: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO followups (id, campaign, outreach_id, phone, reason, detail, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)",
        ).bind(new_id()).bind(campaign).bind(outreach_id).bind(phone).bind(FollowupReason::PatientMessage.name())
         .bind(text).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The outreach that last reached `phone`: its id, campaign and language (for a reply that
    /// answers no open outreach).
    pub async fn last_outreach_of(
        &self,
        phone: &str,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, campaign, language FROM outreach WHERE phone = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        ).bind(phone).fetch_optional(pool).await?))
    }

    /// START: take `phone` off the ledger if the patient put it there themselves (keypad, SMS,
    /// the provider's STOP). A clinic's do-not-call entry stays. `true` if it was removed.
    pub async fn opt_in(&self, phone: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self
            .remove_optout(phone, Remover::Patient, now)
            .await?
            .is_some())
    }

    /// Take `phone` off the ledger and keep, in the same transaction, who did and why
    /// (`optout_removals`). `None` when it is not on the ledger, or (for the patient) is there
    /// by the clinic's own list. Calls and messages the opt-out ended stay ended; what is
    /// planned from now on may reach the number again.
    pub async fn remove_optout(
        &self,
        phone: &str,
        remover: Remover<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<OptOutRemoval>, StoreError> {
        let (by, note, sql) = match remover {
            Remover::Patient => (
                BY_PATIENT,
                Some("START"),
                "DELETE FROM optouts WHERE phone = $1 AND source IN ('keypad', 'sms', 'provider', 'ledger') \
                 RETURNING source, created_at",
            ),
            Remover::Staff { by, note } => (
                by,
                note,
                "DELETE FROM optouts WHERE phone = $1 RETURNING source, created_at",
            ),
        };
        let removed_at = millis(now);
        let removed: Option<(String, i64)> = on_pool!(self, pool => {
            let mut tx = pool.begin_with(pool.write_begin()).await?;
            let removed: Option<(String, i64)> =
                sqlx::query_as(sql).bind(phone).fetch_optional(&mut *tx).await?;
            if let Some((source, opted_out_at)) = &removed {
                sqlx::query(
                    "INSERT INTO optout_removals (id, phone, source, opted_out_at, removed_at, removed_by, note) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(new_id()).bind(phone).bind(source).bind(opted_out_at).bind(removed_at)
                .bind(by).bind(note).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            removed
        });
        Ok(removed.map(|(source, opted_out_at)| OptOutRemoval {
            phone: phone.to_string(),
            source,
            opted_out_at: instant(opted_out_at),
            removed_at: instant(removed_at),
            removed_by: by.to_string(),
            note: note.map(String::from),
        }))
    }

    /// Every number taken off the ledger, newest first.
    pub async fn optout_removals(&self) -> Result<Vec<OptOutRemoval>, StoreError> {
        type Stored = (String, String, i64, i64, String, Option<String>);
        let rows: Vec<Stored> = on_pool!(self, pool => sqlx::query_as(
            "SELECT phone, source, opted_out_at, removed_at, removed_by, note FROM optout_removals \
             ORDER BY removed_at DESC, id DESC",
        ).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(
                |(phone, source, opted_out_at, removed_at, removed_by, note)| OptOutRemoval {
                    phone,
                    source,
                    opted_out_at: instant(opted_out_at),
                    removed_at: instant(removed_at),
                    removed_by,
                    note,
                },
            )
            .collect())
    }

    /// The whole opt-out ledger, newest first.
    pub async fn optouts(&self) -> Result<Vec<OptOut>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT phone, source, created_at FROM optouts ORDER BY created_at DESC, phone",
        ).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(phone, source, at)| OptOut {
                phone,
                source,
                created_at: instant(at),
            })
            .collect())
    }

    /// Whether `phone` is on the ledger, and why.
    pub async fn optout_of(&self, phone: &str) -> Result<Option<String>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_scalar("SELECT source FROM optouts WHERE phone = $1")
            .bind(phone).fetch_optional(pool).await?),
        )
    }

    /// Put a number on the opt-out ledger and, in the same transaction, end every open outreach
    /// to it (any campaign) as `opted_out` and withdraw every planned attempt.
    pub async fn opt_out(
        &self,
        phone: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (_, withdrawn) = self.opt_out_many(&[phone.to_string()], source, now).await?;
        Ok(withdrawn)
    }

    /// Put many numbers on the ledger in one transaction (a do-not-call list), as
    /// [`Db::opt_out`] does one. Returns how many were new and how many planned attempts were
    /// withdrawn.
    pub async fn opt_out_many(
        &self,
        phones: &[String],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let now = millis(now);
        let (mut added, mut withdrawn) = (0, 0);
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(pool.write_begin()).await?;
            for chunk in phones.chunks(OPTOUT_CHUNK) {
                let chunk = json_list(chunk)?;
                added += sqlx::query(ADD_OPTOUTS.for_db(self))
                    .bind(&chunk).bind(source).bind(now).execute(&mut *tx).await?.rows_affected();
                // The outreach first: an attempt being planned for it meanwhile is then either
                // refused or already there to withdraw (see `Db::add_attempt`).
                sqlx::query(FINISH_OPTED_OUT.for_db(self))
                    .bind(&chunk).bind(now).execute(&mut *tx).await?;
                withdrawn += sqlx::query(WITHDRAW_NUMBER.for_db(self))
                    .bind(&chunk).bind(now).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        });
        Ok((added, withdrawn))
    }

    /// A failed message's error code, kept on its attempt.
    pub async fn set_error_code(
        &self,
        attempt: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE attempts SET error_code = $2, updated_at = $3 WHERE id = $1")
            .bind(attempt).bind(code).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }
}
