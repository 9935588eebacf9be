//! Weekly calling windows: which local times of which weekdays a campaign may call.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{NaiveDate, Weekday};

/// A range of local clock time inside one day, in minutes since midnight, `start < end ≤ 24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeRange {
    pub start: u16,
    pub end: u16,
}

impl TimeRange {
    pub fn new(start: u16, end: u16) -> Option<TimeRange> {
        (start < end && end <= 24 * 60).then_some(TimeRange { start, end })
    }

    pub fn intersect(self, other: TimeRange) -> Option<TimeRange> {
        TimeRange::new(self.start.max(other.start), self.end.min(other.end))
    }

    pub fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

pub fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The campaign's `[window]`: ranges per weekday and the closed dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeeklyWindow {
    days: [Vec<TimeRange>; 7],
    pub closed: BTreeSet<NaiveDate>,
}

impl WeeklyWindow {
    /// Sets the ranges of one weekday; overlapping ranges are merged.
    pub fn set(&mut self, day: Weekday, mut ranges: Vec<TimeRange>) {
        ranges.sort();
        let mut merged: Vec<TimeRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        self.days[day.num_days_from_monday() as usize] = merged;
    }

    pub fn ranges(&self, day: Weekday) -> &[TimeRange] {
        &self.days[day.num_days_from_monday() as usize]
    }

    /// The ranges open on a date: none on a closed date.
    pub fn ranges_on(&self, date: NaiveDate) -> &[TimeRange] {
        use chrono::Datelike;
        if self.closed.contains(&date) {
            return &[];
        }
        self.ranges(date.weekday())
    }

    pub fn is_empty(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }
}

/// Parse a window key: `mon`, `mon-fri`, `sat,sun`, `mon-wed,fri`.
pub fn parse_days(key: &str) -> Result<Vec<Weekday>, String> {
    let mut days = Vec::new();
    for part in key.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (weekday(from)?, weekday(to)?);
                let mut day = from;
                loop {
                    days.push(day);
                    if day == to {
                        break;
                    }
                    day = day.succ();
                }
            }
            None => days.push(weekday(part)?),
        }
    }
    Ok(days)
}

fn weekday(text: &str) -> Result<Weekday, String> {
    let day = match text.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => {
            return Err(format!(
                "unknown weekday {text:?} (use mon, tue, wed, thu, fri, sat, sun)"
            ));
        }
    };
    Ok(day)
}

/// Parse a window value: `"09:00-20:00"` or `"09:00-13:00, 16:00-20:00"`.
pub fn parse_ranges(text: &str) -> Result<Vec<TimeRange>, String> {
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (from, to) = part
            .split_once('-')
            .ok_or_else(|| format!("malformed range {part:?}: write \"HH:MM-HH:MM\""))?;
        let (start, end) = (clock(from, false)?, clock(to, true)?);
        let range = TimeRange::new(start, end)
            .ok_or_else(|| format!("inverted range {part:?}: the end must come after the start"))?;
        ranges.push(range);
    }
    Ok(ranges)
}

fn clock(text: &str, allow_midnight_end: bool) -> Result<u16, String> {
    let text = text.trim();
    let bad = || format!("malformed time {text:?}: write HH:MM, 00:00 to 23:59");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h == 24 && m == 0 && allow_midnight_end) || (h < 24 && m < 60) {
        Ok(h * 60 + m)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges_and_lists_expand() {
        assert_eq!(parse_days("mon-fri").unwrap().len(), 5);
        assert_eq!(
            parse_days("sat,sun").unwrap(),
            vec![Weekday::Sat, Weekday::Sun]
        );
        assert_eq!(parse_days("fri-mon").unwrap().len(), 4);
        assert!(parse_days("mon-fryday").is_err());
    }

    #[test]
    fn ranges_parse_and_reject_inversions_and_bad_clocks() {
        assert_eq!(parse_ranges("09:00-13:00, 15:00-20:00").unwrap().len(), 2);
        assert!(
            parse_ranges("20:00-09:00")
                .unwrap_err()
                .contains("inverted")
        );
        assert!(parse_ranges("09:00-25:00").is_err());
        assert!(parse_ranges("9-17").is_err());
        assert!(parse_ranges("09:00").is_err());
        assert_eq!(parse_ranges("18:00-24:00").unwrap()[0].end, 1440);
    }

    #[test]
    fn overlapping_ranges_of_a_day_merge() {
        let mut w = WeeklyWindow::default();
        w.set(
            Weekday::Mon,
            parse_ranges("09:00-12:00,11:00-14:00").unwrap(),
        );
        assert_eq!(
            w.ranges(Weekday::Mon),
            &[TimeRange {
                start: 540,
                end: 840
            }]
        );
    }
}
