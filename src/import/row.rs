//! One appointment row, typed: every field checked, every problem named by its field.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use chrono_tz::Tz;

use super::Rejection;
use super::source::RawRecord;
use crate::campaign::time_format::Unreadable;
use crate::campaign::{Campaign, Column, TimeFormat};
use crate::phone::{Numbering, Phone};
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
    parse_row_with(Numbering::Shared, raw, campaign)
}

/// [`parse_row`], reading its phone number with the given copy of the numbering plans.
pub fn parse_row_with(
    numbering: Numbering,
    raw: &RawRecord,
    campaign: &Campaign,
) -> Result<Row, Vec<Rejection>> {
    if let Some((field, problem)) = &raw.malformed {
        return Err(vec![reject(raw.line, field, problem.clone())]);
    }
    let mut check = Check {
        raw,
        errors: Vec::new(),
    };
    let appointment_id = check.text(Column::AppointmentId);
    let patient_id = check.text(Column::PatientId);
    let first_name = check.text(Column::FirstName);
    let last_name = check.text(Column::LastName);
    let phone = check.phone(numbering, campaign);
    let starts_text = check.text(Column::StartsAt);
    let timezone = check.timezone();
    let language = check.text(Column::Language);
    let provider = check.text(Column::Provider);
    let location = check.text(Column::Location);
    let status = check.status();
    let zone = timezone.unwrap_or(campaign.timezone);
    let starts_at = starts_text.and_then(|s| check.starts_at(&s, zone, campaign));
    let errors = check.errors();
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
            language: language.map(|l| l.to_lowercase().replace('_', "-")),
            provider,
            location,
            status,
        }),
        _ => Err(errors),
    }
}

/// One record's fields being typed, and what is wrong with them so far.
struct Check<'r> {
    raw: &'r RawRecord,
    errors: Vec<Rejection>,
}

impl Check<'_> {
    fn reject(&mut self, field: &str, error: String) {
        self.errors.push(reject(self.raw.line, field, error));
    }

    /// The column's text, if it has some and it is readable.
    fn text(&mut self, column: Column) -> Option<String> {
        let problem = match self.raw.get(column) {
            None if column.required() => "required, but empty".to_string(),
            None => return None,
            Some(Err(())) => "not UTF-8 text (save the export as UTF-8, or name its encoding in the campaign: [import] encoding = \"windows-1252\")".to_string(),
            Some(Ok(s)) if s.chars().count() > MAX_TEXT => {
                format!("longer than {MAX_TEXT} characters")
            }
            Some(Ok(s)) => return Some(s.clone()),
        };
        self.reject(column.name(), problem);
        None
    }

    fn phone(&mut self, numbering: Numbering, campaign: &Campaign) -> Option<Phone> {
        let text = self.text(Column::Phone)?;
        Phone::parse_with(numbering, &text, Some(campaign.country))
            .map_err(|e| self.reject("phone", format!("{e}: {text:?}")))
            .ok()
    }

    fn timezone(&mut self) -> Option<Tz> {
        let text = self.text(Column::Timezone)?;
        crate::plan::zone::place(&text)
            .map_err(|problem| self.reject("timezone", problem))
            .ok()
    }

    fn starts_at(&mut self, text: &str, zone: Tz, campaign: &Campaign) -> Option<DateTime<Utc>> {
        parse_starts_at(text, zone, campaign.import.starts_at_format.as_ref())
            // As stored (milliseconds): a finer time would differ from itself on every
            // re-import, and each would re-plan the appointment's calls.
            .map(|t| t.trunc_subsecs(3))
            .map_err(|e| self.reject("starts_at", e))
            .ok()
    }

    fn status(&mut self) -> Option<Status> {
        let text = self.text(Column::Status).map(|s| s.to_lowercase());
        match text.as_deref() {
            None | Some("booked") | Some("confirmed") | Some("scheduled") => Some(Status::Booked),
            Some("cancelled") | Some("canceled") => Some(Status::Cancelled),
            Some(other) => {
                let problem = format!("unknown status {other:?} (use booked or cancelled)");
                self.reject("status", problem);
                None
            }
        }
    }

    /// The errors in the order of the columns, each naming where its field was found when the
    /// record says (a FHIR resource's path).
    fn errors(self) -> Vec<Rejection> {
        let mut errors = self.errors;
        errors.sort_by_key(|e| Column::ALL.iter().position(|c| c.name() == e.field));
        if let Some(elsewhere) = &self.raw.elsewhere {
            for error in &mut errors {
                if elsewhere.columns.iter().any(|c| c.name() == error.field) {
                    error.error = format!("{} ({})", error.error, elsewhere.at);
                }
            }
        }
        errors
    }
}

