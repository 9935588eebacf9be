//! `ringback campaigns check [DIR]`, `pause ID` and `resume ID`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::{Failure, Outcome, catalog, connect};
use crate::campaign::load_dir;
use crate::config::Config;

pub fn check(dir: &Path) -> Outcome {
    let catalog = load_dir(dir).map_err(|e| Failure::user(format!("{}: {e}", dir.display())))?;
    for warning in &catalog.warnings {
        eprintln!("{warning} (warning)");
    }
    if !catalog.errors.is_empty() {
        for error in &catalog.errors {
            out!("{error}");
        }
        let files: std::collections::BTreeSet<_> = catalog.errors.iter().map(|e| &e.file).collect();
        eprintln!(
            "{} error(s) in {} file(s)",
            catalog.errors.len(),
            files.len()
        );
        return Ok(ExitCode::from(1));
    }
    if catalog.campaigns.is_empty() {
        return Err(Failure::user(format!(
            "{}: no campaign files (*.toml)",
            dir.display()
        )));
    }
    for (id, c) in &catalog.campaigns {
        out!(
            "{id}: ok ({}, {}, {} language(s))",
            c.kind.name(),
            c.timezone,
            c.messages.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The campaign `id` of the configured campaigns, and the name and note checked.
fn known<'a>(
    config: &Config,
    id: &str,
    by: &'a str,
    note: Option<&'a str>,
) -> Result<(&'a str, Option<&'a str>), Failure> {
    catalog(config)?.require(id).map_err(Failure::user)?;
    crate::store::signed_by(by, note).map_err(|(_, message)| Failure::user(format!("--{message}")))
}

/// `ringback campaigns pause ID --by NAME [--note TEXT]`: the pause in force, as JSON.
pub async fn pause(config: &Config, id: &str, by: &str, note: Option<&str>) -> Outcome {
    let (by, note) = known(config, id, by, note)?;
    let db = connect(config).await?;
    let paused = db.pause_campaign(id, by, note, chrono::Utc::now()).await;
    db.close().await;
    let (pause, began) = paused.map_err(|e| Failure::runtime(e.to_string()))?;
    out!("{}", json!({"campaign": id, "paused": pause}));
    if began {
        eprintln!(
            "{id} paused: no calls or SMS until `ringback campaigns resume {id} --by NAME`; calls already ringing finish"
        );
    } else {
        eprintln!(
            "{id} was paused already, by {} at {}",
            pause.paused_by,
            pause.paused_at.to_rfc3339()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `ringback campaigns resume ID --by NAME`.
pub async fn resume(config: &Config, id: &str, by: &str) -> Outcome {
    let (by, _) = known(config, id, by, None)?;
    let db = connect(config).await?;
    let resumed = db.resume_campaign(id, by, chrono::Utc::now()).await;
    db.close().await;
    let ended = resumed.map_err(|e| Failure::runtime(e.to_string()))?;
    out!("{}", json!({"campaign": id, "paused": null}));
    match ended {
        Some(p) => eprintln!(
            "{id} resumed (paused since {} by {}): its calls go out again, the overdue ones first",
            p.paused_at.to_rfc3339(),
            p.paused_by
        ),
        None => eprintln!("{id} was not paused"),
    }
    Ok(ExitCode::SUCCESS)
}
