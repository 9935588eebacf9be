//! The command line: parse, call into the library, map failures to exit codes
//! (0 success, 1 user error, 2 runtime failure).

/// `println!` for a command's output; `out!(raw: …)` for `print!`. See [`write_out`].
macro_rules! out {
    (raw: $($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*), false)
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*), true)
    };
}

mod campaigns;
mod demo;
mod import;
mod optout;
mod plan;
mod purge;
mod report;
mod serve;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::campaign::{Catalog, load_dir};
use crate::config::Config;
use crate::store::Db;

#[derive(Debug, Parser)]
#[command(
    name = "ringback",
    version,
    about = "Outbound reminder and callback dialer for clinics"
)]
pub struct Cli {
    /// Configuration file (default: ./ringback.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply database migrations.
    Migrate,
    /// Campaign files.
    Campaigns {
        #[command(subcommand)]
        command: CampaignsCommand,
    },
    /// Import an appointment list (.csv or .json; - reads stdin) and plan each first call.
    Import {
        /// The reminder campaign the list is for (the name of its file in campaigns_dir).
        #[arg(long)]
        campaign: String,
        /// Validate and report, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The list: .csv or .json (other names are sniffed); - reads stdin.
        file: PathBuf,
    },
    /// Print the attempts the planner would make if nobody answers.
    Plan {
        /// The campaign to plan for (the name of its file in campaigns_dir).
        #[arg(long)]
        campaign: String,
        /// Plan as of this instant (RFC 3339; default: now).
        #[arg(long)]
        at: Option<String>,
        /// The appointment (RFC 3339, or YYYY-MM-DD HH:MM in the zone; reminders only).
        #[arg(long)]
        appointment: Option<String>,
        /// The patient's IANA time zone (default: the campaign's).
        #[arg(long)]
        timezone: Option<String>,
        /// Output: a table for people, JSON for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The whole pipeline on the embedded sample: a temporary database, the simulator, the sample list.
    Demo,
    /// HTTP API, webhooks and queue worker in one process.
    Serve {
        /// Attempts dialled at once by this process.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Queue worker only (several may share one PostgreSQL).
    Worker {
        /// Attempts dialled at once by this process.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// The open follow-up worklist.
    Followups {
        /// Only this campaign's follow-ups (default: every campaign's).
        #[arg(long)]
        campaign: Option<String>,
        /// Output: a table for people, CSV for a spreadsheet, JSON for scripts.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// What became of each outreach that ended: confirmed, cancel requested, unreachable …,
    /// keyed by the clinic's own appointment and patient ids (for the EHR or a spreadsheet).
    Outcomes {
        /// Only this campaign's outcomes (default: every campaign's).
        #[arg(long)]
        campaign: Option<String>,
        /// From when: RFC 3339, a date (2026-11-24) or local time (2026-11-24 08:00) in the
        /// campaign's zone, today, yesterday, or how long ago (24h, 7d).
        #[arg(long, default_value = crate::outcomes::DEFAULT_SINCE)]
        since: String,
        /// Up to when (not included), written as --since; default: now.
        #[arg(long)]
        until: Option<String>,
        /// Output: a table for people, CSV for a spreadsheet or the EHR, JSON for scripts.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// A day's visits and where each one's reminder stands: confirmed, still calling (and when
    /// next), cancel requested, not reached … (what the front desk checks the evening before).
    Visits {
        /// Only this campaign's visits (default: every campaign's).
        #[arg(long)]
        campaign: Option<String>,
        /// The day, in the campaign's zone: 2026-11-26, today, tomorrow or yesterday.
        #[arg(long, default_value = crate::visits::DEFAULT_DAY)]
        on: String,
        /// Output: a table for people, CSV for a spreadsheet, JSON for scripts.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// The import log: each list imported or refused, newest first.
    Imports {
        /// Only this campaign's imports (default: every campaign's).
        #[arg(long)]
        campaign: Option<String>,
        /// Output: a table for people, JSON for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The opt-out ledger: numbers never called or texted again, by any campaign.
    Optout {
        #[command(subcommand)]
        command: OptoutCommand,
    },
    /// Delete what ended long ago: outreach, calls and messages, past appointments, patients no
    /// longer booked. Never the opt-out ledger, open follow-ups or anything still to come.
    Purge {
        /// Keep this many days (default: retention_days of the configuration; at least 14).
        #[arg(long)]
        days: Option<u32>,
        /// Count what would go, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// KPIs per campaign.
    Stats {
        /// Only this campaign (default: every campaign).
        #[arg(long)]
        campaign: Option<String>,
        /// Output: a table for people, JSON for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum OptoutCommand {
    /// Add a do-not-call list (CSV: a `phone` column, or one number per line).
    Import {
        /// The list (CSV); - reads stdin.
        file: PathBuf,
        /// Why these numbers are on the ledger.
        #[arg(long, default_value = "list")]
        source: String,
        /// Country for numbers written without +CC (default: the campaigns' own, when they share one).
        #[arg(long)]
        country: Option<String>,
    },
    /// Print the ledger as CSV.
    List,
    /// Take a number off the ledger at the patient's own request (recorded with your name).
    Remove {
        /// The number, in any spelling of the campaigns' country, or with +CC.
        phone: String,
        /// Who takes it off (your name), kept with the removal.
        #[arg(long)]
        by: String,
        /// Why, e.g. "asked at the desk on 25/11; pressed 9 by mistake".
        #[arg(long)]
        note: Option<String>,
        /// Country for a number written without +CC (default: the campaigns' own, when they share one).
        #[arg(long)]
        country: Option<String>,
    },
    /// Print every number taken off the ledger, by whom and when, as CSV.
    Removals,
}

#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    /// Validate every campaign file of DIR (default: the configured campaigns_dir).
    Check { dir: Option<PathBuf> },
    /// Stop a campaign's calls and SMS now, in every worker, until it is resumed.
    Pause {
        /// The campaign (its file name without .toml).
        campaign: String,
        /// Who pauses it (your name), kept with the pause.
        #[arg(long)]
        by: String,
        /// Why, e.g. "phone lines down".
        #[arg(long)]
        note: Option<String>,
    },
    /// Let a paused campaign's calls go out again, the overdue ones first.
    Resume {
        /// The campaign.
        campaign: String,
        /// Who resumes it (your name).
        #[arg(long)]
        by: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A failure, by whose fault: the user's input (exit 1) or the world (exit 2).
#[derive(Debug)]
pub enum Failure {
    User(String),
    Runtime(String),
}

impl Failure {
    pub fn user(message: impl Into<String>) -> Failure {
        Failure::User(message.into())
    }

    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure::Runtime(message.into())
    }
}

pub type Outcome = Result<ExitCode, Failure>;

pub async fn run(cli: Cli) -> ExitCode {
    init_tracing();
    let result = match Config::load(cli.config.as_deref(), |k| std::env::var(k).ok()) {
        Err(e) => Err(Failure::user(format!("configuration: {e}"))),
        Ok(config) => dispatch(cli.command, config).await,
    };
    match result {
        Ok(code) => code,
        Err(Failure::User(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command, config: Config) -> Outcome {
    match command {
        Command::Migrate => {
            let db = connect(&config).await?;
            db.close().await;
            out!("migrations applied ({})", config.database_url.redacted());
            Ok(ExitCode::SUCCESS)
        }
        Command::Campaigns {
            command: CampaignsCommand::Check { dir },
        } => campaigns::check(&dir.unwrap_or(config.campaigns_dir)),
        Command::Campaigns {
            command: CampaignsCommand::Pause { campaign, by, note },
        } => campaigns::pause(&config, &campaign, &by, note.as_deref()).await,
        Command::Campaigns {
            command: CampaignsCommand::Resume { campaign, by },
        } => campaigns::resume(&config, &campaign, &by).await,
        Command::Import {
            campaign,
            dry_run,
            file,
        } => import::run(&config, &campaign, &file, dry_run).await,
        Command::Plan {
            campaign,
            at,
            appointment,
            timezone,
            format,
        } => {
            let catalog = catalog(&config)?;
            let campaign = catalog.require(&campaign).map_err(Failure::User)?;
            plan::run(
                campaign,
                at.as_deref(),
                appointment.as_deref(),
                timezone.as_deref(),
                format,
            )
        }
        Command::Demo => demo::run().await,
        Command::Serve { concurrency } => serve::run(&config, true, concurrency.max(1)).await,
        Command::Worker { concurrency } => serve::run(&config, false, concurrency.max(1)).await,
        Command::Followups { campaign, format } => {
            report::followups(&config, campaign.as_deref(), format).await
        }
        Command::Optout {
            command:
                OptoutCommand::Import {
                    file,
                    source,
                    country,
                },
        } => optout::import(&config, &file, &source, country.as_deref()).await,
        Command::Optout {
            command: OptoutCommand::List,
        } => optout::list(&config).await,
        Command::Optout {
            command:
                OptoutCommand::Remove {
                    phone,
                    by,
                    note,
                    country,
                },
        } => optout::remove(&config, &phone, &by, note.as_deref(), country.as_deref()).await,
        Command::Optout {
            command: OptoutCommand::Removals,
        } => optout::removals(&config).await,
        Command::Imports { campaign, format } => {
            report::imports(&config, campaign.as_deref(), format).await
        }
        Command::Visits {
            campaign,
            on,
            format,
        } => report::visits(&config, campaign.as_deref(), &on, format).await,
        Command::Outcomes {
            campaign,
            since,
            until,
            format,
        } => {
            report::outcomes(
                &config,
                campaign.as_deref(),
                &since,
                until.as_deref(),
                format,
            )
            .await
        }
        Command::Purge { days, dry_run } => purge::run(&config, days, dry_run).await,
        Command::Stats { campaign, format } => {
            report::stats(&config, campaign.as_deref(), format).await
        }
    }
}

/// The configured campaigns; a directory that cannot be read is the user's to fix.
pub(crate) fn catalog(config: &Config) -> Result<Catalog, Failure> {
    load_dir(&config.campaigns_dir).map_err(|e| {
        Failure::user(format!(
            "campaigns directory {}: {e}",
            config.campaigns_dir.display()
        ))
    })
}

/// The bytes of a list named on the command line, `-` being stdin; and the name to report it by.
pub(crate) fn read_input(file: &Path) -> Result<(String, Vec<u8>), Failure> {
    let name = file.display().to_string();
    let bytes = if name == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::user(format!("stdin: {e}")))?;
        buf
    } else {
        std::fs::read(file).map_err(|e| Failure::user(format!("{name}: {e}")))?
    };
    Ok((name, bytes))
}

/// Connect and migrate: every command that touches the database starts here.
pub(crate) async fn connect(config: &Config) -> Result<Db, Failure> {
    let url = config.database_url.redacted();
    let db = Db::connect(config.database_url.expose())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::BadUrl => Failure::user(format!("database_url {url}: {e}")),
            e => Failure::runtime(format!("database {url}: {e}")),
        })?;
    db.migrate()
        .await
        .map_err(|e| Failure::runtime(format!("database {url}: {e}")))?;
    Ok(db)
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RINGBACK_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Colours on a terminal only: journald or a log file would keep the escape codes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The worklist as CSV, for a spreadsheet.
pub fn followups_csv(list: &[crate::store::Followup]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "id",
        "campaign",
        "created_at",
        "reason",
        "patient",
        "phone",
        "appointment",
        "detail",
        "status",
        "resolved_by",
    ]);
    for f in list {
        let _ = w.write_record([
            f.id.as_str(),
            &f.campaign,
            &f.created_at.to_rfc3339(),
            &f.reason,
            f.patient.as_deref().unwrap_or_default(),
            f.phone.as_deref().unwrap_or_default(),
            f.appointment.as_deref().unwrap_or_default(),
            f.detail.as_deref().unwrap_or_default(),
            &f.status,
            f.resolved_by.as_deref().unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Scratch directories of the running command (the demo's database), removed if its output
/// ends it early: see [`write_out`].
static SCRATCH: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A scratch directory: made now, and removed when dropped, or when the command's output ends
/// it early.
struct Scratch(PathBuf);

impl Scratch {
    fn new(dir: PathBuf) -> std::io::Result<Scratch> {
        std::fs::create_dir_all(&dir)?;
        scratch_dirs().push(dir.clone());
        Ok(Scratch(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        scratch_dirs().retain(|d| *d != self.0);
    }
}

fn scratch_dirs() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    SCRATCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write a command's output. When whoever read it has gone (`ringback imports | head -3`), the
/// command ends there, quietly and with the status of a process that SIGPIPE stopped (141), as
/// Unix tools do; `println!` would panic. Whatever it had done (an import) is done and stays;
/// its scratch directories go. Output that cannot be written for another reason (a full disk)
/// is a runtime failure.
pub(crate) fn write_out(text: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(text).and_then(|()| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    let code = match written {
        Ok(()) => return,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 141,
        Err(e) => {
            eprintln!("ringback: the output could not be written: {e}");
            2
        }
    };
    for dir in scratch_dirs().iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(code);
}
