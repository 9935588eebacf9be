//! One day's visits and where each one's reminder stands: what the front desk prints the
//! evening before (who confirmed, who asked to cancel, who has not been reached yet).

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Db, StoreError, instant, millis, on_pool};

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

type Row = (
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The visits from `$1` to `$2` (excluded) of campaign `$3` (NULL: every campaign), each with
/// every outreach it had, its newest first (a moved visit has one withdrawn for each move).
/// SQLite has no index of outreach by appointment (an import would pay for it on every row);
/// for this one statement it builds one of its own (an automatic index), once.
const VISITS: &str = "SELECT a.campaign, a.external_id, p.external_id,
        NULLIF(TRIM(COALESCE(p.first_name, '') || ' ' || COALESCE(p.last_name, '')), ''),
        a.starts_at, a.timezone, p.phone, a.status, o.id, o.state, o.outcome,
        (SELECT COALESCE(SUM(CASE WHEN t.channel = 'voice' AND t.status IN ('dialing', 'live', 'done')
                                  THEN 1 ELSE 0 END), 0)
         FROM attempts t WHERE t.outreach_id = o.id),
        (SELECT COALESCE(SUM(CASE WHEN t.channel = 'sms' AND t.status IN ('dialing', 'live', 'done')
                                  THEN 1 ELSE 0 END), 0)
         FROM attempts t WHERE t.outreach_id = o.id),
        (SELECT MIN(CASE WHEN t.status = 'planned' THEN t.due_at END)
         FROM attempts t WHERE t.outreach_id = o.id),
        (SELECT t.channel FROM attempts t WHERE t.outreach_id = o.id AND t.status = 'planned'
         ORDER BY t.due_at LIMIT 1),
        (SELECT MIN(f.status) FROM followups f WHERE f.outreach_id = o.id)
     FROM appointments a JOIN patients p ON p.id = a.patient_id
          LEFT JOIN outreach o ON o.appointment_id = a.id
     WHERE a.starts_at >= $1 AND a.starts_at < $2 AND ($3 IS NULL OR a.campaign = $3)
     ORDER BY a.starts_at, a.campaign, a.external_id, o.created_at DESC, o.id DESC";

impl Db {
    /// The visits from `since` to `until` (excluded), of `campaign` or of every campaign, in
    /// the order they come, each with its latest reminder.
    pub async fn visits(
        &self,
        campaign: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<VisitRecord>, StoreError> {
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(VISITS)
            .bind(millis(since))
            .bind(millis(until))
            .bind(campaign)
            .fetch_all(pool)
            .await?);
        let mut visits: Vec<VisitRecord> = Vec::new();
        let mut last: Option<(String, String)> = None;
        for r in rows {
            // The first row of each visit is its latest outreach.
            let key = (r.0.clone(), r.1.clone());
            if last.as_ref() == Some(&key) {
                continue;
            }
            last = Some(key);
            visits.push(record(r));
        }
        Ok(visits)
    }
}

fn record(r: Row) -> VisitRecord {
    let zone: Tz = r.5.parse().unwrap_or(Tz::UTC);
    let reminder = match (&r.8, r.9.as_deref()) {
        (None, _) => "none",
        (Some(_), Some("active")) => "calling",
        (Some(_), _) => "ended",
    };
    VisitRecord {
        campaign: r.0,
        appointment_id: r.1,
        patient_id: r.2,
        patient: r.3.unwrap_or_default(),
        appointment_at: instant(r.4)
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        phone: r.6,
        status: r.7,
        reminder: reminder.to_string(),
        outcome: r.10,
        calls: r.11,
        sms: r.12,
        next_attempt_at: r.13.map(instant),
        next_channel: r.14,
        followup: r.15,
    }
}
