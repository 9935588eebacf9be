//! `ringback purge [--days N] [--dry-run]`: retention, by hand or from a cron job.

use std::process::ExitCode;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use super::{Failure, Outcome, connect};
use crate::config::Config;
use crate::store::MIN_RETENTION_DAYS;

pub async fn run(config: &Config, days: Option<u32>, dry_run: bool) -> Outcome {
    let days = days.or(config.retention_days).ok_or_else(|| {
        Failure::user("how many days to keep? --days N, or retention_days in ringback.toml")
    })?;
    if days < MIN_RETENTION_DAYS {
        return Err(Failure::user(format!(
            "--days {days}: keep at least {MIN_RETENTION_DAYS} days (the weekly cap counts the last week's calls)"
        )));
    }
    let cutoff = Utc::now() - TimeDelta::days(i64::from(days));
    let db = connect(config).await?;
    let purged = db
        .purge(cutoff, dry_run)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.close().await;
    let Some(deleted) = purged else {
        return Err(Failure::runtime(
            "another worker is purging this database now; try again in a minute",
        ));
    };
    let summary = json!({
        "kept_days": days,
        "cutoff": cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "dry_run": dry_run,
        "deleted": deleted,
    });
    out!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
