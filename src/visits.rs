//! A day's visits as the front desk asks for them (`ringback visits`, `GET /v1/visits`): the
//! day, written as people write it, and the CSV a spreadsheet opens.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::plan::calendar;
use crate::store::VisitRecord;

/// The day the list is for when nobody says: tomorrow's visits, as the desk checks them the
/// evening before.
pub const DEFAULT_DAY: &str = "tomorrow";

/// The day `text` names in `zone` (`YYYY-MM-DD`, `today`, `tomorrow`, `yesterday`), from its
/// midnight to the next.
pub fn day(
    text: &str,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let today = calendar::local_date(zone, now);
    let date = match text.trim() {
        "today" => today,
        "tomorrow" => today + TimeDelta::days(1),
        "yesterday" => today - TimeDelta::days(1),
        other => NaiveDate::parse_from_str(other, "%Y-%m-%d").map_err(|_| {
            format!("not a day {other:?} (write 2026-11-26, today, tomorrow or yesterday)")
        })?,
    };
    let midnight = |d: NaiveDate| calendar::resolve(zone, d.and_time(NaiveTime::MIN));
    Ok((midnight(date), midnight(date + TimeDelta::days(1))))
}

/// The visits as CSV, with a header row.
pub fn to_csv(list: &[VisitRecord]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "campaign",
        "appointment_id",
        "patient_id",
        "patient",
        "appointment_at",
        "phone",
        "status",
        "reminder",
        "outcome",
        "calls",
        "sms",
        "next_attempt_at",
        "next_channel",
        "followup",
    ]);
    for v in list {
        let next = v
            .next_attempt_at
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let _ = w.write_record([
            v.campaign.as_str(),
            &v.appointment_id,
            &v.patient_id,
            &v.patient,
            &v.appointment_at,
            &v.phone,
            &v.status,
            &v.reminder,
            v.outcome.as_deref().unwrap_or_default(),
            &v.calls.to_string(),
            &v.sms.to_string(),
            next.as_deref().unwrap_or_default(),
            v.next_channel.as_deref().unwrap_or_default(),
            v.followup.as_deref().unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_day_runs_from_its_midnight_to_the_next_in_the_zone() {
        let madrid: Tz = "Europe/Madrid".parse().unwrap();
        // 23:30 UTC on the 25th is already the 26th in Madrid.
        let now = at("2026-11-25T23:30:00Z");
        for (text, since, until) in [
            ("today", "2026-11-25T23:00:00Z", "2026-11-26T23:00:00Z"),
            ("tomorrow", "2026-11-26T23:00:00Z", "2026-11-27T23:00:00Z"),
            ("yesterday", "2026-11-24T23:00:00Z", "2026-11-25T23:00:00Z"),
            ("2027-03-28", "2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z"),
        ] {
            assert_eq!(day(text, madrid, now), Ok((at(since), at(until))), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_day_says_how_to_write_one() {
        let error = day("next monday", Tz::UTC, Utc::now()).unwrap_err();
        assert!(error.contains("tomorrow"), "{error}");
        assert!(day("2026-02-30", Tz::UTC, Utc::now()).is_err());
    }
}
