//! The outcome feed as people and scripts ask for it (`ringback outcomes`, `GET /v1/outcomes`):
//! the span of time, written as a clinic writes it, and the CSV a spreadsheet or an EHR reads.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::campaign::duration;
use crate::import::row::parse_time;
use crate::plan::calendar;
use crate::store::{Cursor, OutcomeRecord};

/// How far back the feed reads when nobody says (and no cursor says where to go on from).
pub const DEFAULT_SINCE: &str = "1d";

/// How long after an outcome's time its write may still be on its way: a worker takes the time,
/// then may wait its turn for the database (SQLite waits up to 10 s), and another worker's host
/// clock may run a little behind. A reader's cursor never passes an outcome younger than this,
/// so an outcome written late cannot slip in behind it.
pub const SETTLE: TimeDelta = TimeDelta::minutes(1);

/// From when to when (`until` excluded; none: up to now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// Which of the two bounds is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanError {
    pub field: &'static str,
    pub error: String,
}

/// The span `since` (default: where the cursor `after` is, else [`DEFAULT_SINCE`]) to `until`,
/// dates and local times read in `zone`. A reader that goes on from a cursor gets all that came
/// after it, however long it was away.
pub fn span(
    since: Option<&str>,
    until: Option<&str>,
    after: Option<&Cursor>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Span, SpanError> {
    let read = |field, text: &str| {
        parse_instant(text, zone, now).map_err(|error| SpanError { field, error })
    };
    let since = match (since, after) {
        (Some(text), _) => read("since", text)?,
        (None, Some(cursor)) => {
            DateTime::from_timestamp_millis(cursor.outcome_at).unwrap_or(DateTime::<Utc>::MIN_UTC)
        }
        (None, None) => read("since", DEFAULT_SINCE)?,
    };
    let until = until.map(|u| read("until", u)).transpose()?;
    if let Some(until) = until.filter(|u| *u <= since) {
        return Err(SpanError {
            field: "until",
            error: format!(
                "until ({}) must come after since ({})",
                until.to_rfc3339_opts(SecondsFormat::Secs, true),
                since.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        });
    }
    Ok(Span { since, until })
}

/// An instant as a person or a script writes it: RFC 3339; a date (its midnight in `zone`) or a
/// local `YYYY-MM-DD HH:MM` in `zone`; `today` or `yesterday` (their midnight); or a span back
/// from `now` (`24h`, `7d`, `2w`).
pub fn parse_instant(text: &str, zone: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let midnight = |date: NaiveDate| calendar::resolve(zone, date.and_time(NaiveTime::MIN));
    let today = calendar::local_date(zone, now);
    match text {
        "today" => return Ok(midnight(today)),
        "yesterday" => return Ok(midnight(today - TimeDelta::days(1))),
        _ => {}
    }
    if text.len() == 10
        && let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
    {
        return Ok(midnight(date));
    }
    if text.starts_with(|c: char| c.is_ascii_digit())
        && text.ends_with(['s', 'm', 'h', 'd', 'w'])
        && let Ok(back) = duration::parse(text)
    {
        return Ok(now - back);
    }
    parse_time(text, zone).map_err(|_| {
        format!(
            "not a time {text:?} (write RFC 3339, a date as 2026-11-24, \
             2026-11-24 08:00 in the campaign's zone, today, yesterday, or how long ago: 24h, 7d)"
        )
    })
}

/// Where a reader goes on from after `page` (its `next`): the last outcome on it older than
/// [`SETTLE`]. Younger ones come again on the next poll (a reader updates by `outreach_id`), so
/// one still being written when the page was read is not skipped. A `full` page with none that
/// old goes on from its last, or a reader asking for small pages would get the same one for ever.
/// A page with nothing to go on from keeps the reader where it was: `after`, else `since`.
pub fn resume_point(
    page: &[OutcomeRecord],
    full: bool,
    after: Option<&Cursor>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Cursor {
    let settled = now - SETTLE;
    page.iter()
        .rev()
        .find(|r| r.outcome_at <= settled)
        .or(page.last().filter(|_| full))
        .map(OutcomeRecord::cursor)
        .or_else(|| after.cloned())
        .unwrap_or_else(|| Cursor::start(since))
}

/// The feed as CSV, with a header row: what a spreadsheet opens and an EHR's import reads.
pub fn to_csv(list: &[OutcomeRecord]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "outreach_id",
        "campaign",
        "kind",
        "appointment_id",
        "patient_id",
        "appointment_at",
        "phone",
        "outcome",
        "outcome_at",
        "calls",
        "sms",
        "followup",
    ]);
    for r in list {
        let _ = w.write_record([
            r.outreach_id.as_str(),
            &r.campaign,
            &r.kind,
            r.appointment_id.as_deref().unwrap_or_default(),
            r.patient_id.as_deref().unwrap_or_default(),
            r.appointment_at.as_deref().unwrap_or_default(),
            &r.phone,
            &r.outcome,
            &r.outcome_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            &r.calls.to_string(),
            &r.sms.to_string(),
            r.followup.as_deref().unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn madrid() -> Tz {
        "Europe/Madrid".parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn instants_are_read_as_a_clinic_writes_them() {
        let now = at("2026-11-25T14:30:00Z");
        for (text, expected) in [
            ("2026-11-24T09:00:00+01:00", "2026-11-24T08:00:00Z"),
            ("2026-11-24", "2026-11-23T23:00:00Z"),
            ("2026-11-24 08:30", "2026-11-24T07:30:00Z"),
            ("today", "2026-11-24T23:00:00Z"),
            ("yesterday", "2026-11-23T23:00:00Z"),
            ("24h", "2026-11-24T14:30:00Z"),
            ("7d", "2026-11-18T14:30:00Z"),
            ("90m", "2026-11-25T13:00:00Z"),
        ] {
            assert_eq!(
                parse_instant(text, madrid(), now),
                Ok(at(expected)),
                "{text}"
            );
        }
    }

    #[test]
    fn today_is_the_zones_own_day() {
        // 00:30 in Madrid is still the day before in UTC.
        let now = at("2026-11-24T23:30:00Z");
        assert_eq!(
            parse_instant("today", madrid(), now),
            Ok(at("2026-11-24T23:00:00Z"))
        );
        assert_eq!(
            parse_instant("today", Tz::UTC, now),
            Ok(at("2026-11-24T00:00:00Z"))
        );
    }

    #[test]
    fn a_date_on_which_the_clocks_change_starts_at_its_midnight() {
        // Santiago springs forward at midnight: the day starts at 01:00.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let start = parse_instant("2026-09-06", santiago, Utc::now()).unwrap();
        assert_eq!(start, at("2026-09-06T04:00:00Z"));
    }

    #[test]
    fn what_is_not_a_time_says_how_to_write_one() {
        let now = at("2026-11-25T14:30:00Z");
        for bad in ["last week", "2026-02-31", "5y", "", "24"] {
            let error = parse_instant(bad, madrid(), now).unwrap_err();
            assert!(error.contains("RFC 3339"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_span_defaults_to_the_last_day_and_must_run_forward() {
        let now = at("2026-11-25T14:30:00Z");
        assert_eq!(
            span(None, None, None, madrid(), now),
            Ok(Span {
                since: at("2026-11-24T14:30:00Z"),
                until: None
            })
        );
        assert_eq!(
            span(Some("yesterday"), Some("today"), None, madrid(), now),
            Ok(Span {
                since: at("2026-11-23T23:00:00Z"),
                until: Some(at("2026-11-24T23:00:00Z"))
            })
        );
        let error = span(Some("today"), Some("yesterday"), None, madrid(), now).unwrap_err();
        assert_eq!(error.field, "until");
        let error = span(Some("soon"), None, None, madrid(), now).unwrap_err();
        assert_eq!(error.field, "since");
    }

    #[test]
    fn a_reader_with_a_cursor_gets_all_after_it_however_long_it_was_away() {
        let now = at("2026-11-25T14:30:00Z");
        let cursor: Cursor = format!("{}-01KB", at("2026-11-20T08:00:00Z").timestamp_millis())
            .parse()
            .unwrap();
        let read = span(None, None, Some(&cursor), madrid(), now).unwrap();
        assert_eq!(read.since, at("2026-11-20T08:00:00Z"));
        // Said outright, since still bounds it.
        let read = span(Some("today"), None, Some(&cursor), madrid(), now).unwrap();
        assert_eq!(read.since, at("2026-11-24T23:00:00Z"));
    }

    fn ended(id: &str, at_: &str) -> OutcomeRecord {
        OutcomeRecord {
            outreach_id: id.to_string(),
            campaign: "reminders".into(),
            kind: "reminder".into(),
            appointment_id: None,
            patient_id: None,
            appointment_at: None,
            phone: "+34612000001".into(),
            outcome: "confirmed".into(),
            outcome_at: at(at_),
            calls: 1,
            sms: 0,
            followup: None,
        }
    }

    #[test]
    fn the_cursor_never_passes_an_outcome_that_may_still_be_on_its_way() {
        let now = at("2026-11-25T14:30:00Z");
        let since = at("2026-11-24T14:30:00Z");
        let earlier: Cursor = "1764000000000-01KA".parse().unwrap();
        let page = [
            ended("01KA1", "2026-11-25T14:00:00Z"),
            ended("01KA2", "2026-11-25T14:29:00Z"),
            ended("01KA3", "2026-11-25T14:29:30Z"),
            ended("01KA4", "2026-11-25T14:29:59Z"),
        ];
        // A minute old or more: passed. Younger: read again on the next poll.
        assert_eq!(
            resume_point(&page, false, Some(&earlier), since, now),
            page[1].cursor()
        );
        assert_eq!(
            resume_point(&page, true, Some(&earlier), since, now),
            page[1].cursor()
        );
        // Nothing old enough: the reader stays where it was, or where the span starts.
        let young = &page[2..];
        assert_eq!(
            resume_point(young, false, Some(&earlier), since, now),
            earlier
        );
        assert_eq!(
            resume_point(young, false, None, since, now),
            Cursor::start(since)
        );
        assert_eq!(
            resume_point(&[], false, None, since, now),
            Cursor::start(since)
        );
        // A full page of young outcomes still moves on, or small pages would never end.
        assert_eq!(
            resume_point(young, true, Some(&earlier), since, now),
            page[3].cursor()
        );
    }

    #[test]
    fn the_start_of_a_span_comes_before_every_outreach_at_its_first_instant() {
        let since = at("2026-11-24T14:30:00Z");
        let start = Cursor::start(since);
        let first = ended("01KA1", "2026-11-24T14:30:00Z").cursor();
        assert!(
            (start.outcome_at, start.outreach_id.as_str())
                < (first.outcome_at, first.outreach_id.as_str())
        );
        assert_eq!(start.to_string().parse::<Cursor>(), Ok(start));
    }
}
