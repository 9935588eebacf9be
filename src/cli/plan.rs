//! `ringback plan`: the timeline the planner would follow if nobody answers.

use std::process::ExitCode;

use chrono::{DateTime, Days, NaiveTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::{Failure, Format, Outcome};
use crate::campaign::{Campaign, Kind};
use crate::import::row::parse_time;
use crate::plan::{self, Request, calendar, stamp};

pub fn run(
    campaign: &Campaign,
    at: Option<&str>,
    appointment: Option<&str>,
    timezone: Option<&str>,
    format: Format,
) -> Outcome {
    let zone: Tz = match timezone {
        None => campaign.timezone,
        Some(z) => crate::plan::zone::place(z)
            .map_err(|problem| Failure::user(format!("--timezone: {problem}")))?,
    };
    let now = match at {
        None => Utc::now(),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|e| Failure::user(format!("--at {t:?}: not an RFC 3339 instant: {e}")))?
            .with_timezone(&Utc),
    };
    let mut subject = format!("callback requested {}", stamp(zone, now));
    let request = match &campaign.kind {
        Kind::Reminder(rules) => {
            let appointment = match appointment {
                Some(a) => {
                    parse_time(a, zone).map_err(|e| Failure::user(format!("--appointment: {e}")))?
                }
                // Default: 10:00 local on the day the reminder window has fully opened.
                None => {
                    let day = calendar::local_date(zone, now + rules.start)
                        .checked_add_days(Days::new(1))
                        .unwrap_or_default();
                    calendar::resolve(
                        zone,
                        day.and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default()),
                    )
                }
            };
            subject = format!("appointment {}", stamp(zone, appointment));
            Request::reminder(campaign, zone, appointment)
        }
        Kind::Callback(_) => Request::callback(campaign, zone, now),
    };
    let (slots, end) = plan::timeline(&request, now);
    match format {
        Format::Json => {
            let attempts: Vec<_> = slots
                .iter()
                .map(|s| json!({
                    "at": s.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "local": s.at.with_timezone(&zone).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                    "channel": s.channel,
                    "daypart": s.daypart,
                    "reason": s.reason,
                }))
                .collect();
            let body = json!({"attempts": attempts, "end": end.outcome, "end_reason": end.reason});
            out!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
        }
        Format::Table => {
            out!(
                "campaign {} ({}), patient zone {zone}, {subject}",
                campaign.id,
                campaign.kind.name()
            );
            out!("planning as of {}", stamp(zone, now));
            out!(
                "{:<3} {:<28} {:<21} {:<6} reason",
                "#",
                "local",
                "UTC",
                "chan"
            );
            for (i, s) in slots.iter().enumerate() {
                out!(
                    "{:<3} {:<28} {:<21} {:<6} {}",
                    i + 1,
                    stamp(zone, s.at),
                    s.at.format("%Y-%m-%dT%H:%M:%SZ"),
                    s.channel.name(),
                    s.reason
                );
            }
            out!("end: {} ({})", end.outcome, end.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}
