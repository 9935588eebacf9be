//! Time zones as places. Quiet hours and calling windows are the patient's wall-clock time,
//! which only a place's zone gives, with its summer time. A zone named by an offset or an
//! abbreviation (`EST`, `GMT`, `Etc/GMT+5`) keeps none: in July, 20:30 "EST" is 21:30 in New
//! York, and a call planned for it would break the quiet hours.

use chrono_tz::Tz;

/// The IANA zones that are a fixed offset from UTC rather than a place (tzdata's `etcetera`
/// file and the abbreviations kept for old systems).
const FIXED: [&str; 12] = [
    "GMT",
    "GMT0",
    "GMT+0",
    "GMT-0",
    "Greenwich",
    "UTC",
    "UCT",
    "Universal",
    "Zulu",
    "EST",
    "MST",
    "HST",
];

/// The zone of a place, by its IANA name; what is wrong with `name` otherwise.
pub fn place(name: &str) -> Result<Tz, String> {
    let zone = name
        .parse::<Tz>()
        .map_err(|_| format!("unknown IANA time zone {name:?} (e.g. \"Europe/Madrid\")"))?;
    if name.starts_with("Etc/") || name == "Factory" || FIXED.contains(&name) {
        return Err(format!(
            "{name:?} is a fixed offset from UTC, not a place: it keeps no summer time, so calls could fall outside 08:00-21:00 where the patient is; name the place (e.g. \"America/New_York\", \"Europe/London\")"
        ));
    }
    Ok(zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_zones_and_offsets_are_not() {
        for name in [
            "Europe/Madrid",
            "America/New_York",
            "US/Eastern",
            "CET",
            "EST5EDT",
        ] {
            assert_eq!(place(name).map(|z| z.name()), Ok(name), "{name}");
        }
        for name in [
            "EST",
            "MST",
            "HST",
            "GMT",
            "UTC",
            "Etc/GMT+5",
            "Etc/UTC",
            "Zulu",
        ] {
            let error = place(name).unwrap_err();
            assert!(error.contains("not a place"), "{name}: {error}");
        }
        assert_eq!(
            place("Europe/Gracia"),
            Err("unknown IANA time zone \"Europe/Gracia\" (e.g. \"Europe/Madrid\")".into())
        );
    }

    /// Every zone the list names is a fixed offset indeed: the same in January and in July.
    #[test]
    fn the_zones_refused_keep_no_summer_time() {
        use chrono::{Offset, TimeZone};
        for name in FIXED {
            let zone: Tz = name.parse().unwrap();
            let offset = |m| {
                zone.with_ymd_and_hms(2027, m, 1, 12, 0, 0)
                    .unwrap()
                    .offset()
                    .fix()
            };
            assert_eq!(offset(1), offset(7), "{name}");
        }
    }
}
