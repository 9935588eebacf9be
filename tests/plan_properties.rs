//! Properties of the planner over random zones, dates (DST transition days above all) and
//! campaigns, checked against an independent minute-by-minute oracle.

use std::path::Path;

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use ringback::campaign::{Campaign, Kind, parse_campaign};
use ringback::outreach::{Channel, Outcome};
use ringback::plan::{Daypart, Request, Slot, timeline};

const ZONES: [&str; 7] = [
    "Europe/Madrid",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Atlantic/Reykjavik",
    "America/Sao_Paulo",
    "Pacific/Chatham",
];

/// DST transition days: Madrid spring and autumn, New York, Lord Howe (30-minute shift); and a plain day.
const ANCHORS: [(i32, u32, u32); 7] = [
    (2027, 3, 28),
    (2027, 10, 31),
    (2027, 3, 14),
    (2027, 11, 7),
    (2027, 4, 4),
    (2027, 10, 3),
    (2027, 6, 15),
];

#[derive(Debug, Clone)]
struct Case {
    toml: String,
    zone: Tz,
    now: DateTime<Utc>,
    appointment: DateTime<Utc>,
    others: Vec<DateTime<Utc>>,
}

fn range_text(start: u32, len: u32) -> String {
    let end = (start + len).min(24 * 60);
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    )
}

prop_compose! {
    fn window()(days in proptest::collection::vec(proptest::option::weighted(0.75, (5u32 * 60..21 * 60, 30u32..14 * 60, proptest::option::of((60u32..240, 30u32..300)))), 7)) -> String {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut out = String::new();
        for (name, day) in names.iter().zip(days) {
            let Some((start, len, second)) = day else { continue };
            let start = start / 15 * 15;
            let mut text = range_text(start, len);
            if let Some((pause, len2)) = second {
                let s2 = start + len + pause;
                if s2 + 15 < 24 * 60 {
                    text.push_str(", ");
                    text.push_str(&range_text(s2, len2));
                }
            }
            out.push_str(&format!("{name} = \"{text}\"\n"));
        }
        if out.is_empty() {
            out.push_str("wed = \"10:00-12:00\"\n");
        }
        out
    }
}

prop_compose! {
    fn case()(
        zone in 0..ZONES.len(),
        anchor in 0..ANCHORS.len(),
        offset_min in -4 * 1440i64..2 * 1440,
        window in window(),
        closed in proptest::collection::vec(-3i64..8, 0..3),
        reminder in any::<bool>(),
        start_h in 6i64..96,
        stop_frac in 0.0f64..0.9,
        expire_h in 1i64..120,
        appointment_min in 60i64..8 * 1440,
        max_calls in 1u32..7,
        gaps in proptest::collection::vec(5i64..3000, 1..4),
        rotate in any::<bool>(),
        per_day in 1u32..5,
        per_week in 1u32..11,
        sms in proptest::option::of(0u32..4),
        others in proptest::collection::vec(-7 * 1440i64..7 * 1440, 0..5),
    ) -> Case {
        let zone: Tz = ZONES[zone].parse().unwrap();
        let (y, m, d) = ANCHORS[anchor];
        let now = Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap() + TimeDelta::minutes(offset_min);
        let base = now.with_timezone(&zone).date_naive();
        let closed: Vec<String> = closed.iter().map(|o| format!("\"{}\"", base + TimeDelta::days(*o))).collect();
        let (kind, rules, per_day, per_week) = if reminder {
            let stop_h = ((start_h as f64) * stop_frac) as i64;
            ("reminder", format!("[reminder]\nstart = \"{start_h}h\"\nstop = \"{stop_h}h\"\n"), 1, per_week.min(3))
        } else {
            ("callback", format!("[callback]\nexpire_after = \"{expire_h}h\"\n"), per_day, per_week)
        };
        let gaps: Vec<String> = gaps.iter().map(|g| format!("\"{g}m\"")).collect();
        let sms_table = match sms {
            Some(n) => format!("[sms]\nafter_calls = {n}\n"),
            None => String::new(),
        };
        let sms_text = if sms.is_some() { "sms = \"{clinic} {date} {time}\"\n" } else { "" };
        let toml = format!(
            "name = \"P\"\nclinic = \"C\"\nkind = \"{kind}\"\ntimezone = \"{}\"\ncountry = \"ES\"\ncaller_id = \"+34930000000\"\nclinic_phone = \"+34930000001\"\ndefault_language = \"en\"\n\
             [window]\n{window}closed = [{}]\n{rules}\
             [retry]\nmax_calls = {max_calls}\ngaps = [{}]\nrotate_dayparts = {rotate}\nmax_calls_per_day = {per_day}\nmax_calls_per_week = {per_week}\n\
             {sms_table}[messages.en]\nvoice = \"Hi {{first_name}}\"\nvoicemail = \"Call {{clinic_phone}}\"\n{sms_text}",
            zone.name(), closed.join(", "), gaps.join(", "),
        );
        let others = others.iter().map(|m| now + TimeDelta::minutes(*m)).collect();
        Case { toml, zone, now, appointment: now + TimeDelta::minutes(appointment_min), others }
    }
}

