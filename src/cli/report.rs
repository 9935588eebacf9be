//! `ringback followups`, `ringback imports`, `ringback outcomes` and `ringback stats`.

use std::process::ExitCode;

use super::{Failure, Format, ListFormat, Outcome, catalog, connect, followups_csv};
use crate::config::Config;
use crate::report::Stats;
use crate::store::{Db, Followup, OutcomeQuery, OutcomeRecord, VisitRecord};

pub async fn followups(config: &Config, campaign: Option<&str>, format: ListFormat) -> Outcome {
    let db = connect(config).await?;
    let list = db
        .followups(campaign, Some("open"))
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.close().await;
    match format {
        ListFormat::Csv => out!(raw: "{}", followups_csv(&list)),
        ListFormat::Json => out!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        ),
        ListFormat::Table => print_followups(&list),
    }
    Ok(ExitCode::SUCCESS)
}

/// The worklist as a table for a terminal.
pub fn print_followups(list: &[Followup]) {
    if list.is_empty() {
        out!("no open follow-ups");
        return;
    }
    out!(
        "{:<22} {:<12} {:<22} {:<22} {:<14} detail",
        "reason",
        "campaign",
        "patient",
        "phone",
        "appointment"
    );
    for f in list {
        out!(
            "{:<22} {:<12} {:<22} {:<22} {:<14} {}",
            f.reason,
            f.campaign,
            f.patient.as_deref().unwrap_or("-"),
            f.phone.as_deref().unwrap_or("-"),
            f.appointment.as_deref().unwrap_or("-"),
            f.detail.as_deref().unwrap_or("")
        );
    }
}

/// `ringback outcomes`: what ended in the span, oldest first. Dates and local times are read in
/// the campaign's zone (or the zone every campaign shares, else UTC).
pub async fn outcomes(
    config: &Config,
    campaign: Option<&str>,
    since: &str,
    until: Option<&str>,
    format: ListFormat,
) -> Outcome {
    let zone = zone_of(config, campaign)?;
    let span = crate::outcomes::span(Some(since), until, None, zone, chrono::Utc::now())
        .map_err(|e| Failure::user(format!("--{}: {}", e.field, e.error)))?;
    let db = connect(config).await?;
    let query = OutcomeQuery {
        campaign,
        since: span.since,
        until: span.until,
        after: None,
        limit: None,
    };
    let list = db
        .outcomes(&query)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.close().await;
    match format {
        ListFormat::Csv => out!(raw: "{}", crate::outcomes::to_csv(&list)),
        ListFormat::Json => out!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        ),
        ListFormat::Table => print_outcomes(&list, zone),
    }
    Ok(ExitCode::SUCCESS)
}

/// The zone dates are read in (see [`crate::campaign::Catalog::zone_for`]).
fn zone_of(config: &Config, campaign: Option<&str>) -> Result<chrono_tz::Tz, Failure> {
    catalog(config)?.zone_for(campaign).map_err(Failure::User)
}

/// `ringback visits`: the day's visits in the order they come, each with its reminder.
pub async fn visits(
    config: &Config,
    campaign: Option<&str>,
    on: &str,
    format: ListFormat,
) -> Outcome {
    let zone = zone_of(config, campaign)?;
    let (since, until) = crate::visits::day(on, zone, chrono::Utc::now())
        .map_err(|e| Failure::user(format!("--on: {e}")))?;
    let db = connect(config).await?;
    let list = db
        .visits(campaign, since, until)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.close().await;
    match format {
        ListFormat::Csv => out!(raw: "{}", crate::visits::to_csv(&list)),
        ListFormat::Json => out!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        ),
        ListFormat::Table => print_visits(&list, since.with_timezone(&zone).date_naive(), zone),
    }
    Ok(ExitCode::SUCCESS)
}

/// The visits as a table for a terminal: the time of each, and the next call in `zone`.
fn print_visits(list: &[VisitRecord], day: chrono::NaiveDate, zone: chrono_tz::Tz) {
    if list.is_empty() {
        out!("no visits on {day}");
        return;
    }
    out!("visits on {day} ({})", zone.name());
    out!(
        "{:<6} {:<12} {:<14} {:<22} {:<16} {:<10} {:<22} {:>5} {:>4}  next / followup",
        "time",
        "campaign",
        "appointment",
        "patient",
        "phone",
        "status",
        "reminder",
        "calls",
        "sms"
    );
    for v in list {
        let time = v.appointment_at.get(11..16).unwrap_or("");
        let reminder = match (v.reminder.as_str(), v.outcome.as_deref()) {
            ("ended", Some(outcome)) => outcome,
            (reminder, _) => reminder,
        };
        let next = match (v.next_attempt_at, v.followup.as_deref()) {
            (Some(next), _) => format!(
                "next {} {}",
                v.next_kind(),
                next.with_timezone(&zone).format("%a %H:%M")
            ),
            (None, Some(f)) => format!("follow-up {f}"),
            (None, None) => String::new(),
        };
        let line = format!(
            "{:<6} {:<12} {:<14} {:<22} {:<16} {:<10} {:<22} {:>5} {:>4}  {next}",
            time,
            v.campaign,
            v.appointment_id,
            v.patient,
            v.phone,
            v.status,
            reminder,
            v.calls,
            v.sms
        );
        out!("{}", line.trim_end());
    }
}

