//! `/metrics` in Prometheus' text format: what the store counts, and the webhooks this process
//! refused. Pure: the caller reads the facts and the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::outreach::Outcome;
use crate::outreach::machine::FollowupReason;
use crate::report::CallResult;
use crate::store::MetricFacts;

/// Webhooks refused since the process started. A run of signature refusals usually means
/// `public_url` is not the address the provider posts to.
#[derive(Debug, Default)]
pub struct Refusals {
    signature: AtomicU64,
    malformed: AtomicU64,
}

impl Refusals {
    /// A webhook answered 403: no signature, or not one of ours.
    pub fn signature(&self) {
        self.signature.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook answered 400: not a form, or missing what it needs.
    pub fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }
}

const CHANNELS: [&str; 2] = ["voice", "sms"];

/// How the campaign files were last read.
#[derive(Debug, Clone)]
pub struct CampaignFiles {
    /// Files with errors (their campaigns run as last loaded, or not at all).
    pub with_errors: usize,
    pub loaded_at: DateTime<Utc>,
    /// Campaigns paused by staff.
    pub paused: Vec<String>,
}

/// The exposition of `facts` as of `now`. Every loaded campaign has each of its series, zero
/// included, so that an alert on a rate sees the first event; campaigns only the database still
/// knows are shown too.
pub fn render(
    campaigns: &[&str],
    files: CampaignFiles,
    facts: &MetricFacts,
    refusals: &Refusals,
    now: DateTime<Utc>,
) -> String {
    let mut ids: BTreeSet<&str> = campaigns.iter().copied().collect();
    ids.extend(facts.outreach.iter().map(|r| r.0.as_str()));
    ids.extend(facts.followups.iter().map(|r| r.0.as_str()));
    // Calls of a campaign whose file and outreach are gone are still counted (purges keep them).
    ids.extend(facts.placed.iter().map(|r| r.0.as_str()));

    let mut out = Exposition::default();
    out.family(
        "ringback_live_calls",
        "gauge",
        "Voice calls being dialled or live now, every campaign (one provider account).",
        [(vec![], facts.live_calls as f64)],
    );
    outreach(&mut out, &ids, facts);
    placed(&mut out, &ids, facts);
    planned(&mut out, &ids, facts, now);
    staff(&mut out, &ids, facts);
    service(&mut out, campaigns, &files, refusals);
    out.text
}

/// Outreach by state, and the finished ones by outcome.
fn outreach(out: &mut Exposition, ids: &BTreeSet<&str>, facts: &MetricFacts) {
    let mut states = zeroes(ids, ["active", "finished"]);
    let mut outcomes = zeroes(ids, Outcome::ALL.map(Outcome::name));
    for (campaign, state, outcome, n) in &facts.outreach {
        add(&mut states, campaign, state, *n);
        if let Some(outcome) = outcome.as_deref().and_then(Outcome::parse) {
            add(&mut outcomes, campaign, outcome.name(), *n);
        }
    }
    out.labelled(
        "ringback_outreach",
        "gauge",
        "Outreach (an appointment's reminders, or one callback) by state.",
        "state",
        &states,
    );
    out.labelled(
        "ringback_outreach_outcomes",
        "gauge",
        "Finished outreach by outcome.",
        "outcome",
        &outcomes,
    );
}

/// Calls and SMS placed, and how the calls ended.
fn placed(out: &mut Exposition, ids: &BTreeSet<&str>, facts: &MetricFacts) {
    let mut placed = zeroes(ids, ["voice"]);
    let mut results = zeroes(ids, CallResult::ALL.map(CallResult::name));
    let mut sms = zeroes(ids, ["sent", "delivered"]);
    for (campaign, channel, status, answerer, n) in &facts.placed {
        if channel == "sms" {
            add(&mut sms, campaign, "sent", *n);
            if status.as_deref() == Some("delivered") {
                add(&mut sms, campaign, "delivered", *n);
            }
            continue;
        }
        add(&mut placed, campaign, "voice", *n);
        if let Some(result) = CallResult::of(answerer.as_deref(), status.as_deref()) {
            add(&mut results, campaign, result.name(), *n);
        }
    }
    out.family(
        "ringback_calls_total",
        "counter",
        "Voice calls placed.",
        ids.iter().map(|id| {
            (
                vec![("campaign", id.to_string())],
                placed
                    .get(&(id.to_string(), "voice".to_string()))
                    .copied()
                    .unwrap_or_default(),
            )
        }),
    );
    out.labelled(
        "ringback_call_results_total",
        "counter",
        "Voice calls ended, by who or what answered, or why nobody did.",
        "result",
        &results,
    );
    out.labelled(
        "ringback_sms_total",
        "counter",
        "SMS sent, and those the provider reported delivered.",
        "status",
        &sms,
    );
}

