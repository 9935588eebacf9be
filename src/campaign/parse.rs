//! From a campaign file's TOML tree to a [`Campaign`], collecting every error with its position.

use chrono::{NaiveDate, TimeDelta};
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::import_table::import_rules;
use super::messages_table::messages;
use super::reader::{Errors, Section, Span};
use super::window::{self, TimeRange, WeeklyWindow};
use super::{
    CallbackRules, Campaign, Connect, Kind, Pacing, ReminderRules, RetryRules, SmsRules, duration,
};
use crate::phone::Phone;

/// Legal quiet hours: no call before 08:00 or after 21:00 in the patient's local time.
pub const QUIET_HOURS_OPEN: TimeRange = TimeRange {
    start: 8 * 60,
    end: 21 * 60,
};

/// The most calls a reminder campaign may place per patient (healthcare exemption).
const REMINDER_CAPS: (u32, u32) = (1, 3);
/// The most a callback campaign may place: the patient asked to be called, but not hounded.
const CALLBACK_CAPS: (u32, u32) = (4, 10);

const TOP_KEYS: &[&str] = &[
    "name",
    "clinic",
    "kind",
    "timezone",
    "country",
    "caller_id",
    "clinic_phone",
    "default_language",
    "window",
    "reminder",
    "callback",
    "retry",
    "pacing",
    "sms",
    "messages",
    "import",
];

/// What a file said, or every error found in it; warnings in both cases.
pub(crate) struct Parsed {
    pub campaign: Option<Campaign>,
    pub errors: Vec<(Span, String)>,
    pub warnings: Vec<(Span, String)>,
}

pub(crate) fn campaign(id: &str, src: &str, table: &DeTable<'_>) -> Parsed {
    let mut errors = Errors::default();
    let mut warnings = Errors::default();
    let top = Section::new("", table, 0..0);
    top.deny_unknown(TOP_KEYS, &mut errors);

    check_id(id, &mut errors);
    let name = top.required_str("name", &mut errors);
    let clinic = top.required_str("clinic", &mut errors);
    let timezone = zone(&top, &mut errors);
    let country = country(&top, &mut errors);
    let caller_id = e164(&top, "caller_id", &mut errors);
    let clinic_phone = e164(&top, "clinic_phone", &mut errors);
    let kind = kind(&top, &mut errors);
    let window = window(&top, &mut errors, &mut warnings);
    let retry = retry(&top, kind.as_ref(), &mut errors);
    let pacing = pacing(&top, &mut errors);
    let sms = sms(&top, &mut errors);
    let default_language = default_language(&top, &mut errors);
    let sms_context = clinic
        .as_ref()
        .zip(clinic_phone.as_ref())
        .map(|(c, p)| (c.get_ref().to_string(), p.to_string()));
    let messages = messages(&top, src, sms.is_some(), sms_context, &mut errors);
    let import = import_rules(&top, &mut errors);

    let campaign = match (
        name,
        clinic,
        kind,
        timezone,
        country,
        caller_id,
        clinic_phone,
        default_language,
        window,
        retry,
        pacing,
        messages,
        import,
    ) {
        (
            Some(name),
            Some(clinic),
            Some(kind),
            Some(timezone),
            Some(country),
            Some(caller_id),
            Some(clinic_phone),
            Some(default_language),
            Some(window),
            Some(retry),
            Some(pacing),
            Some(messages),
            Some(import),
        ) if errors.0.is_empty() => Some(Campaign {
            id: id.to_string(),
            name: name.into_inner().to_string(),
            clinic: clinic.into_inner().to_string(),
            kind,
            timezone,
            country,
            caller_id,
            clinic_phone,
            default_language: default_language.into_inner().to_string(),
            window,
            retry,
            pacing,
            sms,
            messages,
            import,
        }),
        _ => None,
    };
    Parsed {
        campaign,
        errors: errors.0,
        warnings: warnings.0,
    }
}

fn check_id(id: &str, errors: &mut Errors) {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || !id.chars().all(allowed) {
        errors.push(
            0..0,
            format!("campaign id {id:?} (the file name) may hold only letters, digits, - and _"),
        );
    }
}

fn zone(top: &Section, errors: &mut Errors) -> Option<Tz> {
    let tz = top.required_str("timezone", errors)?;
    crate::plan::zone::place(tz.get_ref())
        .map_err(|problem| errors.push(tz.span(), problem))
        .ok()
}

fn country(top: &Section, errors: &mut Errors) -> Option<phonenumber::country::Id> {
    let c = top.required_str("country", errors)?;
    c.get_ref()
        .parse::<phonenumber::country::Id>()
        .map_err(|_| {
            let problem = format!(
                "unknown country {:?} (a two-letter ISO code, e.g. \"ES\")",
                c.get_ref()
            );
            errors.push(c.span(), problem)
        })
        .ok()
}

