//! The outreach and attempt rows the worker reads and moves forward (`calls.rs` applies what the
//! provider says of each call). Every state change is a conditional update, so running it twice
//! changes nothing the second time.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;

use super::{BeginWrite, Db, StoreError, instant, millis, new_id, on_pool};
use crate::outreach::machine::FollowupReason;
use crate::outreach::{Channel, Outcome};
use crate::plan::{Past, Slot};

/// One attempt with everything needed to decide about it.
#[derive(Debug, Clone)]
pub struct AttemptContext {
    pub attempt_id: String,
    pub outreach_id: String,
    pub seq: i64,
    pub channel: Channel,
    pub phone: String,
    pub status: String,
    pub due_at: DateTime<Utc>,
    pub provider_id: Option<String>,
    pub answered_by: Option<String>,
    pub digits: Option<String>,
    pub call_status: Option<String>,
    pub status_rank: i64,
    pub campaign: String,
    pub kind: String,
    pub state: String,
    pub timezone: String,
    pub language: String,
    pub opens_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub appointment_at: Option<DateTime<Utc>>,
    pub provider: Option<String>,
    pub location: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    /// This outreach's attempts placed before this one.
    pub history: Vec<Past>,
    /// The number's contacts in every other outreach, for the caps.
    pub others: Vec<DateTime<Utc>>,
    pub opted_out: bool,
    /// Callbacks: the `<Dial>` leg's status (`completed`, `no-answer` …, or `voicemail`).
    pub bridge_status: Option<String>,
    /// Whether an earlier attempt of this outreach reached voicemail (and left the message).
    pub voicemail_before: bool,
    /// The number takes no SMS (not a mobile, or refused by the carrier).
    pub no_sms: bool,
    /// The number takes no calls (a provider refused one as the wrong channel).
    pub no_calls: bool,
    /// Staff paused the campaign: nothing of it is placed until it is resumed.
    pub campaign_paused: bool,
}

/// Live-call limits a claim must fit in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits<'a> {
    /// Calls being dialled or live, every campaign (one provider account).
    pub lines: Option<i64>,
    /// Callbacks of this campaign in flight (staff free for them).
    pub agents: Option<(&'a str, i64)>,
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Taken: this worker places it.
    Taken,
    /// No longer planned (another worker took it, or it was withdrawn).
    Gone,
    /// Still planned, but the limits are full now.
    Full,
}

/// An attempt with its outreach, patient and appointment, and (as JSON arrays) the outreach's
/// attempts made so far and the number's other contacts since `$2`, whether the number is on
/// the opt-out ledger or blocked for either channel, and whether staff paused the campaign: one statement (each checkout of a pooled
/// connection is a round trip more), its two aggregates written per backend.
macro_rules! context_sql {
    ($history:literal, $others:literal) => {
        concat!(
            "SELECT t.id, t.outreach_id, t.seq, t.channel, t.phone, t.status, t.due_at, t.provider_id,
                t.answered_by, t.digits, t.call_status, t.status_rank, o.campaign, o.kind, o.state, o.timezone,
                o.language, o.opens_at, o.deadline, a.starts_at, a.provider, a.location, p.first_name,
                p.last_name, t.bridge_status, ",
            $history,
            " AS history, ",
            $others,
            " AS others,
                (SELECT COUNT(*) FROM optouts WHERE phone = t.phone) AS opted,
                (SELECT COUNT(*) FROM channel_blocks WHERE phone = t.phone AND channel = 'sms') AS no_sms,
                (SELECT COUNT(*) FROM channel_blocks WHERE phone = t.phone AND channel = 'voice') AS no_calls,
                (SELECT COUNT(*) FROM campaign_pauses WHERE campaign = o.campaign AND resumed_at IS NULL) AS paused
            FROM attempts t JOIN outreach o ON o.id = t.outreach_id JOIN patients p ON p.id = o.patient_id
            LEFT JOIN appointments a ON a.id = o.appointment_id
            WHERE t.id = $1"
        )
    };
}

pub(super) const CONTEXT_SQLITE: &str = context_sql!(
    "(SELECT json_group_array(json_array(COALESCE(h.placed_at, h.due_at), h.channel, h.answered_by, h.bridge_status) ORDER BY h.seq)
        FROM attempts h WHERE h.outreach_id = t.outreach_id AND h.id <> t.id
        AND h.status IN ('dialing', 'live', 'done') AND h.counted = 1)",
    "(SELECT json_group_array(COALESCE(x.placed_at, x.due_at)) FROM attempts x
        WHERE x.phone = t.phone AND x.outreach_id <> t.outreach_id AND x.status <> 'withdrawn'
        AND x.counted = 1 AND x.due_at >= $2)"
);