/// Calls and SMS not yet placed: those for later, those due, and how late the oldest is.
fn planned(out: &mut Exposition, ids: &BTreeSet<&str>, facts: &MetricFacts, now: DateTime<Utc>) {
    let mut waiting = zeroes(ids, CHANNELS);
    let mut due = zeroes(ids, CHANNELS);
    let mut oldest: BTreeMap<String, f64> = ids.iter().map(|id| (id.to_string(), 0.0)).collect();
    for (campaign, channel, is_due, n, earliest) in &facts.planned {
        if *is_due == 0 {
            add(&mut waiting, campaign, channel, *n);
            continue;
        }
        add(&mut due, campaign, channel, *n);
        if let Some(earliest) = earliest {
            let late = (now.timestamp_millis() - earliest).max(0) as f64 / 1000.0;
            let slot = oldest.entry(campaign.clone()).or_default();
            *slot = slot.max(late);
        }
    }
    out.labelled(
        "ringback_attempts_planned",
        "gauge",
        "Calls and SMS planned for later.",
        "channel",
        &waiting,
    );
    out.labelled(
        "ringback_attempts_due",
        "gauge",
        "Calls and SMS due now and not yet placed: near zero while the worker keeps up.",
        "channel",
        &due,
    );
    out.family(
        "ringback_attempts_due_oldest_seconds",
        "gauge",
        "How late the most overdue planned call or SMS is: alert when it grows (no worker running, pacing too slow).",
        oldest
            .iter()
            .map(|(id, late)| (vec![("campaign", id.clone())], *late)),
    );
}

/// What waits on staff (the worklist) and the opt-out ledger.
fn staff(out: &mut Exposition, ids: &BTreeSet<&str>, facts: &MetricFacts) {
    let mut followups = zeroes(ids, FollowupReason::ALL.map(FollowupReason::name));
    for (campaign, reason, n) in &facts.followups {
        add(&mut followups, campaign, reason, *n);
    }
    out.labelled(
        "ringback_followups_open",
        "gauge",
        "Open follow-ups on the staff worklist, by reason.",
        "reason",
        &followups,
    );
    out.family(
        "ringback_optouts",
        "gauge",
        "Numbers on the opt-out ledger, by how they got there.",
        facts
            .optouts
            .iter()
            .map(|(source, n)| (vec![("source", source.clone())], *n as f64)),
    );
}

/// This process: webhooks refused, the campaign files as last read, the campaigns paused.
fn service(out: &mut Exposition, campaigns: &[&str], files: &CampaignFiles, refusals: &Refusals) {
    out.family(
        "ringback_webhooks_refused_total",
        "counter",
        "Provider webhooks refused since this process started: 403 on a bad or missing signature, 400 when malformed.",
        [
            ("signature", &refusals.signature),
            ("malformed", &refusals.malformed),
        ]
        .map(|(reason, n)| {
            (
                vec![("reason", reason.to_string())],
                n.load(Ordering::Relaxed) as f64,
            )
        }),
    );
    out.family(
        "ringback_campaign_files_with_errors",
        "gauge",
        "Campaign files that had errors when last read: each campaign runs as it was before, or not at all if it never loaded.",
        [(vec![], files.with_errors as f64)],
    );
    out.family(
        "ringback_campaign_paused",
        "gauge",
        "1 while staff have paused the campaign (no calls or SMS), else 0.",
        campaigns.iter().map(|c| {
            let paused = files.paused.iter().any(|p| p == c);
            (
                vec![("campaign", c.to_string())],
                f64::from(u8::from(paused)),
            )
        }),
    );
    out.family(
        "ringback_campaigns_loaded_timestamp_seconds",
        "gauge",
        "When the campaign files were last read (at start, or on SIGHUP), in Unix seconds.",
        [(vec![], files.loaded_at.timestamp() as f64)],
    );
}

/// (campaign, label value) → value, each campaign with each of `values` at zero.
type Series = BTreeMap<(String, String), f64>;

fn zeroes<const N: usize>(ids: &BTreeSet<&str>, values: [&str; N]) -> Series {
    ids.iter()
        .flat_map(|id| values.map(|v| ((id.to_string(), v.to_string()), 0.0)))
        .collect()
}