fn reject(line: u64, field: &str, error: String) -> Rejection {
    Rejection {
        line,
        field: field.to_string(),
        error,
    }
}

/// `starts_at` as the campaign says its export writes it, else as [`parse_time`] reads it.
fn parse_starts_at(
    text: &str,
    zone: Tz,
    format: Option<&TimeFormat>,
) -> Result<DateTime<Utc>, String> {
    let Some(format) = format else {
        return parse_time(text, zone).map_err(|e| {
            // A date written another way (03/12/2026 10:00): the campaign can say how.
            let written_otherwise = text.bytes().filter(u8::is_ascii_digit).count() >= 6
                && text.contains(['/', '.'])
                && !e.starts_with("no such date");
            match written_otherwise {
                true => format!(
                    "{e}; if the export writes every date this way, say how in the campaign: [import] starts_at_format = \"%d/%m/%Y %H:%M\""
                ),
                false => e,
            }
        });
    };
    match format.read(text, zone) {
        Ok(t) => Ok(t),
        Err(Unreadable::NoSuchTime) => Err(format!(
            "no such date or time {text:?} (read as {:?})",
            format.as_str()
        )),
        Err(Unreadable::Shape) => parse_time(text, zone).map_err(|_| {
            format!(
                "not a date and time {text:?} (use {:?}, as [import] starts_at_format says, or RFC 3339)",
                format.as_str()
            )
        }),
    }
}

/// RFC 3339, or a local `YYYY-MM-DD HH:MM[:SS]` (also with `T`) in `zone`.
pub fn parse_time(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    // The common spelling first: an export writes every row the same way.
    if let Some(local) = fixed_width_local(text) {
        return Ok(calendar::resolve(zone, local));
    }
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

/// `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS`, or either with `T`, every field at its full
/// width and in range; anything else is left to the general parsers.
fn fixed_width_local(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    let seconds = match b.len() {
        16 => false,
        19 => true,
        _ => return None,
    };
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let separators = b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && (!seconds || b[16] == b':');
    if !separators {
        return None;
    }
    let second = if seconds { number(17, 19)? } else { 0 };
    NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?.and_hms_opt(
        number(11, 13)?,
        number(14, 16)?,
        second,
    )
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

    proptest::proptest! {
        /// The fixed-width fast path reads what chrono's formats read, and leaves to them only
        /// what it does not take (a leap second, `:60`).
        #[test]
        fn the_fast_path_agrees_with_the_general_parsers(
            year in 1990u32..2100, month in 0u32..14, day in 0u32..33,
            hour in 0u32..26, minute in 0u32..62, second in proptest::option::of(0u32..62),
            t in proptest::bool::ANY,
        ) {
            let sep = if t { 'T' } else { ' ' };
            let mut text = format!("{year:04}-{month:02}-{day:02}{sep}{hour:02}:{minute:02}");
            let format = if let Some(s) = second {
                text.push_str(&format!(":{s:02}"));
                format!("%Y-%m-%d{sep}%H:%M:%S")
            } else {
                format!("%Y-%m-%d{sep}%H:%M")
            };
            let general = NaiveDateTime::parse_from_str(&text, &format).ok();
            match fixed_width_local(&text) {
                Some(fast) => proptest::prop_assert_eq!(Some(fast), general),
                None => proptest::prop_assert!(general.is_none() || second == Some(60)),
            }
        }
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
