//! `ringback demo`: the whole pipeline on the embedded sample: a temporary SQLite file, the
//! simulator provider, the sample list imported into a demo campaign, dialled by the real worker,
//! then the KPIs and the follow-up worklist.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;

use super::report::{collect, print_followups, print_stats};
use super::{Failure, Outcome, Scratch};
use crate::app::App;
use crate::campaign::{Campaign, Catalog, load_dir};
use crate::import::{self, Format};
use crate::plan::calendar;
use crate::provider::Provider;
use crate::provider::simulator::{Rates, Simulator};
use crate::runtime;
use crate::store::Db;

const REMINDERS: &str = include_str!("../../campaigns/reminders.toml");
const SAMPLE: &[u8] = include_bytes!("../../campaigns/samples/appointments.csv");
/// The demo stops waiting after this long, whatever is still in flight.
const LIMIT: Duration = Duration::from_secs(75);

/// Zones to pick the demo's patients from: one where it is daytime now, so the calls can be
/// placed within the legal hours that no campaign can bend.
const ZONES: [&str; 12] = [
    "Europe/Madrid",
    "Europe/London",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Pacific/Auckland",
    "Australia/Sydney",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Dubai",
];

pub async fn run() -> Outcome {
    let dir = std::env::temp_dir().join(format!("ringback-demo-{}", ulid::Ulid::generate()));
    let scratch = Scratch::new(dir.clone())
        .map_err(|e| Failure::runtime(format!("{}: {e}", dir.display())))?;
    demo(scratch.path()).await
}

fn daytime_zone() -> Tz {
    let now = Utc::now();
    ZONES
        .iter()
        .filter_map(|z| z.parse::<Tz>().ok())
        .find(|z| (10 * 60..18 * 60).contains(&calendar::local_minute(*z, now)))
        .unwrap_or(chrono_tz::Europe::Madrid)
}

/// The demo campaign: the reminder messages of the sample, a window that is open every day, and
/// pacing fast enough to finish in about a minute. Quiet hours and caps hold as always.
fn demo_campaign(zone: Tz) -> String {
    let messages = &REMINDERS[REMINDERS.find("[messages.ca]").unwrap_or(0)..];
    format!(
        "name = \"Demo reminders\"\nclinic = \"CAP Gràcia\"\nkind = \"reminder\"\ntimezone = \"{}\"\ncountry = \"ES\"\n\
         caller_id = \"+34930000000\"\nclinic_phone = \"+34930000001\"\ndefault_language = \"ca\"\n\
         [window]\nmon-sun = \"08:00-21:00\"\n[reminder]\nstart = \"48h\"\nstop = \"10m\"\n\
         [retry]\nmax_calls = 3\ngaps = [\"5s\", \"10s\"]\nrotate_dayparts = true\nmax_calls_per_day = 1\nmax_calls_per_week = 3\n\
         [pacing]\ncalls_per_second = 3.0\nburst = 3\nmax_concurrent_calls = 10\n\
         [sms]\nafter_calls = 1\n\
         [import.columns]\nappointment_id = \"Appt ID\"\npatient_id = \"Patient ID\"\nfirst_name = \"First Name\"\n\
         last_name = \"Last Name\"\nphone = \"Patient Mobile\"\nstarts_at = \"Appointment Start\"\nlanguage = \"Language\"\n\
         provider = \"Provider\"\nlocation = \"Location\"\nstatus = \"Status\"\n\n{messages}",
        zone.name()
    )
}

