//! KPIs (SPEC §7): pure arithmetic over what the store reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

use crate::outreach::Outcome;
use crate::store::KpiFacts;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub campaign: String,
    pub outreach: Counts,
    pub outcomes: BTreeMap<&'static str, u64>,
    pub contact_rate: f64,
    pub confirmation_rate: f64,
    pub attempts_per_outreach: f64,
    pub calls: Calls,
    pub sms: Sms,
    pub time_to_first_attempt_s: Spread,
    pub time_to_contact_s: Spread,
    pub answer_rate_by_local_hour: BTreeMap<String, f64>,
    pub opt_outs: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub total: u64,
    pub active: u64,
    pub finished: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Calls {
    pub placed: u64,
    pub human: u64,
    pub machine: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sms {
    pub sent: u64,
    pub delivered: u64,
    pub replies: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spread {
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

/// How a placed call went, as the KPIs and `/metrics` count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// A person answered.
    Human,
    /// An answering machine (or a fax) answered.
    Machine,
    NoAnswer,
    Busy,
    /// The provider could not place it, or it was cancelled.
    Failed,
}

impl CallResult {
    pub const ALL: [CallResult; 5] = [
        CallResult::Human,
        CallResult::Machine,
        CallResult::NoAnswer,
        CallResult::Busy,
        CallResult::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CallResult::Human => "human",
            CallResult::Machine => "machine",
            CallResult::NoAnswer => "no_answer",
            CallResult::Busy => "busy",
            CallResult::Failed => "failed",
        }
    }

    /// From who answered (`"human"`, `"machine"` or none) and the furthest call status; none
    /// while the call is still going.
    pub fn of(answerer: Option<&str>, call_status: Option<&str>) -> Option<CallResult> {
        match (answerer, call_status) {
            (Some("machine"), _) => Some(CallResult::Machine),
            (Some(_), _) => Some(CallResult::Human),
            (None, Some("no-answer")) => Some(CallResult::NoAnswer),
            (None, Some("busy")) => Some(CallResult::Busy),
            (None, Some("failed" | "canceled")) => Some(CallResult::Failed),
            _ => None,
        }
    }
}

/// Outcomes where a person answered or replied.
const CONTACTED: [Outcome; 6] = [
    Outcome::Confirmed,
    Outcome::CancelRequested,
    Outcome::RescheduleRequested,
    Outcome::Connected,
    Outcome::Reached,
    Outcome::OptedOut,
];

pub fn stats(campaign: &str, facts: &KpiFacts) -> Stats {
    let outreach = OutreachTally::of(facts);
    let placed = AttemptTally::of(facts);
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let first_attempt = facts
        .waits
        .iter()
        .filter_map(|w| w.0)
        .map(seconds)
        .collect();
    let contact = facts
        .waits
        .iter()
        .filter_map(|w| w.1)
        .map(seconds)
        .collect();
    let counts = outreach.counts;
    Stats {
        campaign: campaign.to_string(),
        contact_rate: ratio(outreach.contacted, counts.finished),
        confirmation_rate: ratio(outreach.confirmed, outreach.finished_reminders),
        attempts_per_outreach: if counts.total == 0 {
            0.0
        } else {
            round(placed.attempts as f64 / counts.total as f64)
        },
        outreach: counts,
        outcomes: outreach.outcomes,
        calls: placed.calls,
        sms: Sms {
            replies: facts.replies.max(0) as u64,
            ..placed.sms
        },
        time_to_first_attempt_s: spread(first_attempt),
        time_to_contact_s: spread(contact),
        answer_rate_by_local_hour: placed
            .by_hour
            .into_iter()
            .map(|(h, (n, a))| (h, ratio(a, n)))
            .collect(),
        opt_outs: facts.opt_outs.max(0) as u64,
    }
}

/// The campaign's outreach counted by state and outcome.
#[derive(Default)]
struct OutreachTally {
    counts: Counts,
    outcomes: BTreeMap<&'static str, u64>,
    /// Finished with the patient reached.
    contacted: u64,
    finished_reminders: u64,
    confirmed: u64,
}

impl OutreachTally {
    fn of(facts: &KpiFacts) -> OutreachTally {
        let mut tally = OutreachTally {
            outcomes: Outcome::ALL.iter().map(|o| (o.name(), 0)).collect(),
            ..OutreachTally::default()
        };
        for (kind, state, outcome, n) in &facts.outreach {
            let n = (*n).max(0) as u64;
            tally.counts.total += n;
            if state == "active" {
                tally.counts.active += n;
                continue;
            }
            tally.counts.finished += n;
            let outcome = outcome.as_deref().and_then(Outcome::parse);
            if let Some(o) = outcome {
                *tally.outcomes.entry(o.name()).or_default() += n;
                if CONTACTED.contains(&o) {
                    tally.contacted += n;
                }
            }
            if kind == "reminder" {
                tally.finished_reminders += n;
                if outcome == Some(Outcome::Confirmed) {
                    tally.confirmed += n;
                }
            }
        }
        tally
    }
}

/// The campaign's calls and SMS counted by result, and its calls by the patient's local hour.
#[derive(Default)]
struct AttemptTally {
    attempts: u64,
    calls: Calls,
    sms: Sms,
    /// Local hour ("09") → (calls placed, answered by a person).
    by_hour: BTreeMap<String, (u64, u64)>,
}

impl AttemptTally {
    fn of(facts: &KpiFacts) -> AttemptTally {
        let mut tally = AttemptTally::default();
        for (channel, call_status, answerer, timezone, quarter, n) in &facts.attempts {
            let n = (*n).max(0) as u64;
            tally.attempts += n;
            if channel == "sms" {
                tally.sms.sent += n;
                if call_status.as_deref() == Some("delivered") {
                    tally.sms.delivered += n;
                }
                continue;
            }
            let calls = &mut tally.calls;
            calls.placed += n;
            let result = CallResult::of(answerer.as_deref(), call_status.as_deref());
            match result {
                Some(CallResult::Human) => calls.human += n,
                Some(CallResult::Machine) => calls.machine += n,
                Some(CallResult::NoAnswer) => calls.no_answer += n,
                Some(CallResult::Busy) => calls.busy += n,
                Some(CallResult::Failed) => calls.failed += n,
                None => {}
            }
            if let (Some(quarter), Ok(zone)) = (quarter, timezone.parse::<Tz>()) {
                let hour = DateTime::from_timestamp_millis(quarter * 900_000)
                    .unwrap_or_default()
                    .with_timezone(&zone)
                    .hour();
                let slot = tally.by_hour.entry(format!("{hour:02}")).or_default();
                slot.0 += n;
                if result == Some(CallResult::Human) {
                    slot.1 += n;
                }
            }
        }
        tally
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round(part as f64 / whole as f64)
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// p50, p90 (nearest rank) and max.
fn spread(mut values: Vec<f64>) -> Spread {
    if values.is_empty() {
        return Spread::default();
    }
    values.sort_by(f64::total_cmp);
    let rank =
        |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    Spread {
        p50: round(rank(0.5)),
        p90: round(rank(0.9)),
        max: round(values[values.len() - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_spreads_follow_the_definitions() {
        let facts = KpiFacts {
            outreach: vec![
                (
                    "reminder".into(),
                    "finished".into(),
                    Some("confirmed".into()),
                    1,
                ),
                (
                    "reminder".into(),
                    "finished".into(),
                    Some("voicemail_left".into()),
                    1,
                ),
                (
                    "reminder".into(),
                    "finished".into(),
                    Some("unreachable".into()),
                    1,
                ),
                ("reminder".into(), "active".into(), None, 1),
            ],
            waits: vec![
                (Some(10_000), Some(20_000)),
                (Some(30_000), None),
                (Some(50_000), None),
            ],
            attempts: vec![
                (
                    "voice".into(),
                    Some("completed".into()),
                    Some("human".into()),
                    "UTC".into(),
                    Some(0),
                    1,
                ),
                (
                    "voice".into(),
                    Some("completed".into()),
                    Some("machine".into()),
                    "UTC".into(),
                    Some(0),
                    1,
                ),
                (
                    "voice".into(),
                    Some("no-answer".into()),
                    None,
                    "UTC".into(),
                    Some(4),
                    1,
                ),
            ],
            opt_outs: 0,
            replies: 0,
        };
        let s = stats("r", &facts);
        assert_eq!(
            s.outreach,
            Counts {
                total: 4,
                active: 1,
                finished: 3
            }
        );
        assert_eq!(s.contact_rate, 0.333);
        assert_eq!(s.confirmation_rate, 0.333);
        assert_eq!(
            s.calls,
            Calls {
                placed: 3,
                human: 1,
                machine: 1,
                no_answer: 1,
                busy: 0,
                failed: 0
            }
        );
        assert_eq!(
            s.time_to_first_attempt_s,
            Spread {
                p50: 30.0,
                p90: 50.0,
                max: 50.0
            }
        );
        assert_eq!(s.answer_rate_by_local_hour["00"], 0.5);
        assert_eq!(s.answer_rate_by_local_hour["01"], 0.0);
        assert_eq!(s.attempts_per_outreach, 0.75);
    }
}