fn campaign(case: &Case) -> Campaign {
    let outcome = parse_campaign("p", Path::new("p.toml"), &case.toml);
    match outcome.campaign {
        Ok(c) => c,
        Err(errors) => panic!(
            "generated campaign does not parse: {errors:?}\n{}",
            case.toml
        ),
    }
}

fn request<'a>(case: &Case, campaign: &'a Campaign) -> Request<'a> {
    let mut req = match campaign.kind {
        Kind::Reminder(_) => Request::reminder(campaign, case.zone, case.appointment),
        Kind::Callback(_) => Request::callback(campaign, case.zone, case.now),
    };
    req.others = case.others.clone();
    req
}

/// The oracle: may a call be placed at `t`, given the contacts so far? Written apart from the planner.
fn permitted(
    c: &Campaign,
    req: &Request<'_>,
    contacts: &[DateTime<Utc>],
    t: DateTime<Utc>,
) -> bool {
    if t < req.opens || t >= req.deadline {
        return false;
    }
    let local = t.with_timezone(&req.zone);
    let date = local.date_naive();
    let minute = (local.hour() * 60 + local.minute()) as u16;
    if !(8 * 60..21 * 60).contains(&minute) || c.window.closed.contains(&date) {
        return false;
    }
    if !c
        .window
        .ranges(date.weekday())
        .iter()
        .any(|r| r.start <= minute && minute < r.end)
    {
        return false;
    }
    let same_day = contacts
        .iter()
        .filter(|x| x.with_timezone(&req.zone).date_naive() == date)
        .count();
    if same_day >= c.retry.max_calls_per_day as usize {
        return false;
    }
    let mut all: Vec<_> = contacts.to_vec();
    all.push(t);
    all.sort();
    // No 7-day span containing t holds more than the weekly cap.
    for s in &all {
        let in_span: Vec<_> = all
            .iter()
            .filter(|x| **x >= *s && **x < *s + TimeDelta::days(7))
            .collect();
        if in_span.contains(&&t) && in_span.len() > c.retry.max_calls_per_week as usize {
            return false;
        }
    }
    true
}

fn daypart(zone: Tz, t: DateTime<Utc>) -> Option<Daypart> {
    let l = t.with_timezone(&zone);
    Daypart::of_minute((l.hour() * 60 + l.minute()) as u16)
}

/// The earliest bound before the calendar: now, the opening, the gap after the last attempt.
fn lower_bound(
    c: &Campaign,
    req: &Request<'_>,
    now: DateTime<Utc>,
    prev: &[Slot],
) -> DateTime<Utc> {
    let calls = prev.iter().filter(|s| s.channel == Channel::Voice).count() as u32;
    match prev.last() {
        None => now.max(req.opens),
        Some(last) => now.max(last.at + c.retry.gap_after(calls)),
    }
}

