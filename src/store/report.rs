//! Reading what the worklist, the outreach view and the KPIs show.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Db, StoreError, instant, millis, on_pool};

/// Who answered attempt `t`, as the KPIs count it: `'machine'` (a machine or a fax), `'human'`,
/// or none.
macro_rules! answerer {
    () => {
        "CASE WHEN t.answered_by LIKE 'machine%' OR t.answered_by = 'fax' THEN 'machine'
              WHEN t.answered_by IS NOT NULL THEN 'human' END"
    };
}
pub(super) use answerer;

/// One follow-up on the staff worklist. The phone is shown to staff, who must call back.
#[derive(Debug, Clone, Serialize)]
pub struct Followup {
    pub id: String,
    pub campaign: String,
    pub outreach_id: Option<String>,
    pub phone: Option<String>,
    pub patient: Option<String>,
    pub appointment: Option<String>,
    pub reason: String,
    pub detail: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
}

type FollowupRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// One outreach with its attempts, as `GET /v1/outreach/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OutreachView {
    pub id: String,
    pub campaign: String,
    pub kind: String,
    pub state: String,
    pub outcome: Option<String>,
    pub appointment: Option<String>,
    pub appointment_at: Option<DateTime<Utc>>,
    /// The patient's name as the list gave it (none for a callback to a caller not on a list).
    pub patient: Option<String>,
    pub phone: String,
    pub timezone: String,
    pub language: String,
    pub created_at: DateTime<Utc>,
    /// Who of the staff ended it by hand (outcome `withdrawn`), and their note.
    pub withdrawn_by: Option<String>,
    pub withdrawn_note: Option<String>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub id: String,
    pub seq: i64,
    pub channel: String,
    pub status: String,
    pub due_at: DateTime<Utc>,
    pub reason: String,
    pub placed_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub provider_id: Option<String>,
    pub call_status: Option<String>,
    pub answered_by: Option<String>,
    pub digits: Option<String>,
    pub error: Option<String>,
}

/// An outreach as [`OutreachView`] shows it, without its attempts: id, campaign, kind, state,
/// outcome, appointment, its time, the patient's name, phone, zone, language, created_at.
type HeadRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
);

/// The statement of [`HeadRow`]s, to end with a `WHERE`.
macro_rules! outreach_head {
    () => {
        "SELECT o.id, o.campaign, o.kind, o.state, o.outcome, a.external_id, a.starts_at,
                NULLIF(TRIM(COALESCE(p.first_name, '') || ' ' || COALESCE(p.last_name, '')), ''),
                o.phone, o.timezone, o.language, o.created_at, o.withdrawn_by, o.withdrawn_note
         FROM outreach o LEFT JOIN appointments a ON a.id = o.appointment_id
              LEFT JOIN patients p ON p.id = o.patient_id"
    };
}

