//! The outcome feed: each outreach that ended, keyed by the clinic's own ids, for the EHR to
//! read back (a confirmed visit marked confirmed) and for staff to open in a spreadsheet.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Db, StoreError, instant, millis, on_pool};

/// One outreach that ended, as the feed gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeRecord {
    pub outreach_id: String,
    pub campaign: String,
    /// `reminder` or `callback`.
    pub kind: String,
    /// The clinic's appointment id (reminders).
    pub appointment_id: Option<String>,
    /// The clinic's patient id (none for a caller ringback only knows by number).
    pub patient_id: Option<String>,
    /// The visit, in the zone it is kept in (RFC 3339 with that zone's offset: the EHR's own
    /// wall-clock time).
    pub appointment_at: Option<String>,
    /// E.164, as dialled.
    pub phone: String,
    pub outcome: String,
    pub outcome_at: DateTime<Utc>,
    /// Calls placed and SMS sent.
    pub calls: i64,
    pub sms: i64,
    /// `open` while one of its follow-ups waits for staff, `resolved` once all are done, none
    /// if it had none.
    pub followup: Option<String>,
}

/// Where a page of the feed ended: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub outcome_at: i64,
    pub outreach_id: String,
}

impl Cursor {
    /// Before every outcome at or after `since` (outreach ids are ULIDs, each greater than `0`).
    pub fn start(since: DateTime<Utc>) -> Cursor {
        Cursor {
            outcome_at: millis(since),
            outreach_id: "0".to_string(),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.outcome_at, self.outreach_id)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Cursor, String> {
        let bad = || format!("not a cursor {text:?} (pass on the `next` of the page before)");
        let (at, id) = text.split_once('-').ok_or_else(bad)?;
        let outcome_at = at.parse().map_err(|_| bad())?;
        let id_ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_ok {
            return Err(bad());
        }
        Ok(Cursor {
            outcome_at,
            outreach_id: id.to_string(),
        })
    }
}

/// Which outcomes to read: those of `campaign` (else every campaign's) that came at or after
/// `since` and before `until` (if given), after `after`, oldest first, at most `limit`.
#[derive(Debug, Clone)]
pub struct OutcomeQuery<'a> {
    pub campaign: Option<&'a str>,
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    pub after: Option<&'a Cursor>,
    pub limit: Option<u32>,
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
);

/// How many attempts of outreach `o` on `$channel` were placed, as SQL. An attempt is found by
/// its outreach alone, and its status and channel counted, not searched: PostgreSQL statistics
/// that lag behind a large import would otherwise send each row through the whole status
/// index.
macro_rules! placed {
    ($channel:literal) => {
        concat!(
            "(SELECT COALESCE(SUM(CASE WHEN t.channel = '",
            $channel,
            "' AND t.status IN ('dialing', 'live', 'done') THEN 1 ELSE 0 END), 0)
              FROM attempts t WHERE t.outreach_id = o.id)"
        )
    };
}
pub(super) use placed;

/// Outreach `o`'s follow-ups, as SQL: `open` while one is, else `resolved`, else NULL.
macro_rules! followup_status {
    () => {
        "(SELECT MIN(f.status) FROM followups f WHERE f.outreach_id = o.id)"
    };
}
pub(super) use followup_status;

/// The feed's rows in `outcome_at, id` order, read along `outreach_outcome_at`. A reply that replaces an outcome (an SMS
/// "1" after a voicemail) moves its outreach to the new `outcome_at`, so a reader that goes on
/// from its last cursor sees it again with the new outcome.
const OUTCOMES: &str = concat!(
    "SELECT o.id, o.campaign, o.kind, a.external_id, p.external_id, a.starts_at, a.timezone,
        o.phone, o.outcome, o.outcome_at, ",
    placed!("voice"),
    ", ",
    placed!("sms"),
    ", ",
    followup_status!(),
    "
     FROM outreach o LEFT JOIN appointments a ON a.id = o.appointment_id
          LEFT JOIN patients p ON p.id = o.patient_id
     WHERE o.outcome_at IS NOT NULL AND o.state = 'finished'
       AND o.outcome_at >= $1 AND o.outcome_at < $2 AND ($3 IS NULL OR o.campaign = $3)
       AND (o.outcome_at, o.id) > ($4, $5)
     ORDER BY o.outcome_at, o.id
     LIMIT $6"
);

impl Db {
    /// What ended, as [`OutcomeQuery`] asks: one statement, whatever the count.
    pub async fn outcomes(
        &self,
        query: &OutcomeQuery<'_>,
    ) -> Result<Vec<OutcomeRecord>, StoreError> {
        let (after_at, after_id) = match query.after {
            Some(c) => (c.outcome_at, c.outreach_id.as_str()),
            None => (i64::MIN, ""),
        };
        let limit = query.limit.map_or(i64::MAX, i64::from);
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(OUTCOMES)
            .bind(millis(query.since))
            .bind(query.until.map_or(i64::MAX, millis))
            .bind(query.campaign)
            .bind(after_at)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(record).collect())
    }
}

fn record(r: Row) -> OutcomeRecord {
    let appointment_at = r.5.map(|ms| {
        let zone: Tz =
            r.6.as_deref()
                .and_then(|z| z.parse().ok())
                .unwrap_or(Tz::UTC);
        instant(ms)
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    });
    OutcomeRecord {
        outreach_id: r.0,
        campaign: r.1,
        kind: r.2,
        appointment_id: r.3,
        patient_id: r.4,
        appointment_at,
        phone: r.7,
        outcome: r.8,
        outcome_at: instant(r.9),
        calls: r.10,
        sms: r.11,
        followup: r.12,
    }
}

impl OutcomeRecord {
    /// Where a page that ends with this record ends.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            outcome_at: millis(self.outcome_at),
            outreach_id: self.outreach_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_wrote() {
        let c = Cursor {
            outcome_at: 1_764_000_000_123,
            outreach_id: "01KAZ3Q9V6X0000000000000AB".into(),
        };
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
    }

    #[test]
    fn a_cursor_that_is_not_one_is_refused() {
        for bad in [
            "",
            "123",
            "abc-01K",
            "123-",
            "123-01K'; DROP TABLE outreach",
            "-5-",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }
}