fn minutes_from(t: DateTime<Utc>, until: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> {
    let first = t.timestamp().div_euclid(60) * 60 + if t.timestamp() % 60 == 0 { 0 } else { 60 };
    let first = DateTime::from_timestamp(first, 0).unwrap();
    std::iter::successors(Some(first), |x| Some(*x + TimeDelta::minutes(1)))
        .take_while(move |x| *x < until)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn every_slot_keeps_every_rule(case in case()) {
        let c = campaign(&case);
        let req = request(&case, &c);
        let (slots, _end) = timeline(&req, case.now);
        let calls = slots.iter().filter(|s| s.channel == Channel::Voice).count() as u32;
        prop_assert!(calls <= c.retry.max_calls);
        prop_assert!(slots.iter().filter(|s| s.channel == Channel::Sms).count() <= usize::from(c.sms.is_some()));
        let mut contacts = case.others.clone();
        for (i, slot) in slots.iter().enumerate() {
            prop_assert!(slot.at >= case.now, "slot before now");
            prop_assert!(slot.at < req.deadline, "slot after the deadline");
            prop_assert!(permitted(&c, &req, &contacts, slot.at),
                "slot {} at {} breaks a rule\n{}", i + 1, slot.at.with_timezone(&case.zone), case.toml);
            let from = lower_bound(&c, &req, case.now, &slots[..i]);
            prop_assert!(slot.at >= from, "slot {} before its gap", i + 1);
            contacts.push(slot.at);
        }
    }

    #[test]
    fn each_slot_is_the_earliest_permitted_or_rotates_to_an_untried_daypart(case in case()) {
        let c = campaign(&case);
        let req = request(&case, &c);
        let (slots, _end) = timeline(&req, case.now);
        let mut contacts = case.others.clone();
        for (i, slot) in slots.iter().enumerate() {
            let prev = &slots[..i];
            let from = lower_bound(&c, &req, case.now, prev);
            let tried: Vec<Daypart> = prev.iter().filter(|s| s.channel == Channel::Voice).filter_map(|s| daypart(case.zone, s.at)).collect();
            let rotating = c.retry.rotate_dayparts && slot.channel == Channel::Voice && !tried.is_empty();
            if !rotating {
                // Nothing permitted between the bound and the slot.
                let earlier = minutes_from(from, slot.at).find(|t| permitted(&c, &req, &contacts, *t));
                prop_assert!(earlier.is_none(), "slot {} at {} but {:?} was permitted\n{}", i + 1, slot.at, earlier, case.toml);
            } else if tried.contains(&slot.daypart) {
                // A tried part of the day only when no untried one had a permitted minute before the deadline.
                let untried = minutes_from(from, req.deadline)
                    .filter(|t| daypart(case.zone, *t).is_some_and(|p| !tried.contains(&p)))
                    .find(|t| permitted(&c, &req, &contacts, *t));
                prop_assert!(untried.is_none(), "slot {} in tried {:?} but untried {:?} was free\n{}", i + 1, slot.daypart, untried, case.toml);
            }
            contacts.push(slot.at);
        }
    }

    #[test]
    fn a_number_that_takes_no_calls_gets_none_and_at_most_the_sms_fallback(case in case()) {
        let c = campaign(&case);
        let mut req = request(&case, &c);
        req.no_calls = true;
        let (slots, end) = timeline(&req, case.now);
        prop_assert!(slots.iter().all(|s| s.channel == Channel::Sms), "a call planned: {slots:?}");
        prop_assert!(slots.len() <= usize::from(c.sms.is_some_and(|s| s.after_calls.is_some())));
        prop_assert!(matches!(end.outcome, Outcome::Unreachable | Outcome::Expired), "{end:?}");
    }

    #[test]
    fn a_number_that_takes_no_sms_gets_none(case in case()) {
        let c = campaign(&case);
        let mut req = request(&case, &c);
        req.no_sms = true;
        let (slots, _end) = timeline(&req, case.now);
        prop_assert!(slots.iter().all(|s| s.channel == Channel::Voice), "an SMS planned: {slots:?}");
    }

    #[test]
    fn a_timeline_ends_and_never_plans_after_the_deadline(case in case()) {
        let c = campaign(&case);
        let req = request(&case, &c);
        let (slots, end) = timeline(&req, case.now);
        prop_assert!(slots.len() <= c.retry.max_calls as usize + 1);
        prop_assert!(slots.windows(2).all(|w| w[0].at < w[1].at));
        prop_assert!(!end.reason.is_empty());
    }
}