/// An attempt as [`AttemptView`] shows it, after the id of its outreach.
type AttemptRow = (
    String,
    String,
    i64,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The statement of [`AttemptRow`]s from attempts `t`, to end with a `WHERE` (or a join).
macro_rules! attempt_row {
    () => {
        "SELECT t.outreach_id, t.id, t.seq, t.channel, t.status, t.due_at, t.reason, t.placed_at,
                t.ended_at, t.provider_id, t.call_status, t.answered_by, t.digits, t.error
         FROM attempts t"
    };
}

/// Each head with its attempts (in the order given), in the heads' order.
fn views(heads: Vec<HeadRow>, attempts: Vec<AttemptRow>) -> Vec<OutreachView> {
    let mut by_outreach: std::collections::HashMap<String, Vec<AttemptView>> =
        std::collections::HashMap::new();
    for a in attempts {
        by_outreach.entry(a.0).or_default().push(AttemptView {
            id: a.1,
            seq: a.2,
            channel: a.3,
            status: a.4,
            due_at: instant(a.5),
            reason: a.6,
            placed_at: a.7.map(instant),
            ended_at: a.8.map(instant),
            provider_id: a.9,
            call_status: a.10,
            answered_by: a.11,
            digits: a.12,
            error: a.13,
        });
    }
    heads
        .into_iter()
        .map(|h| OutreachView {
            attempts: by_outreach.remove(&h.0).unwrap_or_default(),
            id: h.0,
            campaign: h.1,
            kind: h.2,
            state: h.3,
            outcome: h.4,
            appointment: h.5,
            appointment_at: h.6.map(instant),
            patient: h.7,
            phone: h.8,
            timezone: h.9,
            language: h.10,
            created_at: instant(h.11),
            withdrawn_by: h.12,
            withdrawn_note: h.13,
        })
        .collect()
}

/// (kind, state, outcome, how many outreach)
pub type OutreachFacts = (String, String, Option<String>, i64);
/// (channel, call_status, who answered: "human" | "machine" | none, the patient's zone,
/// placed_at in 15-minute steps since the epoch, how many attempts). Every zone's offset is a
/// whole number of quarter hours, so each step falls in one local hour.
pub type AttemptFacts = (
    String,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    i64,
);
/// Per outreach: milliseconds from the request (or import) to its first attempt, and to the
/// first contact (a person answered, or a callback was bridged).
pub type WaitFacts = (Option<i64>, Option<i64>);

/// The facts KPIs are computed from, counted by the database (a campaign of 100,000 outreach
/// reads as a few hundred groups, not 100,000 rows).
#[derive(Debug, Clone, Default)]
pub struct KpiFacts {
    pub outreach: Vec<OutreachFacts>,
    pub waits: Vec<WaitFacts>,
    pub attempts: Vec<AttemptFacts>,
    pub opt_outs: i64,
    /// SMS replies from patients to this campaign's outreach.
    pub replies: i64,
}

impl Db {
    /// Follow-ups, newest first; `status` "open" or "resolved" or any.
    pub async fn followups(
        &self,
        campaign: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<Followup>, StoreError> {
        let rows: Vec<FollowupRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT f.id, f.campaign, f.outreach_id, f.phone,
                    p.first_name || COALESCE(' ' || p.last_name, ''), a.external_id,
                    f.reason, f.detail, f.status, f.created_at, f.resolved_at, f.resolved_by, f.resolution_note
             FROM followups f LEFT JOIN outreach o ON o.id = f.outreach_id
             LEFT JOIN patients p ON p.id = o.patient_id LEFT JOIN appointments a ON a.id = o.appointment_id
             WHERE ($1 IS NULL OR f.campaign = $1) AND ($2 IS NULL OR f.status = $2)
             ORDER BY f.created_at DESC, f.id DESC",
        ).bind(campaign).bind(status).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|r| Followup {
                id: r.0,
                campaign: r.1,
                outreach_id: r.2,
                phone: r.3,
                patient: r.4,
                appointment: r.5,
                reason: r.6,
                detail: r.7,
                status: r.8,
                created_at: instant(r.9),
                resolved_at: r.10.map(instant),
                resolved_by: r.11,
                resolution_note: r.12,
            })
            .collect())
    }

    /// Mark a follow-up resolved; `None` if there is no such follow-up.
    pub async fn resolve_followup(
        &self,
        id: &str,
        by: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        let exists: Option<String> = on_pool!(self, pool => sqlx::query_scalar("SELECT status FROM followups WHERE id = $1")
            .bind(id).fetch_optional(pool).await?);
        let Some(status) = exists else {
            return Ok(None);
        };
        if status == "resolved" {
            return Ok(Some(false));
        }
        on_pool!(self, pool => sqlx::query(
            "UPDATE followups SET status = 'resolved', resolved_at = $2, resolved_by = $3, resolution_note = $4 WHERE id = $1 AND status = 'open'",
        ).bind(id).bind(millis(now)).bind(by).bind(note).execute(pool).await?.rows_affected());
        Ok(Some(true))
    }

    pub async fn outreach_view(&self, id: &str) -> Result<Option<OutreachView>, StoreError> {
        let heads: Vec<HeadRow> = on_pool!(self, pool => sqlx::query_as(
            concat!(outreach_head!(), " WHERE o.id = $1"),
        ).bind(id).fetch_all(pool).await?);
        let attempts: Vec<AttemptRow> = on_pool!(self, pool => sqlx::query_as(
            concat!(attempt_row!(), " WHERE t.outreach_id = $1 ORDER BY t.seq"),
        ).bind(id).fetch_all(pool).await?);
        Ok(views(heads, attempts).pop())
    }

    /// The latest `limit` outreach to `phone` (E.164), newest first, in every campaign: what a
    /// patient who rings back after a missed call was called about. Two queries, whatever the
    /// count.
    pub async fn outreach_of_phone(
        &self,
        phone: &str,
        limit: i64,
    ) -> Result<Vec<OutreachView>, StoreError> {
        let heads: Vec<HeadRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            outreach_head!(),
            " WHERE o.phone = $1 ORDER BY o.created_at DESC, o.id DESC LIMIT $2"
        )).bind(phone).bind(limit).fetch_all(pool).await?);
        // Every attempt to the number's outreach; those of outreach past the limit are left out.
        let attempts: Vec<AttemptRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            attempt_row!(),
            " JOIN outreach o ON o.id = t.outreach_id WHERE o.phone = $1 ORDER BY t.seq"
        )).bind(phone).fetch_all(pool).await?);
        Ok(views(heads, attempts))
    }

    pub async fn kpi_facts(&self, campaign: &str) -> Result<KpiFacts, StoreError> {
        on_pool!(self, pool => {
            let outreach = sqlx::query_as(
                "SELECT kind, state, outcome, COUNT(*) FROM outreach WHERE campaign = $1 GROUP BY kind, state, outcome",
            ).bind(campaign).fetch_all(pool).await?;
            let waits = sqlx::query_as(
                "SELECT w.first_at - w.created_at, w.contact_at - w.created_at FROM (
                     SELECT o.created_at,
                        (SELECT MIN(placed_at) FROM attempts t WHERE t.outreach_id = o.id) AS first_at,
                        (SELECT MIN(CASE WHEN t.bridged_at IS NOT NULL THEN t.bridged_at
                                         WHEN t.answered_by = 'human' THEN t.answered_at END)
                         FROM attempts t WHERE t.outreach_id = o.id) AS contact_at
                     FROM outreach o WHERE o.campaign = $1) w
                 WHERE w.first_at IS NOT NULL",
            ).bind(campaign).fetch_all(pool).await?;
            let attempts = sqlx::query_as(concat!(
                "SELECT t.channel, t.call_status,
                        ", answerer!(), ", o.timezone, t.placed_at / 900000, COUNT(*)
                 FROM attempts t JOIN outreach o ON o.id = t.outreach_id
                 WHERE o.campaign = $1 AND t.status IN ('dialing', 'live', 'done')
                 GROUP BY 1, 2, 3, 4, 5"),
            ).bind(campaign).fetch_all(pool).await?;
            let opt_outs = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT o.phone) FROM outreach o
                 WHERE o.campaign = $1 AND (o.outcome = 'opted_out'
                    OR o.phone IN (SELECT phone FROM optouts WHERE source IN ('keypad', 'sms', 'provider')))",
            ).bind(campaign).fetch_one(pool).await?;
            let replies = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outreach_events e JOIN outreach o ON o.id = e.outreach_id
                 WHERE o.campaign = $1 AND e.kind = 'sms_reply'",
            ).bind(campaign).fetch_one(pool).await?;
            Ok(KpiFacts { outreach, waits, attempts, opt_outs, replies })
        })
    }
}