/// `default_language`, which must have its own `[messages.…]` table.
fn default_language<'t>(top: &Section<'t, '_>, errors: &mut Errors) -> Option<Spanned<&'t str>> {
    let lang = top.required_str("default_language", errors)?;
    let languages = top.get("messages").and_then(|m| m.get_ref().as_table());
    if let Some(languages) = languages
        && !languages.contains_key(*lang.get_ref())
    {
        errors.push(
            lang.span(),
            format!(
                "no [messages.{}] table for the default language",
                lang.get_ref()
            ),
        );
    }
    Some(lang)
}

fn e164(top: &Section, key: &str, errors: &mut Errors) -> Option<Phone> {
    let text = top.required_str(key, errors)?;
    Phone::parse_e164(text.get_ref())
        .map_err(|e| errors.push(text.span(), format!("`{key}` {:?}: {e}", text.get_ref())))
        .ok()
}

fn dur(section: &Section, key: &str, errors: &mut Errors) -> Option<TimeDelta> {
    let text = section.str(key, errors)?;
    duration::parse(text.get_ref())
        .map_err(|e| errors.push(text.span(), format!("`{key}`: {e}")))
        .ok()
}

fn kind(top: &Section, errors: &mut Errors) -> Option<Kind> {
    let kind = top.required_str("kind", errors)?;
    match *kind.get_ref() {
        "reminder" => {
            if let Some(v) = top.get("callback") {
                errors.push(
                    v.span(),
                    "[callback] belongs to kind = \"callback\" campaigns",
                );
            }
            let Some(section) = top.table("reminder", errors) else {
                if top.get("reminder").is_none() {
                    top.missing("reminder", errors);
                }
                return None;
            };
            section.deny_unknown(&["start", "stop"], errors);
            let start =
                dur(&section, "start", errors).or_else(|| missing(&section, "start", errors))?;
            let stop =
                dur(&section, "stop", errors).or_else(|| missing(&section, "stop", errors))?;
            if start <= stop {
                errors.push(
                    section.span.clone(),
                    "[reminder] `start` must be longer before the appointment than `stop`",
                );
                return None;
            }
            Some(Kind::Reminder(ReminderRules { start, stop }))
        }
        "callback" => {
            if let Some(v) = top.get("reminder") {
                errors.push(
                    v.span(),
                    "[reminder] belongs to kind = \"reminder\" campaigns",
                );
            }
            let rules = match top.table("callback", errors) {
                None => CallbackRules {
                    connect: Connect::AgentFirst,
                    agents: 1,
                    expire_after: TimeDelta::days(3),
                },
                Some(section) => {
                    section.deny_unknown(&["connect", "agents", "expire_after"], errors);
                    let connect = match section.str("connect", errors) {
                        None => Connect::AgentFirst,
                        Some(c) => match *c.get_ref() {
                            "agent_first" => Connect::AgentFirst,
                            "patient_first" => Connect::PatientFirst,
                            other => {
                                errors.push(c.span(), format!("`connect` {other:?}: use \"agent_first\" or \"patient_first\""));
                                Connect::AgentFirst
                            }
                        },
                    };
                    let agents = section.int_in("agents", 1..=1000, errors).unwrap_or(1);
                    let expire_after =
                        dur(&section, "expire_after", errors).unwrap_or(TimeDelta::days(3));
                    CallbackRules {
                        connect,
                        agents,
                        expire_after,
                    }
                }
            };
            Some(Kind::Callback(rules))
        }
        other => {
            errors.push(
                kind.span(),
                format!("`kind` {other:?}: use \"reminder\" or \"callback\""),
            );
            None
        }
    }
}

pub(super) fn missing<T>(section: &Section, key: &str, errors: &mut Errors) -> Option<T> {
    if section.get(key).is_none() {
        section.missing(key, errors);
    }
    None
}

fn window(top: &Section, errors: &mut Errors, warnings: &mut Errors) -> Option<WeeklyWindow> {
    let Some(section) = top.table("window", errors) else {
        return missing(top, "window", errors);
    };
    let before = errors.0.len();
    let mut window = WeeklyWindow::default();
    let mut seen: std::collections::HashMap<chrono::Weekday, String> = Default::default();
    for (key, value) in section.table.iter() {
        let key_text = key.get_ref().as_ref();
        if key_text == "closed" {
            for date in section.strings("closed", errors).unwrap_or_default() {
                match NaiveDate::parse_from_str(date.get_ref(), "%Y-%m-%d") {
                    Ok(d) => {
                        window.closed.insert(d);
                    }
                    Err(_) => errors.push(
                        date.span(),
                        format!(
                            "closed date {:?} is not a calendar date (YYYY-MM-DD)",
                            date.get_ref()
                        ),
                    ),
                }
            }
            continue;
        }
        let days = match window::parse_days(key_text) {
            Ok(days) => days,
            Err(e) => {
                errors.push(key.span(), format!("[window] {e}"));
                continue;
            }
        };
        let DeValue::String(text) = value.get_ref() else {
            errors.push(
                value.span(),
                format!("[window] `{key_text}` must be a string like \"09:00-20:00\""),
            );
            continue;
        };
        let ranges = match window::parse_ranges(text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(value.span(), format!("[window] `{key_text}`: {e}"));
                continue;
            }
        };
        for r in &ranges {
            if r.intersect(QUIET_HOURS_OPEN) != Some(*r) {
                warnings.push(value.span(), format!(
                    "[window] `{key_text}` {r} reaches into legal quiet hours; calls are placed only 08:00-21:00 patient-local"
                ));
            }
        }
        for day in days {
            if let Some(earlier) = seen.insert(day, key_text.to_string()) {
                errors.push(
                    key.span(),
                    format!("[window] {day} is already given by `{earlier}`"),
                );
            }
            window.set(day, ranges.clone());
        }
    }
    if window.is_empty() && errors.0.len() == before {
        errors.push(
            section.span.clone(),
            "[window] opens on no day: add e.g. mon-fri = \"09:00-20:00\"",
        );
    }
    (errors.0.len() == before).then_some(window)
}

