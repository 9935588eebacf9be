//! One day's visits and where each one's reminder stands: what the front desk prints the
//! evening before (who confirmed, who asked to cancel, who has not been reached yet).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::outcomes::{followup_status, placed};
use super::{Db, ListQuery, StoreError, instant, json_list, millis, on_pool};

/// A visit and its reminder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitRecord {
    pub campaign: String,
    /// The clinic's appointment and patient ids.
    pub appointment_id: String,
    pub patient_id: String,
    /// The patient's name as the list gave it.
    pub patient: String,
    /// The visit, in the zone it is kept in (RFC 3339 with that zone's offset).
    pub appointment_at: String,
    pub phone: String,
    /// `booked` or `cancelled`, as the latest list said.
    pub status: String,
    /// Where the reminder stands: `calling` (still trying), `ended` (see `outcome`), or `none`
    /// (never planned: cancelled, or imported too late for a call).
    pub reminder: String,
    pub outcome: Option<String>,
    /// Calls placed and SMS sent.
    pub calls: i64,
    pub sms: i64,
    /// While calling: when the next call or SMS is planned, and which (`voice` or `sms`).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub next_channel: Option<String>,
    /// `open` while one of its follow-ups waits for staff, `resolved` once all are done.
    pub followup: Option<String>,
}

impl VisitRecord {
    /// The next attempt as people say it: `SMS` or `call`.
    pub fn next_kind(&self) -> &'static str {
        match self.next_channel.as_deref() {
            Some("sms") => "SMS",
            _ => "call",
        }
    }
}

/// A visit: its appointment's id, campaign, the clinic's ids, the patient's name, the time and
/// zone, the number, the status.
type VisitRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
    String,
);

/// An outreach of a visit: the appointment, its id, state, outcome, calls, SMS, the next
/// attempt's time and channel, and its follow-ups' status.
type ReminderRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The visits from `$1` to `$2` (excluded) of campaign `$3` (NULL: every campaign).
const VISITS: &str = "SELECT a.id, a.campaign, a.external_id, p.external_id,
        NULLIF(TRIM(COALESCE(p.first_name, '') || ' ' || COALESCE(p.last_name, '')), ''),
        a.starts_at, a.timezone, p.phone, a.status
     FROM appointments a JOIN patients p ON p.id = a.patient_id
     WHERE a.starts_at >= $1 AND a.starts_at < $2 AND ($3 IS NULL OR a.campaign = $3)
     ORDER BY a.starts_at, a.campaign, a.external_id";

/// Every outreach of the appointments of the JSON array `$1`, the newest first (a moved visit
/// has one withdrawn for each move). Asked apart from the visits: SQLite has no index of
/// outreach by appointment (an import would pay for it on every row), and a join would have it
/// look through every outreach for each visit; this reads them once.
macro_rules! reminders_of {
    () => {
        concat!(
            "SELECT o.appointment_id, o.id, o.state, o.outcome, ",
            placed!("voice"),
            ", ",
            placed!("sms"),
            ",
            (SELECT MIN(CASE WHEN t.status = 'planned' THEN t.due_at END)
             FROM attempts t WHERE t.outreach_id = o.id),
            (SELECT t.channel FROM attempts t WHERE t.outreach_id = o.id AND t.status = 'planned'
             ORDER BY t.due_at LIMIT 1), ",
            followup_status!(),
            " FROM outreach o WHERE o.appointment_id IN "
        )
    };
}
const REMINDERS: ListQuery = list_query!(
    reminders_of!(),
    "1",
    " ORDER BY o.created_at DESC, o.id DESC"
);

impl Db {
    /// The visits from `since` to `until` (excluded), of `campaign` or of every campaign, in
    /// the order they come, each with its latest reminder. Two statements, whatever the count.
    pub async fn visits(
        &self,
        campaign: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<VisitRecord>, StoreError> {
        let visits: Vec<VisitRow> = on_pool!(self, pool => sqlx::query_as(VISITS)
            .bind(millis(since))
            .bind(millis(until))
            .bind(campaign)
            .fetch_all(pool)
            .await?);
        let ids: Vec<&str> = visits.iter().map(|v| v.0.as_str()).collect();
        let ids = json_list(&ids)?;
        let reminders: Vec<ReminderRow> = on_pool!(self, pool => sqlx::query_as(REMINDERS.for_db(self))
            .bind(&ids)
            .fetch_all(pool)
            .await?);
        // The first of each appointment's is its latest.
        let mut latest: HashMap<String, ReminderRow> = HashMap::new();
        for r in reminders {
            latest.entry(r.0.clone()).or_insert(r);
        }
        Ok(visits
            .into_iter()
            .map(|v| {
                let reminder = latest.remove(&v.0);
                record(v, reminder)
            })
            .collect())
    }
}

fn record(v: VisitRow, reminder: Option<ReminderRow>) -> VisitRecord {
    let zone: Tz = v.6.parse().unwrap_or(Tz::UTC);
    let state = match reminder.as_ref().map(|r| r.2.as_str()) {
        None => "none",
        Some("active") => "calling",
        Some(_) => "ended",
    };
    let (outcome, calls, sms, next_attempt_at, next_channel, followup) = match reminder {
        Some(r) => (r.3, r.4, r.5, r.6.map(instant), r.7, r.8),
        None => (None, 0, 0, None, None, None),
    };
    VisitRecord {
        campaign: v.1,
        appointment_id: v.2,
        patient_id: v.3,
        patient: v.4.unwrap_or_default(),
        appointment_at: instant(v.5)
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        phone: v.7,
        status: v.8,
        reminder: state.to_string(),
        outcome,
        calls,
        sms,
        next_attempt_at,
        next_channel,
        followup,
    }
}
