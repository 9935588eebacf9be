//! Local time in a patient's zone: turning local clock times into instants (DST decided here,
//! and only here) and listing the open intervals of a local date.

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

use super::daypart::Daypart;
use crate::campaign::WeeklyWindow;
use crate::campaign::window::TimeRange;

/// Legal quiet hours: calls only from 08:00 to 21:00 local, whatever a campaign says.
pub const LEGAL_HOURS: TimeRange = TimeRange {
    start: 8 * 60,
    end: 21 * 60,
};

/// The instant of a local date and clock minute (`0..=1440`) in `zone`.
///
/// A local time that does not exist (the DST gap) moves forward to the first instant after the
/// gap; one that happens twice (the DST overlap) takes the earlier instant.
pub fn instant(zone: Tz, date: NaiveDate, minute: u16) -> DateTime<Utc> {
    let local = date.and_time(NaiveTime::MIN) + TimeDelta::minutes(minute.into());
    resolve(zone, local)
}

pub fn resolve(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // Inside a gap: the gap ends at the first local minute that exists again.
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += TimeDelta::minutes(1);
                if let Some(t) = zone.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

/// The local date of an instant in `zone`.
pub fn local_date(zone: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&zone).date_naive()
}

/// The local clock minute (0..1440) of an instant in `zone`.
pub fn local_minute(zone: Tz, t: DateTime<Utc>) -> u16 {
    use chrono::Timelike;
    let local = t.with_timezone(&zone);
    (local.hour() * 60 + local.minute()) as u16
}

/// The first instant of the local day after `t`'s.
pub fn next_day_start(zone: Tz, t: DateTime<Utc>) -> DateTime<Utc> {
    let next = local_date(zone, t).succ_opt().unwrap_or(NaiveDate::MAX);
    instant(zone, next, 0)
}

/// The ranges of a local date in which a call may be placed: the window ∩ legal hours, cut at
/// daypart boundaries so each piece belongs to one daypart, in time order.
pub fn open_pieces(window: &WeeklyWindow, date: NaiveDate) -> Vec<(TimeRange, Daypart)> {
    let mut pieces = Vec::new();
    for range in window.ranges_on(date) {
        let Some(legal) = range.intersect(LEGAL_HOURS) else {
            continue;
        };
        for part in Daypart::ALL {
            if let Some(piece) = legal.intersect(part.range()) {
                pieces.push((piece, part));
            }
        }
    }
    pieces.sort_by_key(|(r, _)| r.start);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Australia::Lord_Howe, Europe::Madrid};

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_to_the_end_of_the_gap() {
        let d = NaiveDate::from_ymd_opt(2027, 3, 28).unwrap();
        assert_eq!(instant(Madrid, d, 2 * 60 + 30), utc("2027-03-28T01:00:00Z"));
        assert_eq!(instant(Madrid, d, 3 * 60), utc("2027-03-28T01:00:00Z"));
    }

    #[test]
    fn a_time_in_the_autumn_overlap_takes_the_earlier_instant() {
        let d = NaiveDate::from_ymd_opt(2027, 10, 31).unwrap();
        assert_eq!(instant(Madrid, d, 2 * 60 + 30), utc("2027-10-31T00:30:00Z"));
    }

    #[test]
    fn lord_howe_half_hour_gap_moves_forward_half_an_hour() {
        // Lord Howe goes from +10:30 to +11 at 02:00 local on the first Sunday of October.
        let d = NaiveDate::from_ymd_opt(2027, 10, 3).unwrap();
        let t = instant(Lord_Howe, d, 2 * 60 + 10);
        assert_eq!(
            t.with_timezone(&Lord_Howe).format("%H:%M").to_string(),
            "02:30"
        );
    }
}
