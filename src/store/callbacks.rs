//! Callback requests: one open callback per number and campaign, merged into when asked again,
//! withdrawn when the patient gets through; a follow-up instead of a dial when the number cannot
//! or may not be called.

use chrono::{DateTime, Utc};

use super::{BeginWrite, Db, StoreError, instant, millis, new_id, on_pool};
use crate::outreach::Outcome;
use crate::outreach::machine::FollowupReason;
use crate::plan::Slot;

/// A callback to open.
#[derive(Debug, Clone)]
pub struct NewCallback<'a> {
    pub campaign: &'a str,
    pub clinic: &'a str,
    /// E.164.
    pub phone: &'a str,
    /// The caller's name as given (first word = first name), if any.
    pub name: Option<&'a str>,
    pub timezone: &'a str,
    pub language: &'a str,
    pub source: &'a str,
    pub note: Option<&'a str>,
    pub recording_url: Option<&'a str>,
    pub deadline: DateTime<Utc>,
}

/// What the planner said about a new callback's first attempt.
#[derive(Debug, Clone)]
pub enum FirstStep {
    Attempt(Slot),
    /// Not dialled: ended at once with this outcome, and a follow-up for staff.
    End(Outcome, FollowupReason, String),
}

/// A caller the clinic already knows by this number.
#[derive(Debug, Clone)]
pub struct KnownCaller {
    pub first_name: String,
    pub timezone: Option<String>,
    pub language: Option<String>,
}

/// An open callback for a number.
#[derive(Debug, Clone)]
pub struct OpenCallback {
    pub id: String,
    pub requests: i64,
    /// Its first attempt's instant (placed, or planned).
    pub next_due: Option<DateTime<Utc>>,
}

