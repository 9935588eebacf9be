//! Filling a message for one patient: dates and times written the way the language writes them.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use super::{Campaign, Placeholder, Template};

/// What a message may say about one patient and one appointment.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub first_name: String,
    pub last_name: Option<String>,
    pub appointment: Option<(DateTime<Utc>, Tz)>,
    pub provider: Option<String>,
    pub location: Option<String>,
}

/// Render `template` in `language` for `facts`.
pub fn render(template: &Template, campaign: &Campaign, language: &str, facts: &Facts) -> String {
    let local = facts.appointment.map(|(t, zone)| t.with_timezone(&zone));
    let lang = language.split('-').next().unwrap_or("en");
    template.render(|p| match p {
        Placeholder::FirstName => facts.first_name.clone(),
        Placeholder::LastName => facts.last_name.clone().unwrap_or_default(),
        Placeholder::Clinic => campaign.clinic.clone(),
        Placeholder::ClinicPhone => campaign.clinic_phone.to_string(),
        Placeholder::Date => local
            .map(|l| date(lang, l.day(), l.month()))
            .unwrap_or_default(),
        Placeholder::Time => local
            .map(|l| time(lang, l.hour(), l.minute()))
            .unwrap_or_default(),
        Placeholder::Weekday => local
            .map(|l| weekday(lang, l.weekday().num_days_from_monday()))
            .unwrap_or_default(),
        Placeholder::Provider => facts.provider.clone().unwrap_or_default(),
        Placeholder::Location => facts.location.clone().unwrap_or_default(),
    })
}

/// The longest way `lang` writes a date (the SMS length check uses it).
pub fn longest_date(lang: &str) -> String {
    longest((1..=12).flat_map(|m| (1..=31).map(move |d| date(lang, d, m))))
}

/// The longest way `lang` writes a time of day.
pub fn longest_time(lang: &str) -> String {
    longest((0..24).flat_map(|h| (0..60).map(move |m| time(lang, h, m))))
}

/// The longest weekday name in `lang`.
pub fn longest_weekday(lang: &str) -> String {
    longest((0..7).map(|d| weekday(lang, d)))
}

fn longest(texts: impl Iterator<Item = String>) -> String {
    texts
        .max_by_key(|t| t.encode_utf16().count())
        .unwrap_or_default()
}

fn date(lang: &str, day: u32, month: u32) -> String {
    let m = (month as usize).saturating_sub(1).min(11);
    match lang {
        "ca" => {
            const MONTHS: [&str; 12] = [
                "gener", "febrer", "març", "abril", "maig", "juny", "juliol", "agost", "setembre",
                "octubre", "novembre", "desembre",
            ];
            let de = if matches!(m, 3 | 7 | 9) { "d'" } else { "de " };
            format!("{day} {de}{}", MONTHS[m])
        }
        "es" => {
            const MONTHS: [&str; 12] = [
                "enero",
                "febrero",
                "marzo",
                "abril",
                "mayo",
                "junio",
                "julio",
                "agosto",
                "septiembre",
                "octubre",
                "noviembre",
                "diciembre",
            ];
            format!("{day} de {}", MONTHS[m])
        }
        "ru" => {
            const MONTHS: [&str; 12] = [
                "января",
                "февраля",
                "марта",
                "апреля",
                "мая",
                "июня",
                "июля",
                "августа",
                "сентября",
                "октября",
                "ноября",
                "декабря",
            ];
            format!("{day} {}", MONTHS[m])
        }
        "zh" => format!("{month}月{day}日"),
        _ => {
            const MONTHS: [&str; 12] = [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ];
            format!("{} {day}", MONTHS[m])
        }
    }
}

fn time(lang: &str, hour: u32, minute: u32) -> String {
    match lang {
        "en" => {
            let (h, half) = match hour {
                0 => (12, "AM"),
                1..=11 => (hour, "AM"),
                12 => (12, "PM"),
                _ => (hour - 12, "PM"),
            };
            format!("{h}:{minute:02} {half}")
        }
        "zh" => format!("{hour}点{minute:02}分"),
        _ => format!("{hour}:{minute:02}"),
    }
}

fn weekday(lang: &str, from_monday: u32) -> String {
    let d = from_monday.min(6) as usize;
    let names: [&str; 7] = match lang {
        "ca" => [
            "dilluns",
            "dimarts",
            "dimecres",
            "dijous",
            "divendres",
            "dissabte",
            "diumenge",
        ],
        "es" => [
            "lunes",
            "martes",
            "miércoles",
            "jueves",
            "viernes",
            "sábado",
            "domingo",
        ],
        "ru" => [
            "понедельник",
            "вторник",
            "среду",
            "четверг",
            "пятницу",
            "субботу",
            "воскресенье",
        ],
        "zh" => [
            "星期一",
            "星期二",
            "星期三",
            "星期四",
            "星期五",
            "星期六",
            "星期日",
        ],
        _ => [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ],
    };
    names[d].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_read_as_each_language_writes_them() {
        assert_eq!(date("ca", 1, 4), "1 d'abril");
        assert_eq!(date("ca", 2, 12), "2 de desembre");
        assert_eq!(date("es", 2, 12), "2 de diciembre");
        assert_eq!(date("en", 2, 12), "December 2");
        assert_eq!(time("en", 15, 5), "3:05 PM");
        assert_eq!(time("ca", 15, 5), "15:05");
        assert_eq!(weekday("es", 2), "miércoles");
    }
}
