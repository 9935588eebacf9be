//! What the benchmarks share.

use chrono::Utc;
use chrono_tz::Tz;

/// A zone where it is now between 09:00 and 18:00, so calls may be placed whenever a bench runs
/// (quiet hours apply to benchmarks too).
pub fn daytime_zone() -> Tz {
    [
        "Europe/Madrid",
        "America/New_York",
        "America/Los_Angeles",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Pacific/Auckland",
        "Europe/London",
        "Asia/Dubai",
    ]
    .iter()
    .filter_map(|z| z.parse::<Tz>().ok())
    .find(|z| (9 * 60..18 * 60).contains(&ringback::plan::calendar::local_minute(*z, Utc::now())))
    .unwrap_or(chrono_tz::Europe::Madrid)
}
