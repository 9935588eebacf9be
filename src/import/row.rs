//! One appointment row, typed: every field checked, every problem named by its field.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::Rejection;
use super::source::RawRecord;
use crate::campaign::{Campaign, Column};
use crate::phone::Phone;
use crate::plan::calendar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Booked,
    Cancelled,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::Cancelled => "cancelled",
        }
    }
}

/// A valid appointment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub appointment_id: String,
    pub patient_id: String,
    pub first_name: String,
    pub last_name: Option<String>,
    pub phone: Phone,
    pub starts_at: DateTime<Utc>,
    /// The patient's zone when the row gives one.
    pub timezone: Option<Tz>,
    pub language: Option<String>,
    pub provider: Option<String>,
    pub location: Option<String>,
    pub status: Status,
}

const MAX_TEXT: usize = 200;

/// Type a raw record, or say what is wrong with each bad field.
pub fn parse_row(raw: &RawRecord, campaign: &Campaign) -> Result<Row, Vec<Rejection>> {
    let mut errors = Vec::new();
    if let Some(problem) = &raw.malformed {
        errors.push(reject(raw.line, "row", problem.clone()));
        return Err(errors);
    }
    let mut text = |column: Column| -> Option<String> {
        match raw.get(column) {
            None if column.required() => {
                errors.push(reject(
                    raw.line,
                    column.name(),
                    "required, but empty".into(),
                ));
                None
            }
            None => None,
            Some(Err(())) => {
                errors.push(reject(
                    raw.line,
                    column.name(),
                    "not UTF-8 text (save the export as UTF-8)".into(),
                ));
                None
            }
            Some(Ok(s)) if s.chars().count() > MAX_TEXT => {
                errors.push(reject(
                    raw.line,
                    column.name(),
                    format!("longer than {MAX_TEXT} characters"),
                ));
                None
            }
            Some(Ok(s)) => Some(s.clone()),
        }
    };
    let appointment_id = text(Column::AppointmentId);
    let patient_id = text(Column::PatientId);
    let first_name = text(Column::FirstName);
    let last_name = text(Column::LastName);
    let phone_text = text(Column::Phone);
    let starts_text = text(Column::StartsAt);
    let tz_text = text(Column::Timezone);
    let language = text(Column::Language);
    let provider = text(Column::Provider);
    let location = text(Column::Location);
    let status_text = text(Column::Status);

    let phone = phone_text.and_then(|p| {
        Phone::parse(&p, Some(campaign.country))
            .map_err(|e| errors.push(reject(raw.line, "phone", format!("{e}: {p:?}"))))
            .ok()
    });
    let timezone = tz_text.and_then(|z| {
        z.parse::<Tz>()
            .map_err(|_| {
                errors.push(reject(
                    raw.line,
                    "timezone",
                    format!("unknown IANA time zone {z:?}"),
                ))
            })
            .ok()
    });
    let zone = timezone.unwrap_or(campaign.timezone);
    let starts_at = starts_text.and_then(|s| {
        parse_time(&s, zone)
            .map_err(|e| errors.push(reject(raw.line, "starts_at", e)))
            .ok()
    });
    let language = language.map(|l| l.to_lowercase().replace('_', "-"));
    let status = match status_text.as_deref().map(str::to_lowercase).as_deref() {
        None | Some("booked") | Some("confirmed") | Some("scheduled") => Some(Status::Booked),
        Some("cancelled") | Some("canceled") => Some(Status::Cancelled),
        Some(other) => {
            errors.push(reject(
                raw.line,
                "status",
                format!("unknown status {other:?} (use booked or cancelled)"),
            ));
            None
        }
    };

    match (
        appointment_id,
        patient_id,
        first_name,
        phone,
        starts_at,
        status,
    ) {
        (
            Some(appointment_id),
            Some(patient_id),
            Some(first_name),
            Some(phone),
            Some(starts_at),
            Some(status),
        ) if errors.is_empty() => Ok(Row {
            line: raw.line,
            appointment_id,
            patient_id,
            first_name,
            last_name,
            phone,
            starts_at,
            timezone,
            language,
            provider,
            location,
            status,
        }),
        _ => Err(errors),
    }
}

fn reject(line: u64, field: &str, error: String) -> Rejection {
    Rejection {
        line,
        field: field.to_string(),
        error,
    }
}

/// RFC 3339, or a local `YYYY-MM-DD HH:MM[:SS]` (also with `T`) in `zone`.
pub fn parse_time(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(calendar::resolve(zone, local));
        }
    }
    // Say which part is wrong: a date that does not exist is the usual culprit.
    let date_part = text.get(..10).unwrap_or(text);
    if looks_like_date(date_part) && NaiveDate::parse_from_str(date_part, "%Y-%m-%d").is_err() {
        return Err(format!("no such date {date_part:?}"));
    }
    Err(format!(
        "not a date and time {text:?} (use RFC 3339 or YYYY-MM-DD HH:MM)"
    ))
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.bytes().filter(u8::is_ascii_digit).count() == 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Madrid;

    #[test]
    fn local_times_are_read_in_the_zone_and_rfc3339_as_given() {
        assert_eq!(
            parse_time("2027-01-15 10:30", Madrid).unwrap().to_rfc3339(),
            "2027-01-15T09:30:00+00:00"
        );
        assert_eq!(
            parse_time("2027-01-15T10:30:00+01:00", Madrid)
                .unwrap()
                .to_rfc3339(),
            "2027-01-15T09:30:00+00:00"
        );
    }

    #[test]
    fn thirty_first_of_february_is_named_as_such() {
        assert!(
            parse_time("2027-02-31 10:00", Madrid)
                .unwrap_err()
                .contains("no such date")
        );
        assert!(
            parse_time("tomorrow", Madrid)
                .unwrap_err()
                .contains("not a date and time")
        );
    }
}
