//! What `/metrics` reports, counted by the database for every campaign at once.

use chrono::{DateTime, Utc};

use super::report::answerer;
use super::{Db, StoreError, millis, on_pool};

/// (campaign, state, outcome, how many outreach)
pub type OutreachCount = (String, String, Option<String>, i64);
/// Attempts placed: (campaign, channel, furthest call or message status, who answered:
/// `"human"` | `"machine"` | none, how many)
pub type PlacedCount = (String, String, Option<String>, Option<String>, i64);
/// Attempts still to be placed: (campaign, channel, 1 when already due else 0, how many, the
/// earliest due instant in milliseconds)
pub type PlannedCount = (String, String, i64, i64, Option<i64>);

/// The counts behind `/metrics`: a few hundred groups however many rows.
#[derive(Debug, Clone, Default)]
pub struct MetricFacts {
    pub outreach: Vec<OutreachCount>,
    pub placed: Vec<PlacedCount>,
    pub planned: Vec<PlannedCount>,
    /// Open follow-ups: (campaign, reason, how many)
    pub followups: Vec<(String, String, i64)>,
    /// The opt-out ledger: (source, how many numbers)
    pub optouts: Vec<(String, i64)>,
    /// Voice calls being dialled or live, every campaign.
    pub live_calls: i64,
}

impl Db {
    /// The counts `/metrics` shows, as of `now` (which planned attempts are already due).
    pub async fn metric_facts(&self, now: DateTime<Utc>) -> Result<MetricFacts, StoreError> {
        let live_calls = self.live_calls().await?;
        on_pool!(self, pool => {
            let outreach = sqlx::query_as(
                "SELECT campaign, state, outcome, COUNT(*) FROM outreach GROUP BY campaign, state, outcome",
            ).fetch_all(pool).await?;
            // With what purges deleted (counted as they did), so the counters never go down.
            let placed = sqlx::query_as(concat!(
                "SELECT campaign, channel, call_status, answerer, CAST(SUM(n) AS BIGINT) FROM (
                     SELECT o.campaign, t.channel, t.call_status, ", answerer!(), " AS answerer, COUNT(*) AS n
                     FROM attempts t JOIN outreach o ON o.id = t.outreach_id
                     WHERE t.status IN ('dialing', 'live', 'done')
                     GROUP BY 1, 2, 3, 4
                     UNION ALL
                     SELECT campaign, channel, NULLIF(call_status, ''), NULLIF(answerer, ''), n
                     FROM purged_attempts
                 ) placed GROUP BY 1, 2, 3, 4",
            )).fetch_all(pool).await?;
            let planned = sqlx::query_as(
                "SELECT o.campaign, t.channel, CAST(CASE WHEN t.due_at <= $1 THEN 1 ELSE 0 END AS BIGINT),
                        COUNT(*), MIN(t.due_at)
                 FROM attempts t JOIN outreach o ON o.id = t.outreach_id
                 WHERE t.status = 'planned'
                 GROUP BY 1, 2, 3",
            ).bind(millis(now)).fetch_all(pool).await?;
            let followups = sqlx::query_as(
                "SELECT campaign, reason, COUNT(*) FROM followups WHERE status = 'open' GROUP BY campaign, reason",
            ).fetch_all(pool).await?;
            let optouts = sqlx::query_as("SELECT source, COUNT(*) FROM optouts GROUP BY source")
                .fetch_all(pool).await?;
            Ok(MetricFacts { outreach, placed, planned, followups, optouts, live_calls })
        })
    }
}
