//! Parts of the day, so that a retry can reach a patient whose routine the first call missed.

use std::fmt;

use crate::campaign::window::TimeRange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Daypart {
    Morning,
    Midday,
    Afternoon,
    Evening,
}

impl Daypart {
    pub const ALL: [Daypart; 4] = [
        Daypart::Morning,
        Daypart::Midday,
        Daypart::Afternoon,
        Daypart::Evening,
    ];

    /// Morning 08–12, midday 12–15, afternoon 15–18, evening 18–21 (local).
    pub fn range(self) -> TimeRange {
        let (start, end) = match self {
            Daypart::Morning => (8, 12),
            Daypart::Midday => (12, 15),
            Daypart::Afternoon => (15, 18),
            Daypart::Evening => (18, 21),
        };
        TimeRange {
            start: start * 60,
            end: end * 60,
        }
    }

    /// The daypart of a local clock minute, if it falls inside legal hours.
    pub fn of_minute(minute: u16) -> Option<Daypart> {
        Daypart::ALL
            .into_iter()
            .find(|p| p.range().contains(minute))
    }

    pub fn name(self) -> &'static str {
        match self {
            Daypart::Morning => "morning",
            Daypart::Midday => "midday",
            Daypart::Afternoon => "afternoon",
            Daypart::Evening => "evening",
        }
    }

    pub fn parse(name: &str) -> Option<Daypart> {
        Daypart::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Daypart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
