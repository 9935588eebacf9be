//! Outreach: one campaign, one patient, one subject, and exactly one outcome at the end.

pub mod machine;
pub mod reply;

use std::fmt;

use serde::Serialize;

/// How an attempt reaches the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Voice,
    Sms,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "voice" => Some(Channel::Voice),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}

/// How an outreach ended (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Confirmed,
    CancelRequested,
    RescheduleRequested,
    Connected,
    Reached,
    VoicemailLeft,
    SmsSent,
    Unreachable,
    InvalidNumber,
    OptedOut,
    Withdrawn,
    Expired,
}

impl Outcome {
    pub const ALL: [Outcome; 12] = [
        Outcome::Confirmed,
        Outcome::CancelRequested,
        Outcome::RescheduleRequested,
        Outcome::Connected,
        Outcome::Reached,
        Outcome::VoicemailLeft,
        Outcome::SmsSent,
        Outcome::Unreachable,
        Outcome::InvalidNumber,
        Outcome::OptedOut,
        Outcome::Withdrawn,
        Outcome::Expired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::CancelRequested => "cancel_requested",
            Outcome::RescheduleRequested => "reschedule_requested",
            Outcome::Connected => "connected",
            Outcome::Reached => "reached",
            Outcome::VoicemailLeft => "voicemail_left",
            Outcome::SmsSent => "sms_sent",
            Outcome::Unreachable => "unreachable",
            Outcome::InvalidNumber => "invalid_number",
            Outcome::OptedOut => "opted_out",
            Outcome::Withdrawn => "withdrawn",
            Outcome::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == s)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
