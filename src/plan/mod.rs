//! The planner: a pure function from a campaign, an outreach's history, the patient's other
//! contacts and `now` to "next attempt at T on channel C, because …" or "no more attempts".

pub mod calendar;
pub mod caps;
pub mod daypart;
mod search;
pub mod zone;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::campaign::{Campaign, Kind, SmsRules, duration};
use crate::outreach::{Channel, Outcome};
use caps::Caps;
pub use daypart::Daypart;
use search::Search;

/// An attempt already made in this outreach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Past {
    pub at: DateTime<Utc>,
    pub channel: Channel,
}

/// Everything the planner needs to know about one outreach.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub campaign: &'a Campaign,
    /// The patient's zone, or the campaign's when it is not known.
    pub zone: Tz,
    /// No attempt before this (reminders: `start` before the appointment; callbacks: the request).
    pub opens: DateTime<Utc>,
    /// No attempt at or after this (reminders: `stop` before the appointment; callbacks: expiry).
    pub deadline: DateTime<Utc>,
    /// This outreach's attempts so far, in time order.
    pub history: Vec<Past>,
    /// The patient's contacts in every other outreach (any campaign, any channel), for the caps.
    pub others: Vec<DateTime<Utc>>,
    /// A call of this outreach reached voicemail (a reminder then ends, after the SMS of
    /// `[sms].on_voicemail`).
    pub voicemail_reached: bool,
    /// The number takes no SMS (not a mobile, or refused by the carrier).
    pub no_sms: bool,
    /// The number takes no calls (the provider refused a call to it as the wrong channel): the
    /// SMS fallback, if the campaign has one, goes at once, and no call is planned.
    pub no_calls: bool,
}

impl<'a> Request<'a> {
    /// A reminder for an appointment at `appointment`.
    pub fn reminder(campaign: &'a Campaign, zone: Tz, appointment: DateTime<Utc>) -> Request<'a> {
        let (start, stop) = match &campaign.kind {
            Kind::Reminder(r) => (r.start, r.stop),
            Kind::Callback(_) => (TimeDelta::days(2), TimeDelta::hours(3)),
        };
        Request {
            campaign,
            zone,
            opens: appointment - start,
            deadline: appointment - stop,
            history: vec![],
            others: vec![],
            voicemail_reached: false,
            no_sms: false,
            no_calls: false,
        }
    }

    /// A callback requested at `requested`.
    pub fn callback(campaign: &'a Campaign, zone: Tz, requested: DateTime<Utc>) -> Request<'a> {
        let expire = match &campaign.kind {
            Kind::Callback(c) => c.expire_after,
            Kind::Reminder(_) => TimeDelta::days(3),
        };
        Request {
            campaign,
            zone,
            opens: requested,
            deadline: requested + expire,
            history: vec![],
            others: vec![],
            voicemail_reached: false,
            no_sms: false,
            no_calls: false,
        }
    }

    fn calls(&self) -> u32 {
        self.history
            .iter()
            .filter(|p| p.channel == Channel::Voice)
            .count() as u32
    }

    fn texts(&self) -> u32 {
        self.history
            .iter()
            .filter(|p| p.channel == Channel::Sms)
            .count() as u32
    }
}

/// A planned attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Slot {
    pub at: DateTime<Utc>,
    pub channel: Channel,
    pub daypart: Daypart,
    pub reason: String,
}

/// The end of an outreach when nobody answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct End {
    pub outcome: Outcome,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attempt(Slot),
    End(End),
}

/// The next step for an outreach at `now`.
pub fn next(req: &Request<'_>, now: DateTime<Utc>) -> Step {
    if now >= req.deadline {
        return end(
            Outcome::Expired,
            format!("the deadline {} has passed", stamp(req.zone, req.deadline)),
        );
    }
    let channel = match next_channel(req) {
        Ok(channel) => channel,
        Err(ended) => return ended,
    };
    let calls = req.calls();
    let retry = &req.campaign.retry;
    let (from, why_from) = earliest(req, now, calls);
    let mut contacts: Vec<_> = req.history.iter().map(|p| p.at).collect();
    contacts.extend(&req.others);
    let search = Search {
        window: &req.campaign.window,
        zone: req.zone,
        deadline: req.deadline,
        caps: Caps::new(
            req.zone,
            retry.max_calls_per_day,
            retry.max_calls_per_week,
            contacts,
        ),
    };
    let tried = tried_dayparts(req);
    let rotate = channel == Channel::Voice && calls > 0 && retry.rotate_dayparts;
    let found = if rotate {
        search.rotated(from, &tried)
    } else {
        search.earliest(from, &Daypart::ALL)
    };
    let Some(found) = found else {
        return no_time_left(req);
    };
    let what = match channel {
        Channel::Voice => format!("call {}", calls + 1),
        Channel::Sms => "SMS fallback".to_string(),
    };
    let mut reason = format!("{what}: {why_from}");
    if found.at > from {
        reason.push_str(&format!("; not earlier: {}", found.delays.join(", ")));
    }
    if rotate {
        if tried.get(&found.daypart).copied().unwrap_or(0) == 0 {
            reason.push_str(&format!("; {} not tried yet", found.daypart));
        } else {
            reason.push_str(&format!(
                "; {} (no untried part of the day before the deadline)",
                found.daypart
            ));
        }
    }
    Step::Attempt(Slot {
        at: found.at,
        channel,
        daypart: found.daypart,
        reason,
    })
}

