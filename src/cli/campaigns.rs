//! `ringback campaigns check [DIR]`.

use std::path::Path;
use std::process::ExitCode;

use super::{Failure, Outcome};
use crate::campaign::load_dir;

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
