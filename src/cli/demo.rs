//! `ringback demo`: the embedded sample campaigns and appointment list, imported into a
//! temporary SQLite file and planned.

use std::process::ExitCode;

use chrono::{Days, Utc};
use chrono_tz::Tz;

use super::{Failure, Outcome};
use crate::campaign::load_dir;
use crate::import::{self, Format};
use crate::phone::mask;
use crate::plan::{self, Request, calendar, stamp};
use crate::store::Db;

const REMINDERS: &str = include_str!("../../campaigns/reminders.toml");
const CALLBACKS: &str = include_str!("../../campaigns/callbacks.toml");
const SAMPLE: &[u8] = include_bytes!("../../campaigns/samples/appointments.csv");

pub async fn run() -> Outcome {
    let dir = std::env::temp_dir().join(format!("ringback-demo-{}", ulid::Ulid::generate()));
    let result = demo(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(dir: &std::path::Path) -> Outcome {
    let io = |e: std::io::Error| Failure::runtime(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir.join("campaigns")).map_err(io)?;
    std::fs::write(dir.join("campaigns/reminders.toml"), REMINDERS).map_err(io)?;
    std::fs::write(dir.join("campaigns/callbacks.toml"), CALLBACKS).map_err(io)?;
    let catalog = load_dir(&dir.join("campaigns")).map_err(io)?;
    let campaign = catalog.require("reminders").map_err(Failure::runtime)?;

    let url = format!("sqlite://{}", dir.join("demo.db").display());
    let db = Db::connect(&url)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.migrate()
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    println!("ringback demo: temporary database {url}");

    // The sample's appointments move forward by whole weeks, so each keeps its weekday and hour.
    let now = Utc::now();
    let first = calendar::local_date(campaign.timezone, now)
        .checked_add_days(Days::new(2))
        .unwrap_or_default();
    let earliest = sample_earliest(campaign.timezone);
    let weeks = ((first - earliest).num_days().max(0) + 6) / 7;
    let shift = chrono::TimeDelta::weeks(weeks);
    let input = import::Input {
        bytes: SAMPLE,
        format: Format::Csv,
        now,
        dry_run: false,
    };
    let summary = import::run(
        &db,
        campaign,
        input,
        |_, _| {},
        |row| row.starts_at += shift,
    )
    .await
    .map_err(|e| Failure::runtime(e.to_string()))?;
    println!("\nimported campaigns/samples/appointments.csv into campaign 'reminders':");
    println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    for r in &summary.rejected {
        println!("  rejected line {}: {}: {}", r.line, r.field, r.error);
    }

    let planned = db
        .planned_attempts(&campaign.id)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    println!(
        "\nfirst calls planned ({}), patient-local times:",
        planned.len()
    );
    for p in &planned {
        let zone: Tz = p.timezone.parse().unwrap_or(campaign.timezone);
        println!(
            "  {:<7} {:<6} visit {}  call {}",
            p.appointment,
            mask(&p.phone),
            stamp(zone, p.starts_at),
            stamp(zone, p.due_at)
        );
    }
    if let Some(p) = planned.first() {
        let zone: Tz = p.timezone.parse().unwrap_or(campaign.timezone);
        println!(
            "\nif {} never answers, the planner's whole timeline:",
            p.appointment
        );
        let (slots, end) = plan::timeline(&Request::reminder(campaign, zone, p.starts_at), now);
        for s in slots {
            println!(
                "  {} {:<5} {}",
                stamp(zone, s.at),
                s.channel.name(),
                s.reason
            );
        }
        println!("  end: {} ({})", end.outcome, end.reason);
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The earliest appointment date in the sample list.
fn sample_earliest(zone: Tz) -> chrono::NaiveDate {
    String::from_utf8_lossy(SAMPLE)
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(5))
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d.get(..10)?, "%Y-%m-%d").ok())
        .min()
        .unwrap_or_else(|| calendar::local_date(zone, Utc::now()))
}
