//! The import log: one row for each appointment list imported, or refused whole, so that an admin
//! can tell whether the night's export went in without reading the service's output.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Db, StoreError, instant, new_id, on_pool};
use crate::import::Summary;

/// One import as the log keeps it: counts, not rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRecord {
    pub id: String,
    pub campaign: String,
    /// The file name as given, `-` for stdin, `api` for the HTTP API.
    pub source: String,
    pub at: DateTime<Utc>,
    pub created: u64,
    pub updated: u64,
    pub withdrawn: u64,
    pub unchanged: u64,
    pub skipped_too_late: u64,
    /// Rows whose number is on the opt-out ledger: imported, and not called.
    pub on_ledger: u64,
    /// Rows refused (the summary named each one).
    pub rejected: u64,
    /// Why the whole list was refused, if it was.
    pub error: Option<String>,
}

impl ImportRecord {
    pub fn new(campaign: &str, source: &str, at: DateTime<Utc>, summary: &Summary) -> Self {
        ImportRecord {
            id: new_id(),
            campaign: campaign.to_string(),
            source: source.to_string(),
            at,
            created: summary.created,
            updated: summary.updated,
            withdrawn: summary.withdrawn,
            unchanged: summary.unchanged,
            skipped_too_late: summary.skipped_too_late,
            on_ledger: summary.on_ledger.len() as u64,
            rejected: summary.rejected.len() as u64,
            error: None,
        }
    }

    pub fn refused(campaign: &str, source: &str, at: DateTime<Utc>, error: String) -> Self {
        ImportRecord {
            error: Some(error),
            ..ImportRecord::new(campaign, source, at, &Summary::default())
        }
    }
}

pub(super) const INSERT_SQL: &str = "INSERT INTO imports (id, campaign, source, at, created, updated, withdrawn, \
     unchanged, skipped_too_late, rejected, error, on_ledger) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Insert `record` through `executor` (a pool, or the import's own transaction).
macro_rules! insert_import {
    ($executor:expr, $record:expr) => {{
        let r: &$crate::store::imports::ImportRecord = $record;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query($crate::store::imports::INSERT_SQL)
            .bind(&r.id)
            .bind(&r.campaign)
            .bind(&r.source)
            .bind($crate::store::millis(r.at))
            .bind(count(r.created))
            .bind(count(r.updated))
            .bind(count(r.withdrawn))
            .bind(count(r.unchanged))
            .bind(count(r.skipped_too_late))
            .bind(count(r.rejected))
            .bind(r.error.as_deref())
            .bind(count(r.on_ledger))
            .execute($executor)
            .await
            .map(|_| ())
    }};
}
pub(super) use insert_import;

type Row = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    i64,
);

impl Db {
    /// Log a list refused whole (a wrong header, an empty file): nothing else was written.
    pub async fn record_refused_import(&self, record: &ImportRecord) -> Result<(), StoreError> {
        on_pool!(self, pool => insert_import!(pool, record))?;
        Ok(())
    }

    /// The latest imports, newest first; of one campaign, or of all.
    pub async fn imports(
        &self,
        campaign: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ImportRecord>, StoreError> {
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, campaign, source, at, created, updated, withdrawn, unchanged,
                    skipped_too_late, rejected, error, on_ledger
             FROM imports WHERE ($1 IS NULL OR campaign = $1)
             ORDER BY at DESC, id DESC LIMIT $2",
        ).bind(campaign).bind(i64::from(limit)).fetch_all(pool).await?);
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(|r| ImportRecord {
                id: r.0,
                campaign: r.1,
                source: r.2,
                at: instant(r.3),
                created: count(r.4),
                updated: count(r.5),
                withdrawn: count(r.6),
                unchanged: count(r.7),
                skipped_too_late: count(r.8),
                on_ledger: count(r.11),
                rejected: count(r.9),
                error: r.10,
            })
            .collect())
    }
}