const CONTEXT_POSTGRES: &str = context_sql!(
    "(SELECT COALESCE(json_agg(json_build_array(COALESCE(h.placed_at, h.due_at), h.channel, h.answered_by, h.bridge_status) ORDER BY h.seq), '[]')::text
        FROM attempts h WHERE h.outreach_id = t.outreach_id AND h.id <> t.id
        AND h.status IN ('dialing', 'live', 'done') AND h.counted = 1)",
    "(SELECT COALESCE(json_agg(COALESCE(x.placed_at, x.due_at)), '[]')::text FROM attempts x
        WHERE x.phone = t.phone AND x.outreach_id <> t.outreach_id AND x.status <> 'withdrawn'
        AND x.counted = 1 AND x.due_at >= $2)"
);

/// `planned → dialing` for attempt `$1` at `$2`, only while the voice calls in flight stay under
/// `$3` and, with `$4`, that campaign's under `$5`.
pub(super) const CLAIM: &str = "UPDATE attempts SET status = 'dialing', placed_at = $2, updated_at = $2
     WHERE id = $1 AND status = 'planned'
       AND ($3 IS NULL OR (SELECT COUNT(*) FROM attempts WHERE channel = 'voice' AND status IN ('dialing', 'live')) < $3)
       AND ($4 IS NULL OR (SELECT COUNT(*) FROM attempts l JOIN outreach o ON o.id = l.outreach_id
                           WHERE l.channel = 'voice' AND l.status IN ('dialing', 'live') AND o.campaign = $4) < $5)";