async fn demo(dir: &std::path::Path) -> Outcome {
    let zone = daytime_zone();
    let (db, catalog) = open(dir, zone).await?;
    let campaign = catalog.require("demo").map_err(Failure::runtime)?.clone();
    import_sample(&db, &campaign).await?;

    let (simulator, events) = Simulator::new(7, Rates::default(), Duration::from_secs(2));
    let app = Arc::new(App::new(
        db.clone(),
        catalog,
        Provider::Simulator(simulator),
        "http://127.0.0.1:8080",
    ));
    tokio::spawn(runtime::pump_simulator(app.clone(), events));
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(crate::jobs::run(app.clone(), 8, stop_rx));
    out!("\ndialling (3 calls/s, at most 10 at once):");
    let dialling = watch_calls(&db, &campaign).await;
    let _ = stop_tx.send(true);
    let _ = worker.await;
    dialling?;
    report(&db, &campaign).await?;
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The demo's campaign (in `zone`) and its temporary database, in `dir`.
async fn open(dir: &std::path::Path, zone: Tz) -> Result<(Db, Catalog), Failure> {
    let io = |e: std::io::Error| Failure::runtime(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir.join("campaigns")).map_err(io)?;
    // Only the demo campaign: every loaded campaign shares one provider account and its pace.
    std::fs::write(dir.join("campaigns/demo.toml"), demo_campaign(zone)).map_err(io)?;
    let catalog = load_dir(&dir.join("campaigns")).map_err(io)?;
    if let Some(e) = catalog.errors.first() {
        return Err(Failure::runtime(format!("demo campaign: {e}")));
    }
    let url = format!("sqlite://{}", dir.join("demo.db").display());
    let db = Db::connect(&url)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.migrate()
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    out!("ringback demo: temporary database {url}, simulated telephone network");
    out!(
        "patients live in {} (now {} there), inside the legal calling hours 08:00-21:00",
        zone,
        Utc::now().with_timezone(&zone).format("%a %H:%M")
    );
    Ok((db, catalog))
}

/// Import the sample list, every appointment moved to tomorrow-ish so that its reminder is due
/// now.
async fn import_sample(db: &Db, campaign: &Campaign) -> Result<(), Failure> {
    let now = Utc::now();
    let input = import::Input {
        source: "demo",
        bytes: SAMPLE,
        format: Format::Csv,
        now,
        dry_run: false,
    };
    let summary = import::run(
        db,
        campaign,
        input,
        |_| {},
        |row| {
            row.timezone = None;
            row.starts_at = now + TimeDelta::hours(26) + TimeDelta::minutes(row.line as i64 * 7);
        },
    )
    .await
    .map_err(|e| Failure::runtime(e.to_string()))?;
    out!(
        "\nimported campaigns/samples/appointments.csv: {}",
        serde_json::to_string(&summary).unwrap_or_default()
    );
    for r in &summary.rejected {
        out!("  rejected line {}: {}: {}", r.line, r.field, r.error);
    }
    Ok(())
}

/// Show the calls going out every two seconds until nothing is due or live for two looks in a
/// row (or [`LIMIT`] passes).
async fn watch_calls(db: &Db, campaign: &Campaign) -> Result<(), Failure> {
    let started = Instant::now();
    let mut quiet_for = 0;
    while started.elapsed() < LIMIT {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let due = db
            .due_or_live(Utc::now())
            .await
            .map_err(|e| Failure::runtime(e.to_string()))?;
        let stats = collect(db, std::slice::from_ref(&campaign.id)).await?;
        let s = &stats[0];
        out!(
            "  {:>3}s  calls placed {:>3}, finished outreach {:>3}/{}, due or live now {:>3}",
            started.elapsed().as_secs(),
            s.calls.placed,
            s.outreach.finished,
            s.outreach.total,
            due
        );
        quiet_for = if due == 0 { quiet_for + 1 } else { 0 };
        if quiet_for >= 2 {
            break;
        }
    }
    Ok(())
}

/// The KPIs, the retries left for later days, and the follow-up worklist.
async fn report(db: &Db, campaign: &Campaign) -> Result<(), Failure> {
    out!("\nKPIs:");
    for s in collect(db, std::slice::from_ref(&campaign.id)).await? {
        print_stats(&s);
    }
    let later = db
        .pending_attempts()
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    out!("  {later} retries planned for later days (at most 1 call a day per patient)");
    out!("\nfollow-up worklist:");
    let list = db
        .followups(None, Some("open"))
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    print_followups(&list);
    Ok(())
}
