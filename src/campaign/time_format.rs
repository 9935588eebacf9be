//! `[import] starts_at_format`: how an export writes the appointment's date and time, when it is
//! not RFC 3339 or `YYYY-MM-DD HH:MM` (`03/12/2026 10:00` in much of Europe, `12/03/2026 10:00 AM`
//! in the US). The two are ambiguous between themselves, so the campaign says which it is.

use std::fmt::Write;

use chrono::format::{Item, ParseErrorKind, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::plan::calendar;

/// A strftime format that writes a whole date and a time to the minute, and reads them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    format: String,
    /// The format carries its own UTC offset (`%z`, `%:z` …): the zone does not apply.
    offset: bool,
}

/// Why a text did not read as a time in the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// It has the format's shape, but no such date or time exists (31 February, 25:00).
    NoSuchTime,
    /// It is not in the format at all.
    Shape,
}

impl TimeFormat {
    pub fn new(format: &str) -> Result<TimeFormat, String> {
        if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
            return Err("not a strftime format (e.g. \"%d/%m/%Y %H:%M\")".into());
        }
        // A moment whose every field differs from the others, written and read back: a format
        // that loses the year, the minutes or the afternoon does not come back to it.
        let local = NaiveDate::from_ymd_opt(2027, 3, 14)
            .and_then(|d| d.and_hms_opt(17, 45, 0))
            .ok_or("sample date")?;
        let zone = FixedOffset::east_opt(2 * 3600).ok_or("sample offset")?;
        let sample = zone
            .from_local_datetime(&local)
            .single()
            .ok_or("sample time")?;
        let mut text = String::new();
        if write!(text, "{}", sample.format(format)).is_err() {
            return Err("writes something no date and time has".into());
        }
        let whole = "must write the whole date and the time to the minute (e.g. \"%d/%m/%Y %H:%M\", \"%m/%d/%Y %I:%M %p\")";
        if DateTime::parse_from_str(&text, format).is_ok_and(|t| t == sample) {
            return Ok(TimeFormat {
                format: format.to_string(),
                offset: true,
            });
        }
        match NaiveDateTime::parse_from_str(&text, format) {
            Ok(read) if read == local => Ok(TimeFormat {
                format: format.to_string(),
                offset: false,
            }),
            _ => Err(whole.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.format
    }

    /// Read `text`; a time without an offset is local to `zone` (a time in a DST gap moves
    /// forward, an ambiguous one takes the earlier instant).
    pub fn read(&self, text: &str, zone: Tz) -> Result<DateTime<Utc>, Unreadable> {
        let why = |e: chrono::ParseError| match e.kind() {
            ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => Unreadable::NoSuchTime,
            _ => Unreadable::Shape,
        };
        if self.offset {
            DateTime::parse_from_str(text, &self.format)
                .map(|t| t.with_timezone(&Utc))
                .map_err(why)
        } else {
            NaiveDateTime::parse_from_str(text, &self.format)
                .map(|local| calendar::resolve(zone, local))
                .map_err(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Madrid;

    #[test]
    fn day_first_and_month_first_exports_read_in_the_zone() {
        let european = TimeFormat::new("%d/%m/%Y %H:%M").unwrap();
        assert_eq!(
            european
                .read("03/12/2026 10:00", Madrid)
                .unwrap()
                .to_rfc3339(),
            "2026-12-03T09:00:00+00:00"
        );
        let us = TimeFormat::new("%m/%d/%Y %I:%M %p").unwrap();
        assert_eq!(
            us.read("12/03/2026 04:30 PM", Madrid).unwrap().to_rfc3339(),
            "2026-12-03T15:30:00+00:00"
        );
        let offset = TimeFormat::new("%d.%m.%Y %H:%M %z").unwrap();
        assert_eq!(
            offset
                .read("03.12.2026 10:00 -0500", Madrid)
                .unwrap()
                .to_rfc3339(),
            "2026-12-03T15:00:00+00:00"
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_to_its_end() {
        let format = TimeFormat::new("%d/%m/%Y %H:%M").unwrap();
        // 02:30 does not exist in Madrid that night: the clocks go from 02:00 to 03:00 CEST.
        assert_eq!(
            format
                .read("28/03/2027 02:30", Madrid)
                .unwrap()
                .to_rfc3339(),
            "2027-03-28T01:00:00+00:00"
        );
    }

    #[test]
    fn an_impossible_date_is_told_apart_from_a_wrong_shape() {
        let format = TimeFormat::new("%d/%m/%Y %H:%M").unwrap();
        assert_eq!(
            format.read("31/02/2027 10:00", Madrid),
            Err(Unreadable::NoSuchTime)
        );
        assert_eq!(
            format.read("2027-02-01 10:00", Madrid),
            Err(Unreadable::Shape)
        );
        assert_eq!(format.read("tomorrow", Madrid), Err(Unreadable::Shape));
    }

    #[test]
    fn formats_that_lose_part_of_the_moment_are_refused() {
        for lossy in [
            "%d/%m %H:%M",       // no year
            "%d/%m/%Y",          // no time
            "%d/%m/%Y %H",       // no minutes
            "%d/%m/%Y %I:%M",    // no AM/PM
            "%Y-%m-%d %H:%M %Q", // not a specifier
            "",
        ] {
            assert!(TimeFormat::new(lossy).is_err(), "{lossy:?}");
        }
        for whole in ["%d/%m/%Y %H:%M", "%d/%m/%y %H:%M:%S", "%Y%m%d%H%M"] {
            assert!(TimeFormat::new(whole).is_ok(), "{whole:?}");
        }
    }
}