impl Db {
    /// The patient this clinic knows by `phone` (the most recently updated one).
    pub async fn known_caller(
        &self,
        clinic: &str,
        phone: &str,
    ) -> Result<Option<KnownCaller>, StoreError> {
        let row: Option<(String, Option<String>, Option<String>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT first_name, timezone, language FROM patients WHERE clinic = $1 AND phone = $2
             ORDER BY (first_name <> '') DESC, updated_at DESC LIMIT 1",
        ).bind(clinic).bind(phone).fetch_optional(pool).await?);
        Ok(row.map(|(first_name, timezone, language)| KnownCaller {
            first_name,
            timezone,
            language,
        }))
    }

    /// A number's contacts (every campaign, every channel) since `since`, for the caps.
    pub async fn contacts(
        &self,
        phone: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let rows: Vec<(i64,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT COALESCE(placed_at, due_at) FROM attempts
             WHERE phone = $1 AND status IN ('dialing', 'live', 'done') AND counted = 1 AND due_at >= $2",
        ).bind(phone).bind(millis(since)).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(t,)| instant(t)).collect())
    }

    /// Whether `phone` is on the opt-out ledger.
    pub async fn is_opted_out(&self, phone: &str) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM optouts WHERE phone = $1")
            .bind(phone).fetch_one(pool).await?);
        Ok(n > 0)
    }

    /// The open callback for `phone` in `campaign`, if any.
    pub async fn open_callback(
        &self,
        campaign: &str,
        phone: &str,
    ) -> Result<Option<OpenCallback>, StoreError> {
        let row: Option<(String, i64, Option<i64>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT o.id, o.requests,
                    (SELECT MIN(COALESCE(t.placed_at, t.due_at)) FROM attempts t WHERE t.outreach_id = o.id AND t.status <> 'withdrawn')
             FROM outreach o WHERE o.campaign = $1 AND o.phone = $2 AND o.kind = 'callback' AND o.state = 'active'",
        ).bind(campaign).bind(phone).fetch_optional(pool).await?);
        Ok(row.map(|(id, requests, next)| OpenCallback {
            id,
            requests,
            next_due: next.map(instant),
        }))
    }

    /// Merge one more request into the open callback `id`: counted, its note and recording kept.
    /// `false` if it is no longer open.
    pub async fn merge_callback(
        &self,
        id: &str,
        source: &str,
        note: Option<&str>,
        recording_url: Option<&str>,
        count: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = millis(now);
        let note = note.map(|n| format!("{source}: {n}"));
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(pool.write_begin()).await?;
            let merged = sqlx::query(
                "UPDATE outreach SET requests = requests + $6, requested_at = $2, updated_at = $2,
                     note = CASE WHEN LENGTH(COALESCE(note, '')) > 4000 THEN note ELSE COALESCE(note || $5, $3, note) END,
                     recording_url = COALESCE($4, recording_url)
                 WHERE id = $1 AND state = 'active'",
            ).bind(id).bind(now).bind(&note).bind(recording_url).bind(note.as_ref().map(|n| format!("\n{n}"))).bind(i64::from(count)).execute(&mut *tx).await?.rows_affected() == 1;
            if merged {
                sqlx::query("INSERT INTO outreach_events (id, outreach_id, at, kind, detail) VALUES ($1, $2, $3, 'merged', $4)")
                    .bind(new_id()).bind(id).bind(now).bind(source).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(merged)
        })
    }

    /// Open a callback with its first step, in one transaction. `None` when an open callback for
    /// the same number and campaign appeared meanwhile (merge into it instead). Returns the
    /// outreach id and the first attempt's id.
    pub async fn create_callback(
        &self,
        new: &NewCallback<'_>,
        first: &FirstStep,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let at = millis(now);
        let (first_name, last_name) = split_name(new.name);
        let outreach_id = new_id();
        let note = new.note.map(|n| format!("{}: {n}", new.source));
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(pool.write_begin()).await?;
            let patient: Option<String> = sqlx::query_scalar(
                "SELECT id FROM patients WHERE clinic = $1 AND phone = $2 ORDER BY (first_name <> '') DESC, updated_at DESC LIMIT 1",
            ).bind(new.clinic).bind(new.phone).fetch_optional(&mut *tx).await?;
            let patient = match patient {
                Some(id) => id,
                None => {
                    let id = new_id();
                    sqlx::query(
                        "INSERT INTO patients (id, clinic, external_id, first_name, last_name, phone, timezone, language, created_at, updated_at)
                         VALUES ($1, $2, NULL, $3, $4, $5, NULL, NULL, $6, $6)",
                    ).bind(&id).bind(new.clinic).bind(&first_name).bind(&last_name).bind(new.phone).bind(at)
                     .execute(&mut *tx).await?;
                    id
                }
            };
            let inserted = sqlx::query(
                "INSERT INTO outreach (id, campaign, kind, patient_id, appointment_id, phone, timezone, language, opens_at, deadline,
                                       state, source, note, requests, recording_url, requested_at, created_at, updated_at)
                 VALUES ($1, $2, 'callback', $3, NULL, $4, $5, $6, $7, $8, 'active', $9, $10, 1, $11, $7, $7, $7)
                 ON CONFLICT (campaign, phone) WHERE state = 'active' AND kind = 'callback' DO NOTHING",
            ).bind(&outreach_id).bind(new.campaign).bind(&patient).bind(new.phone).bind(new.timezone).bind(new.language)
             .bind(at).bind(millis(new.deadline)).bind(new.source).bind(&note).bind(new.recording_url)
             .execute(&mut *tx).await?.rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query("INSERT INTO outreach_events (id, outreach_id, at, kind, detail) VALUES ($1, $2, $3, 'requested', $4)")
                .bind(new_id()).bind(&outreach_id).bind(at).bind(new.source).execute(&mut *tx).await?;
            let attempt = match first {
                FirstStep::Attempt(slot) => {
                    let id = new_id();
                    sqlx::query(
                        "INSERT INTO attempts (id, outreach_id, seq, channel, phone, status, due_at, daypart, reason, created_at, updated_at)
                         VALUES ($1, $2, 1, $3, $4, 'planned', $5, $6, $7, $8, $8)",
                    ).bind(&id).bind(&outreach_id).bind(slot.channel.name()).bind(new.phone).bind(millis(slot.at))
                     .bind(slot.daypart.name()).bind(&slot.reason).bind(at).execute(&mut *tx).await?;
                    Some(id)
                }
                FirstStep::End(outcome, reason, detail) => {
                    sqlx::query("UPDATE outreach SET state = 'finished', outcome = $2, outcome_at = $3 WHERE id = $1")
                        .bind(&outreach_id).bind(outcome.name()).bind(at).execute(&mut *tx).await?;
                    sqlx::query(
                        "INSERT INTO followups (id, campaign, outreach_id, phone, reason, detail, status, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)",
                    ).bind(new_id()).bind(new.campaign).bind(&outreach_id).bind(new.phone).bind(reason.name()).bind(detail).bind(at)
                     .execute(&mut *tx).await?;
                    None
                }
            };
            tx.commit().await?;
            Ok(Some((outreach_id, attempt)))
        })
    }

    /// The patient got through to the clinic: end their open callback in `campaign` as withdrawn.
    pub async fn withdraw_callback(
        &self,
        campaign: &str,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let Some(open) = self.open_callback(campaign, phone).await? else {
            return Ok(None);
        };
        let ended = self
            .finish_outreach(&open.id, Outcome::Withdrawn, None, now)
            .await?;
        Ok(ended.then_some(open.id))
    }

    /// A follow-up not tied to an outreach (a missed call from a number ringback cannot call).
    pub async fn add_followup(
        &self,
        campaign: &str,
        phone: Option<&str>,
        reason: FollowupReason,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id = new_id();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO followups (id, campaign, outreach_id, phone, reason, detail, status, created_at)
             VALUES ($1, $2, NULL, $3, $4, $5, 'open', $6)",
        ).bind(&id).bind(campaign).bind(phone).bind(reason.name()).bind(detail).bind(millis(now))
         .execute(pool).await?.rows_affected());
        Ok(id)
    }

    /// Callback calls of `campaign` being dialled or live (each holds a member of staff).
    pub async fn callbacks_in_flight(&self, campaign: &str) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM attempts t JOIN outreach o ON o.id = t.outreach_id
             WHERE t.channel = 'voice' AND t.status IN ('dialing', 'live') AND o.campaign = $1",
        ).bind(campaign).fetch_one(pool).await?))
    }

    /// Planned first attempts of `campaign` due in `[from, until)`: the backlog waiting for an opening.
    pub async fn planned_between(
        &self,
        campaign: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM attempts t JOIN outreach o ON o.id = t.outreach_id
             WHERE o.campaign = $1 AND t.status = 'planned' AND t.due_at >= $2 AND t.due_at < $3",
        ).bind(campaign).bind(millis(from)).bind(millis(until)).fetch_one(pool).await?))
    }

    /// The `<Dial>` leg of a callback ended (or staff said it reached voicemail).
    pub async fn set_bridge(
        &self,
        attempt: &str,
        status: &str,
        bridged_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET bridge_status = $2, updated_at = $4,
                 bridged_at = CASE WHEN $3 IS NULL THEN bridged_at WHEN placed_at > $3 THEN placed_at ELSE $3 END
             WHERE id = $1",
        ).bind(attempt).bind(status).bind(bridged_at.map(millis)).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// `phone` cannot take `channel` (a provider's final error): no more attempts on it.
    pub async fn block_channel(
        &self,
        phone: &str,
        channel: crate::outreach::Channel,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO channel_blocks (phone, channel, code, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (phone, channel) DO NOTHING",
        ).bind(phone).bind(channel.name()).bind(code).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The patient's phone never rang on this attempt: it counts towards no limit.
    pub async fn uncount_attempt(
        &self,
        attempt: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE attempts SET counted = 0, updated_at = $2 WHERE id = $1")
            .bind(attempt).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }
}

/// "Anna Maria Puig" → ("Anna", Some("Maria Puig")); nothing → ("", None).
fn split_name(name: Option<&str>) -> (String, Option<String>) {
    let name = name.map(str::trim).unwrap_or_default();
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (first.to_string(), Some(rest.trim().to_string())),
        None => (name.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::split_name;

    #[test]
    fn a_name_splits_at_the_first_space() {
        assert_eq!(
            split_name(Some(" Anna Maria Puig ")),
            ("Anna".into(), Some("Maria Puig".into()))
        );
        assert_eq!(split_name(Some("Joan")), ("Joan".into(), None));
        assert_eq!(split_name(None), (String::new(), None));
    }
}