fn add(series: &mut Series, campaign: &str, value: &str, n: i64) {
    *series
        .entry((campaign.to_string(), value.to_string()))
        .or_default() += n.max(0) as f64;
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// One metric family: its help and type, then every sample, together as the format requires.
    fn family(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
    ) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            match labels.is_empty() {
                true => {
                    let _ = writeln!(self.text, "{name} {value}");
                }
                false => {
                    let _ = writeln!(self.text, "{name}{{{}}} {value}", labels.join(","));
                }
            }
        }
    }

    /// A family labelled by campaign and one more label.
    fn labelled(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &'static str,
        series: &Series,
    ) {
        self.family(
            name,
            kind,
            help,
            series.iter().map(|((campaign, value), n)| {
                (
                    vec![("campaign", campaign.clone()), (label, value.clone())],
                    *n,
                )
            }),
        );
    }
}

/// A label value as the text format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> MetricFacts {
        MetricFacts {
            outreach: vec![
                ("a\"b".into(), "active".into(), None, 4),
                (
                    "gone".into(),
                    "finished".into(),
                    Some("confirmed".into()),
                    2,
                ),
            ],
            placed: vec![
                (
                    "purged".into(),
                    "voice".into(),
                    Some("busy".into()),
                    None,
                    6,
                ),
                (
                    "a\"b".into(),
                    "voice".into(),
                    Some("completed".into()),
                    Some("machine".into()),
                    3,
                ),
                (
                    "a\"b".into(),
                    "voice".into(),
                    Some("ringing".into()),
                    None,
                    1,
                ),
                (
                    "a\"b".into(),
                    "sms".into(),
                    Some("delivered".into()),
                    None,
                    2,
                ),
            ],
            planned: vec![
                ("a\"b".into(), "voice".into(), 1, 2, Some(1_000)),
                ("a\"b".into(), "sms".into(), 1, 1, Some(31_000)),
                ("a\"b".into(), "voice".into(), 0, 5, Some(90_000_000)),
            ],
            followups: vec![],
            optouts: vec![("sms".into(), 7)],
            live_calls: 1,
        }
    }

    #[test]
    fn each_series_is_counted_once_under_its_family_and_labels_are_quoted() {
        let refusals = Refusals::default();
        refusals.signature();
        let now = DateTime::from_timestamp_millis(61_000).unwrap();
        let files = CampaignFiles {
            with_errors: 2,
            loaded_at: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            paused: vec!["idle".into()],
        };
        let text = render(&["a\"b", "idle"], files, &facts(), &refusals, now);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        has("ringback_live_calls 1");
        has(r#"ringback_outreach{campaign="a\"b",state="active"} 4"#);
        // A campaign whose file is gone still shows what the database holds of it.
        has(r#"ringback_outreach_outcomes{campaign="gone",outcome="confirmed"} 2"#);
        has(r#"ringback_calls_total{campaign="a\"b"} 4"#);
        has(r#"ringback_call_results_total{campaign="a\"b",result="machine"} 3"#);
        has(r#"ringback_calls_total{campaign="purged"} 6"#);
        has(r#"ringback_call_results_total{campaign="purged",result="busy"} 6"#);
        has(r#"ringback_sms_total{campaign="a\"b",status="delivered"} 2"#);
        has(r#"ringback_attempts_due{campaign="a\"b",channel="voice"} 2"#);
        has(r#"ringback_attempts_planned{campaign="a\"b",channel="voice"} 5"#);
        // The most overdue of either channel: due at 1 s, now 61 s.
        has(r#"ringback_attempts_due_oldest_seconds{campaign="a\"b"} 60"#);
        has(r#"ringback_attempts_due_oldest_seconds{campaign="idle"} 0"#);
        has(r#"ringback_followups_open{campaign="idle",reason="expired"} 0"#);
        has(r#"ringback_optouts{source="sms"} 7"#);
        has(r#"ringback_webhooks_refused_total{reason="signature"} 1"#);
        has(r#"ringback_webhooks_refused_total{reason="malformed"} 0"#);
        has("ringback_campaign_files_with_errors 2");
        has(r#"ringback_campaign_paused{campaign="idle"} 1"#);
        has(r#"ringback_campaign_paused{campaign="a\"b"} 0"#);
        has("ringback_campaigns_loaded_timestamp_seconds 1790000000");
        // The call still ringing has no result yet.
        let results: f64 = text
            .lines()
            .filter(|l| l.starts_with(r#"ringback_call_results_total{campaign="a\"b""#))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum();
        assert_eq!(results, 3.0);
    }
}
