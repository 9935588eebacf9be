//! Finding the earliest permitted instant: window ∩ legal hours ∩ dayparts, before the deadline,
//! within the caps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::calendar::{self, instant, local_date, open_pieces};
use super::caps::{Blocked, Caps};
use super::daypart::Daypart;
use crate::campaign::WeeklyWindow;

/// How many cap or calendar jumps a search may take; far beyond any real campaign's horizon.
const MAX_JUMPS: usize = 5_000;

/// More than any DST shift (at most 2 h anywhere), in minutes.
const SKIP_MARGIN_MIN: u16 = 180;

pub(super) struct Search<'a> {
    pub window: &'a WeeklyWindow,
    pub zone: Tz,
    pub deadline: DateTime<Utc>,
    pub caps: Caps,
}

pub(super) struct Found {
    pub at: DateTime<Utc>,
    pub daypart: Daypart,
    /// What pushed the slot later than the earliest bound, in words, each once.
    pub delays: Vec<String>,
}

impl Search<'_> {
    /// The earliest permitted instant at or after `from` in one of `parts`.
    pub fn earliest(&self, from: DateTime<Utc>, parts: &[Daypart]) -> Option<Found> {
        let mut delays = Vec::new();
        let mut t = from;
        for _ in 0..MAX_JUMPS {
            let (at, daypart) = self.next_open(t, parts, &mut delays)?;
            match self.caps.check(at) {
                Ok(()) => {
                    return Some(Found {
                        at,
                        daypart,
                        delays,
                    });
                }
                Err(Blocked::Day { retry_at }) => {
                    note(
                        &mut delays,
                        format!(
                            "daily cap of {} reached on {}",
                            self.caps.per_day(),
                            local_date(self.zone, at)
                        ),
                    );
                    t = retry_at;
                }
                Err(Blocked::Week { retry_at }) => {
                    note(
                        &mut delays,
                        format!("weekly cap of {} in 7 days reached", self.caps.per_week()),
                    );
                    t = retry_at;
                }
            }
        }
        None
    }

    /// The earliest slot in the least-tried parts of the day that have one before the deadline.
    pub fn rotated(&self, from: DateTime<Utc>, tried: &BTreeMap<Daypart, u32>) -> Option<Found> {
        let count = |p: &Daypart| tried.get(p).copied().unwrap_or(0);
        let mut levels: Vec<u32> = Daypart::ALL.iter().map(count).collect();
        levels.sort_unstable();
        levels.dedup();
        for level in levels {
            let parts: Vec<Daypart> = Daypart::ALL
                .into_iter()
                .filter(|p| count(p) <= level)
                .collect();
            if let Some(found) = self.earliest(from, &parts) {
                return Some(found);
            }
        }
        None
    }

    /// The earliest instant at or after `t` inside an open piece of one of `parts`, ignoring caps.
    fn next_open(
        &self,
        t: DateTime<Utc>,
        parts: &[Daypart],
        delays: &mut Vec<String>,
    ) -> Option<(DateTime<Utc>, Daypart)> {
        if t >= self.deadline {
            return None;
        }
        let last = local_date(self.zone, self.deadline);
        let first = local_date(self.zone, t);
        let mut date = first;
        while date <= last {
            if self.window.closed.contains(&date)
                && !self
                    .window
                    .ranges(chrono::Datelike::weekday(&date))
                    .is_empty()
            {
                note(delays, format!("closed on {date}"));
            }
            // Pieces that ended hours before `t` on its own date need no conversion to UTC (the
            // margin covers any DST shift); every other piece is compared as instants.
            let minute_of_t = if date == first {
                calendar::local_minute(self.zone, t)
            } else {
                0
            };
            for (piece, part) in open_pieces(self.window, date) {
                if !parts.contains(&part) || piece.end + SKIP_MARGIN_MIN <= minute_of_t {
                    continue;
                }
                let (start, end) = (
                    instant(self.zone, date, piece.start),
                    instant(self.zone, date, piece.end),
                );
                let at = start.max(t);
                if at >= self.deadline {
                    return None;
                }
                if at < end {
                    if at > t {
                        note(delays, self.why_not(t));
                    }
                    return Some((at, part));
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

impl Search<'_> {
    /// Why `t` itself was not taken, in words.
    fn why_not(&self, t: DateTime<Utc>) -> String {
        let minute = calendar::local_minute(self.zone, t);
        let date = local_date(self.zone, t);
        if open_pieces(self.window, date)
            .iter()
            .any(|(piece, _)| piece.contains(minute))
        {
            "waiting for a part of the day not tried yet".to_string()
        } else if calendar::LEGAL_HOURS.contains(minute) {
            "outside the calling window".to_string()
        } else {
            "outside the window and legal hours 08:00-21:00".to_string()
        }
    }
}

fn note(delays: &mut Vec<String>, text: String) {
    if !delays.contains(&text) {
        delays.push(text);
    }
}