/// The channel of the outreach's next attempt, or its end when it has none left.
fn next_channel(req: &Request<'_>) -> Result<Channel, Step> {
    let (calls, texts) = (req.calls(), req.texts());
    let reminder = matches!(req.campaign.kind, Kind::Reminder(_));
    let sms_allowed = !req.no_sms && texts == 0;
    if reminder && req.voicemail_reached {
        // The patient has the message; only the SMS of `on_voicemail` may follow.
        return match req.campaign.sms {
            Some(SmsRules {
                on_voicemail: true, ..
            }) if sms_allowed => Ok(Channel::Sms),
            _ => Err(end(
                Outcome::VoicemailLeft,
                "a call reached voicemail and left the message".to_string(),
            )),
        };
    }
    if sms_allowed && sms_due(req.campaign.sms, calls, texts, req.no_calls) {
        Ok(Channel::Sms)
    } else if req.no_calls {
        Err(end(
            Outcome::Unreachable,
            "the number takes no calls (the provider refused one as the wrong channel)".to_string(),
        ))
    } else if calls < req.campaign.retry.max_calls {
        Ok(Channel::Voice)
    } else {
        Err(end(
            Outcome::Unreachable,
            format!(
                "all {} calls placed without an answer",
                req.campaign.retry.max_calls
            ),
        ))
    }
}

/// The end of an outreach with no permitted time left before its deadline.
fn no_time_left(req: &Request<'_>) -> Step {
    let outcome = if matches!(req.campaign.kind, Kind::Reminder(_)) && req.voicemail_reached {
        Outcome::VoicemailLeft
    } else if req.history.is_empty() {
        Outcome::Expired
    } else {
        Outcome::Unreachable
    };
    end(
        outcome,
        format!(
            "no permitted time left before the deadline {} (window, quiet hours 08:00-21:00, caps)",
            stamp(req.zone, req.deadline)
        ),
    )
}

/// The whole tentative timeline if nobody ever answers: every attempt, then the end.
pub fn timeline(req: &Request<'_>, now: DateTime<Utc>) -> (Vec<Slot>, End) {
    let mut req = req.clone();
    let mut now = now;
    let mut slots = Vec::new();
    // Each step adds one attempt, and both channels are bounded, so this ends.
    loop {
        match next(&req, now) {
            Step::Attempt(slot) => {
                req.history.push(Past {
                    at: slot.at,
                    channel: slot.channel,
                });
                now = slot.at;
                slots.push(slot);
            }
            Step::End(end) => return (slots, end),
        }
    }
}

fn end(outcome: Outcome, reason: String) -> Step {
    Step::End(End { outcome, reason })
}

/// Whether the SMS fallback is due: after its calls, or at once when no call can be placed.
fn sms_due(rules: Option<SmsRules>, calls: u32, texts: u32, no_calls: bool) -> bool {
    matches!(rules, Some(SmsRules { after_calls: Some(n), .. }) if texts == 0 && (calls >= n || no_calls))
}

/// The earliest instant the rules that do not depend on the calendar allow, and why.
fn earliest(req: &Request<'_>, now: DateTime<Utc>, calls: u32) -> (DateTime<Utc>, String) {
    let mut bounds = vec![(now, "as soon as allowed".to_string())];
    match req.history.last() {
        None => {
            let why = match &req.campaign.kind {
                Kind::Reminder(r) => format!(
                    "reminders start {} before the appointment",
                    duration::format(r.start)
                ),
                Kind::Callback(_) => "the callback was requested".to_string(),
            };
            bounds.push((req.opens, why));
        }
        Some(last) => {
            let gap = req.campaign.retry.gap_after(calls);
            let after = if calls == 0 {
                "the SMS".to_string()
            } else {
                format!("call {calls}")
            };
            bounds.push((
                last.at + gap,
                format!("retry gap {} after {after}", duration::format(gap)),
            ));
        }
    }
    let (at, why) = bounds
        .into_iter()
        .max_by_key(|(t, _)| *t)
        .unwrap_or((now, String::new()));
    (at, format!("{why} ({})", stamp(req.zone, at)))
}

fn tried_dayparts(req: &Request<'_>) -> BTreeMap<Daypart, u32> {
    let mut tried = BTreeMap::new();
    for past in req.history.iter().filter(|p| p.channel == Channel::Voice) {
        if let Some(part) = Daypart::of_minute(calendar::local_minute(req.zone, past.at)) {
            *tried.entry(part).or_insert(0) += 1;
        }
    }
    tried
}

/// `Tue 2027-03-02 10:00 CET`: how reasons show an instant.
pub fn stamp(zone: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}