fn retry(top: &Section, kind: Option<&Kind>, errors: &mut Errors) -> Option<RetryRules> {
    let (day_cap, week_cap) = match kind {
        Some(Kind::Callback(_)) => CALLBACK_CAPS,
        _ => REMINDER_CAPS,
    };
    let mut rules = RetryRules {
        max_calls: 3,
        gaps: vec![TimeDelta::hours(2)],
        rotate_dayparts: true,
        max_calls_per_day: 1,
        max_calls_per_week: 3,
    };
    let Some(section) = top.table("retry", errors) else {
        return Some(rules);
    };
    let before = errors.0.len();
    section.deny_unknown(
        &[
            "max_calls",
            "gaps",
            "rotate_dayparts",
            "max_calls_per_day",
            "max_calls_per_week",
        ],
        errors,
    );
    rules.max_calls = section
        .int_in("max_calls", 1..=20, errors)
        .unwrap_or(rules.max_calls);
    if let Some(gaps) = section.strings("gaps", errors) {
        let parsed: Vec<TimeDelta> = gaps
            .iter()
            .filter_map(|g| {
                duration::parse(g.get_ref())
                    .map_err(|e| errors.push(g.span(), format!("[retry] gaps: {e}")))
                    .ok()
            })
            .collect();
        if gaps.is_empty() {
            errors.push(
                section.get("gaps").map(|g| g.span()).unwrap_or_default(),
                "[retry] gaps must not be empty",
            );
        }
        if parsed.len() == gaps.len() && !parsed.is_empty() {
            rules.gaps = parsed;
        }
    }
    if let Some(b) = section.bool("rotate_dayparts", errors) {
        rules.rotate_dayparts = b.into_inner();
    }
    let kind_name = kind.map_or("reminder", Kind::name);
    for (key, cap, slot) in [
        ("max_calls_per_day", day_cap, &mut rules.max_calls_per_day),
        (
            "max_calls_per_week",
            week_cap,
            &mut rules.max_calls_per_week,
        ),
    ] {
        if let Some(v) = section.int(key, errors) {
            if !(1..=cap as i64).contains(v.get_ref()) {
                errors.push(v.span(), format!("`{key}` must be between 1 and {cap} for a {kind_name} campaign (patient safety limit)"));
            } else {
                *slot = *v.get_ref() as u32;
            }
        }
    }
    (errors.0.len() == before).then_some(rules)
}

fn pacing(top: &Section, errors: &mut Errors) -> Option<Pacing> {
    let mut pacing = Pacing {
        calls_per_second: 1.0,
        burst: 1,
        max_concurrent_calls: 10,
    };
    let Some(section) = top.table("pacing", errors) else {
        return Some(pacing);
    };
    let before = errors.0.len();
    section.deny_unknown(
        &["calls_per_second", "burst", "max_concurrent_calls"],
        errors,
    );
    if let Some(cps) = section.float("calls_per_second", errors) {
        if *cps.get_ref() > 0.0 && *cps.get_ref() <= 1000.0 {
            pacing.calls_per_second = cps.into_inner();
        } else {
            errors.push(
                cps.span(),
                "`calls_per_second` must be above 0 and at most 1000",
            );
        }
    }
    pacing.burst = section
        .int_in("burst", 1..=1000, errors)
        .unwrap_or(pacing.burst);
    pacing.max_concurrent_calls = section
        .int_in("max_concurrent_calls", 1..=10_000, errors)
        .unwrap_or(pacing.max_concurrent_calls);
    (errors.0.len() == before).then_some(pacing)
}

fn sms(top: &Section, errors: &mut Errors) -> Option<SmsRules> {
    let section = top.table("sms", errors)?;
    section.deny_unknown(&["after_calls", "on_voicemail"], errors);
    let after_calls = section.int_in("after_calls", 0..=20, errors);
    let on_voicemail = section
        .bool("on_voicemail", errors)
        .is_some_and(|b| b.into_inner());
    Some(SmsRules {
        after_calls,
        on_voicemail,
    })
}