/// End outreach `$1` with outcome `$2` at `$3` (`$4`: also over an undecided outcome), and only
/// then withdraw what it still has planned, record the event `$5`, and open follow-up `$6` for
/// reason `$7` (none when NULL) with detail `$8`. Returns 1 if it ended now.
pub(super) const DECIDE_SQLITE: &str = concat!(
    "UPDATE outreach SET state = 'finished', outcome = $2, outcome_at = $3, updated_at = $3
     WHERE id = $1 AND (state = 'active' OR ($4 AND outcome IN ",
    undecided!(),
    "));
    INSERT INTO outreach_events (id, outreach_id, at, kind, detail)
        SELECT $5, $1, $3, 'finished', $2 WHERE changes() = 1;
    UPDATE attempts SET status = 'withdrawn', updated_at = $3
        WHERE outreach_id = $1 AND status = 'planned' AND EXISTS (SELECT 1 FROM outreach_events WHERE id = $5);
    INSERT INTO followups (id, campaign, outreach_id, phone, reason, detail, status, created_at)
        SELECT $6, campaign, id, phone, $7, $8, 'open', $3 FROM outreach
        WHERE id = $1 AND $7 IS NOT NULL AND EXISTS (SELECT 1 FROM outreach_events WHERE id = $5);
    SELECT COUNT(*) FROM outreach_events WHERE id = $5"
);

/// [`DECIDE_SQLITE`] as one PostgreSQL statement.
const DECIDE_POSTGRES: &str = concat!(
    "WITH ended AS (
        UPDATE outreach SET state = 'finished', outcome = $2, outcome_at = $3, updated_at = $3
        WHERE id = $1 AND (state = 'active' OR ($4 AND outcome IN ",
    undecided!(),
    ")) RETURNING id, campaign, phone),
    withdrawn AS (
        UPDATE attempts SET status = 'withdrawn', updated_at = $3
        WHERE outreach_id IN (SELECT id FROM ended) AND status = 'planned'),
    followup AS (
        INSERT INTO followups (id, campaign, outreach_id, phone, reason, detail, status, created_at)
        SELECT $6, campaign, id, phone, $7, $8, 'open', $3 FROM ended WHERE $7::text IS NOT NULL),
    event AS (
        INSERT INTO outreach_events (id, outreach_id, at, kind, detail)
        SELECT $5, id, $3, 'finished', $2 FROM ended)
    SELECT COUNT(*) FROM ended"
);

/// Withdraw what outreach `$1` still has planned (`$2` now).
pub(super) const WITHDRAW_OUTREACH: &str = "UPDATE attempts SET status = 'withdrawn', updated_at = $2 WHERE outreach_id = $1 AND status = 'planned'";

/// Plan attempt `$1` of outreach `$2` (its sequence number `$3`, channel `$4`, to `$5`, at `$6`, …)
/// only while the outreach is active. On PostgreSQL the check shares a lock on the outreach row:
/// an opt-out or an end that is changing the row is waited for and then seen, and one that comes
/// after finds the new attempt to withdraw. (SQLite runs one writer at a time.)
macro_rules! add_attempt_sql {
    ($lock:literal) => {
        concat!(
            "INSERT INTO attempts (id, outreach_id, seq, channel, phone, status, due_at, daypart, reason, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, 'planned', $6, $7, $8, $9, $9
             WHERE EXISTS (SELECT 1 FROM outreach WHERE id = $2 AND state = 'active'",
            $lock,
            ") ON CONFLICT (outreach_id, seq) DO NOTHING"
        )
    };
}
const ADD_ATTEMPT_SQLITE: &str = add_attempt_sql!("");
const ADD_ATTEMPT_POSTGRES: &str = add_attempt_sql!(" FOR SHARE");

impl Db {
    /// The attempt `id` and its outreach, history, the number's other contacts and opt-out.
    pub async fn attempt_context(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptContext>, StoreError> {
        let since = millis(now - TimeDelta::days(8));
        let sql = match self {
            Db::Sqlite(_) => CONTEXT_SQLITE,
            Db::Postgres(_) => CONTEXT_POSTGRES,
        };
        on_pool!(self, pool => {
            let Some(r) = sqlx::query(sql).bind(id).bind(since).fetch_optional(pool).await? else {
                return Ok(None);
            };
            type HistoryRow = (i64, String, Option<String>, Option<String>);
            let history: Vec<HistoryRow> = serde_json::from_str(&r.try_get::<String, _>(25)?)
                .map_err(|e| StoreError::Stored(format!("attempt history: {e}")))?;
            let others: Vec<i64> = serde_json::from_str(&r.try_get::<String, _>(26)?)
                .map_err(|e| StoreError::Stored(format!("other contacts: {e}")))?;
            let (opted, no_sms, no_calls, paused): (i64, i64, i64, i64) =
                (r.try_get(27)?, r.try_get(28)?, r.try_get(29)?, r.try_get(30)?);
            Ok(Some(AttemptContext {
                attempt_id: r.try_get(0)?,
                outreach_id: r.try_get(1)?,
                seq: r.try_get(2)?,
                channel: Channel::parse(&r.try_get::<String, _>(3)?).unwrap_or(Channel::Voice),
                phone: r.try_get(4)?,
                status: r.try_get(5)?,
                due_at: instant(r.try_get(6)?),
                provider_id: r.try_get(7)?,
                answered_by: r.try_get(8)?,
                digits: r.try_get(9)?,
                call_status: r.try_get(10)?,
                status_rank: r.try_get(11)?,
                campaign: r.try_get(12)?,
                kind: r.try_get(13)?,
                state: r.try_get(14)?,
                timezone: r.try_get(15)?,
                language: r.try_get(16)?,
                opens_at: instant(r.try_get(17)?),
                deadline: instant(r.try_get(18)?),
                appointment_at: r.try_get::<Option<i64>, _>(19)?.map(instant),
                provider: r.try_get(20)?,
                location: r.try_get(21)?,
                first_name: r.try_get(22)?,
                last_name: r.try_get(23)?,
                voicemail_before: history.iter().any(|(_, _, answered_by, bridge)| {
                    bridge.as_deref() == Some("voicemail")
                        || answered_by.as_deref().is_some_and(|a| a.starts_with("machine"))
                }),
                history: history
                    .into_iter()
                    .map(|(at, channel, ..)| Past {
                        at: instant(at),
                        channel: Channel::parse(&channel).unwrap_or(Channel::Voice),
                    })
                    .collect(),
                others: others.into_iter().map(instant).collect(),
                opted_out: opted > 0,
                bridge_status: r.try_get(24)?,
                no_sms: no_sms > 0,
                no_calls: no_calls > 0,
                campaign_paused: paused > 0,
            }))
        })
    }

    /// `planned → dialing`, once, and only within `limits` (checked in the same step, so two
    /// workers never both take the last free line).
    pub async fn claim_attempt(
        &self,
        id: &str,
        now: DateTime<Utc>,
        limits: &Limits<'_>,
    ) -> Result<Claim, StoreError> {
        let now = millis(now);
        let (campaign, agents) = limits
            .agents
            .map_or((None, None), |(c, n)| (Some(c), Some(n)));
        let limited = limits.lines.is_some() || campaign.is_some();
        let taken = match self {
            // One statement holds SQLite's write lock from its first step: the counts and the
            // update are one atomic step.
            Db::Sqlite(pool) => {
                sqlx::query(CLAIM)
                    .bind(id)
                    .bind(now)
                    .bind(limits.lines)
                    .bind(campaign)
                    .bind(agents)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1
            }
            // PostgreSQL: claims under limits take turns (a transaction-scoped advisory lock),
            // so each one counts the lines the one before it took.
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                if limited {
                    sqlx::query("SELECT pg_advisory_xact_lock(7262)")
                        .execute(&mut *tx)
                        .await?;
                }
                let n = sqlx::query(CLAIM)
                    .bind(id)
                    .bind(now)
                    .bind(limits.lines)
                    .bind(campaign)
                    .bind(agents)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                n == 1
            }
        };
        if taken {
            return Ok(Claim::Taken);
        }
        let status: Option<String> = on_pool!(self, pool => sqlx::query_scalar("SELECT status FROM attempts WHERE id = $1")
            .bind(id).fetch_optional(pool).await?);
        Ok(match status.as_deref() {
            Some("planned") if limited => Claim::Full,
            _ => Claim::Gone,
        })
    }

    /// The provider took the call.
    pub async fn attempt_placed(
        &self,
        id: &str,
        provider_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET status = 'live', provider_id = $2, updated_at = $3 WHERE id = $1 AND status = 'dialing'",
        ).bind(id).bind(provider_id).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The request went out but its answer was unclear: the call may exist, so the attempt counts
    /// as made; a status callback or the reconcile settles it.
    pub async fn attempt_unclear(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET status = 'live', error = $2, updated_at = $3 WHERE id = $1 AND status = 'dialing'",
        ).bind(id).bind(reason).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The provider did not take the call: the same attempt goes back to `planned` for `due_at`.
    pub async fn attempt_retry(
        &self,
        id: &str,
        due_at: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET status = 'planned', placed_at = NULL, task_id = NULL, due_at = $2, error = $3, updated_at = $4
             WHERE id = $1 AND status = 'dialing'",
        ).bind(id).bind(millis(due_at)).bind(reason).bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// A planned attempt moves to a new slot (it woke late, or the rules moved it).
    pub async fn replan_attempt(
        &self,
        id: &str,
        slot: &Slot,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE attempts SET due_at = $2, reason = $3, daypart = $4, channel = $5, task_id = NULL, updated_at = $6
             WHERE id = $1 AND status = 'planned'",
        ).bind(id).bind(millis(slot.at)).bind(&slot.reason).bind(slot.daypart.name()).bind(slot.channel.name())
         .bind(millis(now)).execute(pool).await?.rows_affected());
        Ok(done == 1)
    }

    /// Plan the outreach's next attempt (once: a second call with the same `seq` changes nothing).
    pub async fn add_attempt(
        &self,
        outreach_id: &str,
        phone: &str,
        seq: i64,
        slot: &Slot,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = millis(now);
        let sql = match self {
            Db::Sqlite(_) => ADD_ATTEMPT_SQLITE,
            Db::Postgres(_) => ADD_ATTEMPT_POSTGRES,
        };
        on_pool!(self, pool => sqlx::query(sql).bind(new_id()).bind(outreach_id).bind(seq).bind(slot.channel.name()).bind(phone).bind(millis(slot.at))
         .bind(slot.daypart.name()).bind(&slot.reason).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Withdraw what outreach `outreach_id` still has planned.
    pub async fn withdraw_planned(
        &self,
        outreach_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(WITHDRAW_OUTREACH)
            .bind(outreach_id).bind(millis(now)).execute(pool).await?.rows_affected()))
    }

    /// End an outreach with `outcome` (once), withdraw what it still had planned, and put a
    /// follow-up on the worklist when staff must act. `false` if it had already ended.
    pub async fn finish_outreach(
        &self,
        outreach_id: &str,
        outcome: Outcome,
        followup: Option<(FollowupReason, String)>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.decide_outreach(outreach_id, outcome, followup, false, now)
            .await
    }

    /// [`Db::finish_outreach`]; with `over_undecided`, also over an outcome the patient's own
    /// answer may still replace (voicemail, SMS, no answer: a later SMS reply decides).
    pub(super) async fn decide_outreach(
        &self,
        outreach_id: &str,
        outcome: Outcome,
        followup: Option<(FollowupReason, String)>,
        over_undecided: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = millis(now);
        let (reason, detail) = followup.map_or((None, None), |(r, d)| (Some(r.name()), Some(d)));
        // The same parameters for either backend's statement.
        macro_rules! decide {
            ($sql:expr) => {
                sqlx::query_scalar($sql)
                    .bind(outreach_id)
                    .bind(outcome.name())
                    .bind(now)
                    .bind(over_undecided)
                    .bind(new_id())
                    .bind(new_id())
                    .bind(reason)
                    .bind(detail)
            };
        }
        let ended: i64 = match self {
            // One trip to the connection's thread inside the transaction: each trip is time the
            // write lock is held while every other writer waits.
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with(pool.write_begin()).await?;
                let rows: Vec<i64> = decide!(DECIDE_SQLITE).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.first().copied().unwrap_or(0)
            }
            // One statement, atomic by itself.
            Db::Postgres(pool) => decide!(DECIDE_POSTGRES).fetch_one(pool).await?,
        };
        Ok(ended == 1)
    }
}
