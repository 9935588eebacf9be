//! Durations as campaign files write them: `90s`, `15m`, `2h`, `1d`, `1h30m`, `2w`.

use chrono::TimeDelta;

/// Parse a campaign duration. Units: `s`, `m`, `h`, `d`, `w`; several may follow each other.
pub fn parse(text: &str) -> Result<TimeDelta, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration (write e.g. \"15m\", \"2h\", \"1d\")".into());
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "bad duration {text:?}: unknown unit {c:?} (use s, m, h, d, w)"
                ));
            }
        };
        let n: i64 = number
            .parse()
            .map_err(|_| format!("bad duration {text:?}: a number must come before {c:?}"))?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .filter(|s| *s <= 366 * 86_400)
            .ok_or_else(|| format!("bad duration {text:?}: longer than a year"))?;
    }
    if !number.is_empty() {
        return Err(format!(
            "bad duration {text:?}: the number {number} has no unit (s, m, h, d, w)"
        ));
    }
    Ok(TimeDelta::seconds(total))
}

/// Format a duration the way campaign files write it.
pub fn format(d: TimeDelta) -> String {
    let mut secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations_parse() {
        assert_eq!(parse("15m").unwrap(), TimeDelta::minutes(15));
        assert_eq!(parse("1h30m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse("2w").unwrap(), TimeDelta::days(14));
        assert_eq!(parse("45s").unwrap(), TimeDelta::seconds(45));
    }

    #[test]
    fn malformed_durations_are_errors() {
        for bad in ["", "15", "m", "1x", "-1h", "1.5h", "400d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["15m", "1h30m", "2d", "45s", "1d2h"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
