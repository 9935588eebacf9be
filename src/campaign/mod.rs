//! Campaigns: the TOML files admins write, parsed into values that cannot be wrong.

pub mod duration;
pub mod encoding;
mod import_table;
pub mod load;
pub mod messages;
mod messages_table;
mod parse;
mod reader;
pub mod render;
pub mod sms;
pub mod time_format;
pub mod window;

use std::collections::BTreeMap;

use chrono::TimeDelta;
use chrono_tz::Tz;

use crate::phone::Phone;
pub use encoding::Encoding;
pub use load::{Catalog, Diagnostic, load_dir, parse_campaign};
pub use messages::{Messages, Placeholder, Template};
pub use time_format::TimeFormat;
pub use window::{TimeRange, WeeklyWindow};

/// A validated campaign. The id is the file name without `.toml`.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub clinic: String,
    pub kind: Kind,
    pub timezone: Tz,
    pub country: phonenumber::country::Id,
    pub caller_id: Phone,
    pub clinic_phone: Phone,
    pub default_language: String,
    pub window: WeeklyWindow,
    pub retry: RetryRules,
    pub pacing: Pacing,
    pub sms: Option<SmsRules>,
    pub messages: BTreeMap<String, Messages>,
    pub import: ImportRules,
}

/// `[import]`: how the clinic's exports are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRules {
    pub columns: ColumnMap,
    /// How the export writes `starts_at`, besides RFC 3339 and `YYYY-MM-DD HH:MM`.
    pub starts_at_format: Option<TimeFormat>,
    pub encoding: Encoding,
}

/// Reminder or callback, with the rules only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Reminder(ReminderRules),
    Callback(CallbackRules),
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Reminder(_) => "reminder",
            Kind::Callback(_) => "callback",
        }
    }
}

/// `[reminder]`: how long before the appointment calls may start and must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderRules {
    pub start: TimeDelta,
    pub stop: TimeDelta,
}

/// `[callback]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackRules {
    pub connect: Connect,
    pub agents: u32,
    pub expire_after: TimeDelta,
}

/// Who a callback rings first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    AgentFirst,
    PatientFirst,
}

/// `[retry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRules {
    pub max_calls: u32,
    /// Least time after call 1, 2, 3 …; the last one repeats. Never empty.
    pub gaps: Vec<TimeDelta>,
    pub rotate_dayparts: bool,
    pub max_calls_per_day: u32,
    pub max_calls_per_week: u32,
}

impl RetryRules {
    /// The least time after the `n`th call (1-based).
    pub fn gap_after(&self, n: u32) -> TimeDelta {
        let i = (n.max(1) as usize - 1).min(self.gaps.len() - 1);
        self.gaps[i]
    }
}

/// `[pacing]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    pub calls_per_second: f64,
    pub burst: u32,
    pub max_concurrent_calls: u32,
}

/// `[sms]`: when the SMS fallback is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsRules {
    /// After this many unanswered calls; 0 = SMS first; `None` = not after calls.
    pub after_calls: Option<u32>,
    pub on_voicemail: bool,
}

/// The columns of an appointment list (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    AppointmentId,
    PatientId,
    FirstName,
    LastName,
    Phone,
    StartsAt,
    Timezone,
    Language,
    Provider,
    Location,
    Status,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::AppointmentId,
        Column::PatientId,
        Column::FirstName,
        Column::LastName,
        Column::Phone,
        Column::StartsAt,
        Column::Timezone,
        Column::Language,
        Column::Provider,
        Column::Location,
        Column::Status,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::AppointmentId => "appointment_id",
            Column::PatientId => "patient_id",
            Column::FirstName => "first_name",
            Column::LastName => "last_name",
            Column::Phone => "phone",
            Column::StartsAt => "starts_at",
            Column::Timezone => "timezone",
            Column::Language => "language",
            Column::Provider => "provider",
            Column::Location => "location",
            Column::Status => "status",
        }
    }

    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn required(self) -> bool {
        matches!(
            self,
            Column::AppointmentId
                | Column::PatientId
                | Column::FirstName
                | Column::Phone
                | Column::StartsAt
        )
    }
}

/// `[import.columns]`: the export's own header for each column that is named differently.
/// `starts_at` may name two, when the export writes the date and the time in columns apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap {
    pub headers: BTreeMap<Column, String>,
    /// The time column that completes the date in `starts_at`'s own.
    pub starts_at_time: Option<String>,
}

impl ColumnMap {
    /// The header that carries `column` in this campaign's exports.
    pub fn header(&self, column: Column) -> &str {
        self.headers
            .get(&column)
            .map_or(column.name(), String::as_str)
    }
}

impl Campaign {
    /// The messages in `language`, else in its primary language (`es` for `es-es`, as an EHR
    /// may write it), else in the default language.
    pub fn messages_for(&self, language: &str) -> (&str, &Messages) {
        let primary = language.split('-').next().unwrap_or(language);
        match self
            .messages
            .get_key_value(language)
            .or_else(|| self.messages.get_key_value(primary))
        {
            Some((lang, m)) => (lang, m),
            None => {
                let lang = self.default_language.as_str();
                (lang, &self.messages[lang])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_are_found_by_the_primary_language_of_a_regional_tag() {
        let src = include_str!("../../campaigns/reminders.toml");
        let campaign = super::parse_campaign("reminders", "reminders.toml".as_ref(), src)
            .campaign
            .unwrap();
        assert_eq!(campaign.messages_for("es").0, "es");
        assert_eq!(campaign.messages_for("es-es").0, "es");
        assert_eq!(campaign.messages_for("en-us").0, "en");
        // A language the campaign has no messages in: its default.
        assert_eq!(campaign.messages_for("fr-fr").0, campaign.default_language);
    }
}