/// The outcomes as a table for a terminal, times in `zone`.
fn print_outcomes(list: &[OutcomeRecord], zone: chrono_tz::Tz) {
    if list.is_empty() {
        out!("no outcomes in that time");
        return;
    }
    out!(
        "{:<17} {:<12} {:<14} {:<12} {:<17} {:<22} {:>5} {:>4}  followup",
        format!(
            "ended ({})",
            zone.name().rsplit('/').next().unwrap_or("UTC")
        ),
        "campaign",
        "appointment",
        "patient",
        "visit",
        "outcome",
        "calls",
        "sms"
    );
    for r in list {
        let visit = r
            .appointment_at
            .as_deref()
            .map(|v| v.get(..16).unwrap_or(v).replace('T', " "));
        out!(
            "{:<17} {:<12} {:<14} {:<12} {:<17} {:<22} {:>5} {:>4}  {}",
            r.outcome_at.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
            r.campaign,
            r.appointment_id.as_deref().unwrap_or("-"),
            r.patient_id.as_deref().unwrap_or("-"),
            visit.as_deref().unwrap_or("-"),
            r.outcome,
            r.calls,
            r.sms,
            r.followup.as_deref().unwrap_or("-")
        );
    }
}

/// `ringback imports`: the import log, newest first.
pub async fn imports(config: &Config, campaign: Option<&str>, format: Format) -> Outcome {
    let db = connect(config).await?;
    let list = db
        .imports(campaign, 50)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.close().await;
    if format == Format::Json {
        out!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        out!("no imports yet");
        return Ok(ExitCode::SUCCESS);
    }
    // The list's name and the reason for a refusal vary in length: they come last.
    out!(
        "{:<21} {:<12} {:>8} {:>8} {:>9} {:>9} {:>8} {:>9} {:>8}  list",
        "at",
        "campaign",
        "created",
        "updated",
        "withdrawn",
        "unchanged",
        "too late",
        "opted out",
        "rejected"
    );
    for i in &list {
        let refused = i
            .error
            .as_deref()
            .map(|e| format!(" (refused: {e})"))
            .unwrap_or_default();
        out!(
            "{:<21} {:<12} {:>8} {:>8} {:>9} {:>9} {:>8} {:>9} {:>8}  {}{refused}",
            i.at.format("%Y-%m-%d %H:%M UTC"),
            i.campaign,
            i.created,
            i.updated,
            i.withdrawn,
            i.unchanged,
            i.skipped_too_late,
            i.on_ledger,
            i.rejected,
            i.source,
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn stats(config: &Config, campaign: Option<&str>, format: Format) -> Outcome {
    let catalog = catalog(config)?;
    let ids: Vec<String> = match campaign {
        Some(id) => vec![catalog.require(id).map_err(Failure::User)?.id.clone()],
        None => catalog.campaigns.keys().cloned().collect(),
    };
    let db = connect(config).await?;
    let all = collect(&db, &ids).await?;
    db.close().await;
    match format {
        Format::Json if all.len() == 1 => out!(
            "{}",
            serde_json::to_string_pretty(&all[0]).unwrap_or_default()
        ),
        Format::Json => out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"campaigns": all}))
                .unwrap_or_default()
        ),
        Format::Table => all.iter().for_each(print_stats),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn collect(db: &Db, ids: &[String]) -> Result<Vec<Stats>, Failure> {
    let mut all = Vec::new();
    for id in ids {
        let facts = db
            .kpi_facts(id)
            .await
            .map_err(|e| Failure::runtime(e.to_string()))?;
        all.push(crate::report::stats(id, &facts));
    }
    Ok(all)
}

pub fn print_stats(s: &Stats) {
    out!(
        "campaign {}: {} outreach ({} active, {} finished)",
        s.campaign,
        s.outreach.total,
        s.outreach.active,
        s.outreach.finished
    );
    let outcomes: Vec<String> = s
        .outcomes
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(o, n)| format!("{o} {n}"))
        .collect();
    out!(
        "  outcomes: {}",
        if outcomes.is_empty() {
            "none yet".into()
        } else {
            outcomes.join(", ")
        }
    );
    out!(
        "  calls: {} placed, {} human, {} machine, {} no answer, {} busy, {} failed; SMS {} sent",
        s.calls.placed,
        s.calls.human,
        s.calls.machine,
        s.calls.no_answer,
        s.calls.busy,
        s.calls.failed,
        s.sms.sent
    );
    out!(
        "  contact rate {:.0}%, confirmation rate {:.0}%, {:.2} attempts per outreach, {} opt-outs",
        s.contact_rate * 100.0,
        s.confirmation_rate * 100.0,
        s.attempts_per_outreach,
        s.opt_outs
    );
}
