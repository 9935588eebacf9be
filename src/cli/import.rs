//! `ringback import --campaign ID FILE|-`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Failure, Outcome, Scratch, catalog, connect, read_input};
use crate::config::Config;
use crate::import::{self, Format, ImportError, Progress};
use crate::store::{Current, Db};

pub async fn run(config: &Config, campaign: &str, file: &Path, dry_run: bool) -> Outcome {
    let catalog = catalog(config)?;
    let campaign = catalog.require(campaign).map_err(Failure::User)?;
    import::accepts_lists(campaign).map_err(|e| Failure::user(e.to_string()))?;
    let (name, bytes) = read_input(file)?;
    let format = Format::guess(&name, &bytes);
    let (db, scratch) = if dry_run {
        dry_run_db(config).await?
    } else {
        (connect(config).await?, None)
    };

    let bar = std::io::stdout()
        .is_terminal()
        .then(|| progress_bar(&name, dry_run));
    let on_progress = |progress| {
        if let Some(bar) = &bar {
            show(bar, progress, dry_run);
        }
    };
    let input = import::Input {
        source: &name,
        bytes: &bytes,
        format,
        now: chrono::Utc::now(),
        dry_run,
    };
    let result = import::run(&db, campaign, input, on_progress, |_| {}).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    db.close().await;
    // The dry run's scratch database goes once closed.
    drop(scratch);
    let summary = match result {
        Ok(s) => s,
        Err(ImportError::File(e)) => {
            return Err(Failure::user(format!(
                "{name}:{}: {}: {}",
                e.line, e.field, e.error
            )));
        }
        Err(ImportError::Store(e)) => {
            return Err(Failure::runtime(format!(
                "{name}: nothing was imported: {e}"
            )));
        }
        Err(e @ ImportError::Campaign(_)) => return Err(Failure::user(e.to_string())),
    };
    out!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    for r in &summary.rejected {
        eprintln!("{name}:{}: {}: {}", r.line, r.field, r.error);
    }
    // Not errors: staff may want to remind these patients another way.
    for line in &summary.on_ledger {
        eprintln!(
            "{name}:{line}: phone: on the opt-out ledger: no call or SMS (its outreach ends opted_out)"
        );
    }
    if summary.rejected.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} row(s) rejected; the other rows were {}",
            summary.rejected.len(),
            if dry_run {
                "checked (dry run: nothing written)"
            } else {
                "imported"
            }
        );
        Ok(ExitCode::from(1))
    }
}

/// The bar on the terminal: a spinner that keeps turning through the phases that report
/// nothing (reading the file, the commit), and a count of rows through the others.
fn progress_bar(name: &str, dry_run: bool) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix}: {msg} {wide_bar} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The file's own name: a long path would push the bar off a narrow terminal.
    let name = Path::new(name)
        .file_name()
        .map_or(name.into(), |n| n.to_string_lossy());
    bar.set_prefix(format!(
        "{} {name}",
        if dry_run { "checking" } else { "importing" }
    ));
    bar.set_message("reading the file");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn show(bar: &ProgressBar, progress: Progress, dry_run: bool) {
    let (phase, count) = match progress {
        Progress::Reading => ("reading the file", None),
        Progress::Checking { done, total } => ("checking rows", Some((done, total))),
        Progress::Planning { done, total } if dry_run => {
            ("comparing with the database", Some((done, total)))
        }
        Progress::Planning { done, total } => ("planning first calls", Some((done, total))),
        Progress::Writing { done, total } => ("writing rows", Some((done, total))),
        Progress::Committing => ("committing", None),
    };
    if bar.message() != phase {
        bar.set_message(phase);
    }
    if let Some((done, total)) = count {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }
}

/// A dry run changes nothing, not even by creating the database file or migrating it: it compares
/// the list with the database when that is there and current, else with an empty one of its own.
async fn dry_run_db(config: &Config) -> Result<(Db, Option<Scratch>), Failure> {
    let url = config.database_url.redacted();
    let runtime = |e: crate::store::StoreError| Failure::runtime(format!("database {url}: {e}"));
    let found = match Db::connect_current(config.database_url.expose())
        .await
        .map_err(runtime)?
    {
        Current::Ready(db) => return Ok((db, None)),
        Current::Missing => "no database yet",
        Current::Behind => "not up to date (`ringback migrate` brings it)",
    };
    eprintln!(
        "{url}: {found}: the dry run compares the list with an empty database \
         (every good row counts as created)"
    );
    let dir = std::env::temp_dir().join(format!("ringback-dry-run-{}", ulid::Ulid::generate()));
    let failed = |e: String| Failure::runtime(format!("a scratch database for the dry run: {e}"));
    let scratch = Scratch::new(dir).map_err(|e| failed(e.to_string()))?;
    let scratch_url = format!("sqlite://{}", scratch.path().join("dry-run.db").display());
    let made = async {
        let db = Db::connect(&scratch_url).await?;
        db.migrate().await?;
        Ok::<Db, crate::store::StoreError>(db)
    };
    match made.await {
        Ok(db) => Ok((db, Some(scratch))),
        Err(e) => Err(failed(e.to_string())),
    }
}
