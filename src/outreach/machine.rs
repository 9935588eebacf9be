//! The outreach state machine: provider events in, outcomes and follow-ups out. Pure: the caller
//! loads the facts, applies the decision, and asks the planner for the next attempt.

use serde::Serialize;

use super::Outcome;
use crate::campaign::Connect;

/// A call's status as the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    pub fn parse(s: &str) -> Option<CallStatus> {
        Some(match s {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "ringing" => CallStatus::Ringing,
            "in-progress" | "answered" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "no-answer" => CallStatus::NoAnswer,
            "failed" => CallStatus::Failed,
            "canceled" => CallStatus::Canceled,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() == 4
    }

    /// Statuses only move forward: a late `ringing` never undoes `completed`.
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Initiated => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            _ => 4,
        }
    }
}

/// Who answered, as machine detection (`AnsweredBy`) reports it.
/// A message's status as the provider reports it; like a call's, it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl SmsStatus {
    pub fn parse(s: &str) -> Option<SmsStatus> {
        Some(match s {
            "accepted" | "scheduled" | "queued" => SmsStatus::Queued,
            "sending" => SmsStatus::Sending,
            "sent" => SmsStatus::Sent,
            "delivered" | "read" => SmsStatus::Delivered,
            "undelivered" => SmsStatus::Undelivered,
            "failed" | "canceled" => SmsStatus::Failed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Sending => "sending",
            SmsStatus::Sent => "sent",
            SmsStatus::Delivered => "delivered",
            SmsStatus::Undelivered => "undelivered",
            SmsStatus::Failed => "failed",
        }
    }

    /// 0 … 4, final at 4 (never 3, which marks a call answered).
    pub fn rank(self) -> u8 {
        match self {
            SmsStatus::Queued => 0,
            SmsStatus::Sending => 1,
            SmsStatus::Sent => 2,
            _ => 4,
        }
    }
}

/// What a failed message's error code means for the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsFailure {
    /// 21610: the number unsubscribed (replied STOP to the sender): the opt-out ledger.
    OptedOut,
    /// 21614, 30006: not a mobile, a landline: no more SMS to this number.
    NoSms,
    /// 21211: not a valid number at all.
    InvalidNumber,
    /// Anything else (unreachable handset, carrier trouble): nothing final.
    Other,
}

impl SmsFailure {
    pub fn of(code: Option<&str>) -> SmsFailure {
        match code {
            Some("21610") => SmsFailure::OptedOut,
            Some("21614" | "30006") => SmsFailure::NoSms,
            Some("21211") => SmsFailure::InvalidNumber,
            _ => SmsFailure::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    Human,
    Machine,
}

impl Answerer {
    /// `human` and `unknown` (detection could not tell) get the person's message; machines and
    /// fax get the voicemail.
    pub fn parse(answered_by: Option<&str>) -> Answerer {
        match answered_by {
            Some(a) if a.starts_with("machine") || a == "fax" => Answerer::Machine,
            _ => Answerer::Human,
        }
    }
}

/// Why staff must act (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowupReason {
    RescheduleRequested,
    CancelRequested,
    Unreachable,
    InvalidNumber,
    PatientMessage,
    CallbackNotConnected,
    /// The outreach's deadline passed before a call could be placed (downtime, backlog).
    Expired,
}

impl FollowupReason {
    pub const ALL: [FollowupReason; 7] = [
        FollowupReason::RescheduleRequested,
        FollowupReason::CancelRequested,
        FollowupReason::Unreachable,
        FollowupReason::InvalidNumber,
        FollowupReason::PatientMessage,
        FollowupReason::CallbackNotConnected,
        FollowupReason::Expired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FollowupReason::RescheduleRequested => "reschedule_requested",
            FollowupReason::CancelRequested => "cancel_requested",
            FollowupReason::Unreachable => "unreachable",
            FollowupReason::InvalidNumber => "invalid_number",
            FollowupReason::PatientMessage => "patient_message",
            FollowupReason::CallbackNotConnected => "callback_not_connected",
            FollowupReason::Expired => "expired",
        }
    }
}

/// What a key press on a reminder means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPress {
    /// 1: confirmed.
    Confirm,
    /// 2: wants to cancel; staff follow up.
    Cancel,
    /// 3: wants to talk to staff: connected now if the clinic is open, else a follow-up.
    Staff,
    /// 9: no more calls, on any campaign.
    OptOut,
    /// Anything else: say the menu again.
    Unknown,
}

impl KeyPress {
    pub fn parse(digits: &str) -> KeyPress {
        match digits.trim().chars().next() {
            Some('1') => KeyPress::Confirm,
            Some('2') => KeyPress::Cancel,
            Some('3') => KeyPress::Staff,
            Some('9') => KeyPress::OptOut,
            _ => KeyPress::Unknown,
        }
    }

    /// The outcome and follow-up a key press ends a reminder with; `None` for an unknown key.
    pub fn outcome(self) -> Option<(Outcome, Option<FollowupReason>)> {
        match self {
            KeyPress::Confirm => Some((Outcome::Confirmed, None)),
            KeyPress::Cancel => Some((
                Outcome::CancelRequested,
                Some(FollowupReason::CancelRequested),
            )),
            KeyPress::Staff => Some((
                Outcome::RescheduleRequested,
                Some(FollowupReason::RescheduleRequested),
            )),
            KeyPress::OptOut => Some((Outcome::OptedOut, None)),
            KeyPress::Unknown => None,
        }
    }
}

/// What a finished call means for a reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCall {
    /// The outreach ends here.
    Finish(Outcome, Option<FollowupReason>),
    /// Nobody was reached: the planner decides the next attempt or the end.
    Retry,
}

/// A reminder call's final status, who answered, and any key pressed, to what happens next.
/// A reminder that reached a person or a machine is done: more calls would only annoy.
pub fn after_reminder_call(
    status: CallStatus,
    answerer: Option<Answerer>,
    digits: Option<&str>,
) -> AfterCall {
    if let Some((outcome, followup)) = digits.and_then(|d| KeyPress::parse(d).outcome()) {
        return AfterCall::Finish(outcome, followup);
    }
    match (status, answerer) {
        (CallStatus::Completed, Some(Answerer::Human)) => AfterCall::Finish(Outcome::Reached, None),
        (CallStatus::Completed, Some(Answerer::Machine)) => {
            AfterCall::Finish(Outcome::VoicemailLeft, None)
        }
        _ => AfterCall::Retry,
    }
}

/// What a callback's final call status leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCallback {
    Finish(Outcome, Option<FollowupReason>),
    /// Try the patient again, by the campaign's gaps.
    Retry,
    /// Agent first, and the clinic line did not answer: the patient's phone never rang, so this
    /// is no patient attempt; ring the clinic again shortly.
    ClinicUnavailable,
}

/// A callback call ended with `status`. `bridge` is the `<Dial>` leg's status (the patient when
/// agent first, the clinic line when patient first; `voicemail` when staff said so).
pub fn after_callback_call(
    connect: Connect,
    status: CallStatus,
    answerer: Option<Answerer>,
    bridge: Option<&str>,
) -> AfterCallback {
    let bridged = matches!(bridge, Some("completed" | "answered"));
    match connect {
        Connect::AgentFirst => match status {
            CallStatus::Completed if bridged => AfterCallback::Finish(Outcome::Connected, None),
            CallStatus::Completed => AfterCallback::Retry,
            _ => AfterCallback::ClinicUnavailable,
        },
        Connect::PatientFirst => match (status, answerer) {
            (CallStatus::Completed, Some(Answerer::Machine)) => AfterCallback::Retry,
            (CallStatus::Completed, _) if bridged => {
                AfterCallback::Finish(Outcome::Connected, None)
            }
            // The patient answered, and the clinic line did not: staff must call them.
            (CallStatus::Completed, Some(Answerer::Human)) => {
                AfterCallback::Finish(Outcome::Reached, Some(FollowupReason::CallbackNotConnected))
            }
            _ => AfterCallback::Retry,
        },
    }
}

/// How a callback ends when the planner has no attempt left: `voicemail_left` if a message was
/// left, and staff always hear of a callback that never connected.
pub fn callback_end(outcome: Outcome, voicemail_left: bool) -> (Outcome, Option<FollowupReason>) {
    match outcome {
        Outcome::Unreachable if voicemail_left => (
            Outcome::VoicemailLeft,
            Some(FollowupReason::CallbackNotConnected),
        ),
        Outcome::Unreachable | Outcome::Expired => {
            (outcome, Some(FollowupReason::CallbackNotConnected))
        }
        o => (o, followup_for_end(o)),
    }
}

/// The end the planner chose, with the follow-up staff need.
pub fn followup_for_end(outcome: Outcome) -> Option<FollowupReason> {
    match outcome {
        Outcome::Unreachable => Some(FollowupReason::Unreachable),
        Outcome::Expired => Some(FollowupReason::Expired),
        Outcome::InvalidNumber => Some(FollowupReason::InvalidNumber),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_end_a_reminder_with_their_outcome() {
        use CallStatus::Completed;
        let h = Some(Answerer::Human);
        assert_eq!(
            after_reminder_call(Completed, h, Some("1")),
            AfterCall::Finish(Outcome::Confirmed, None)
        );
        assert_eq!(
            after_reminder_call(Completed, h, Some("2")),
            AfterCall::Finish(
                Outcome::CancelRequested,
                Some(FollowupReason::CancelRequested)
            )
        );
        assert_eq!(
            after_reminder_call(Completed, h, Some("3")),
            AfterCall::Finish(
                Outcome::RescheduleRequested,
                Some(FollowupReason::RescheduleRequested)
            )
        );
        assert_eq!(
            after_reminder_call(Completed, h, Some("9")),
            AfterCall::Finish(Outcome::OptedOut, None)
        );
        assert_eq!(
            after_reminder_call(Completed, h, Some("7")),
            AfterCall::Finish(Outcome::Reached, None)
        );
    }

    #[test]
    fn a_person_or_a_machine_ends_a_reminder_and_silence_retries() {
        use CallStatus::*;
        assert_eq!(
            after_reminder_call(Completed, Some(Answerer::Human), None),
            AfterCall::Finish(Outcome::Reached, None)
        );
        assert_eq!(
            after_reminder_call(Completed, Some(Answerer::Machine), None),
            AfterCall::Finish(Outcome::VoicemailLeft, None)
        );
        for status in [NoAnswer, Busy, Failed, Canceled] {
            assert_eq!(after_reminder_call(status, None, None), AfterCall::Retry);
        }
    }

    #[test]
    fn statuses_rank_so_that_late_ones_never_go_back() {
        assert!(CallStatus::Ringing.rank() < CallStatus::Completed.rank());
        assert!(CallStatus::NoAnswer.is_final());
        assert_eq!(
            CallStatus::parse("in-progress"),
            Some(CallStatus::InProgress)
        );
        assert_eq!(
            Answerer::parse(Some("machine_end_silence")),
            Answerer::Machine
        );
        assert_eq!(Answerer::parse(Some("unknown")), Answerer::Human);
    }

    #[test]
    fn an_agent_first_callback_connects_only_when_the_patient_leg_completes() {
        use CallStatus::*;
        let a = Connect::AgentFirst;
        assert_eq!(
            after_callback_call(a, Completed, None, Some("completed")),
            AfterCallback::Finish(Outcome::Connected, None)
        );
        assert_eq!(
            after_callback_call(a, Completed, None, Some("no-answer")),
            AfterCallback::Retry
        );
        assert_eq!(
            after_callback_call(a, Completed, None, Some("voicemail")),
            AfterCallback::Retry
        );
        for clinic in [NoAnswer, Busy, Failed, Canceled] {
            assert_eq!(
                after_callback_call(a, clinic, None, None),
                AfterCallback::ClinicUnavailable
            );
        }
    }

    #[test]
    fn a_patient_first_callback_the_clinic_misses_goes_to_staff() {
        use CallStatus::*;
        let p = Connect::PatientFirst;
        let human = Some(Answerer::Human);
        assert_eq!(
            after_callback_call(p, Completed, human, Some("completed")),
            AfterCallback::Finish(Outcome::Connected, None)
        );
        assert_eq!(
            after_callback_call(p, Completed, human, Some("no-answer")),
            AfterCallback::Finish(Outcome::Reached, Some(FollowupReason::CallbackNotConnected))
        );
        assert_eq!(
            after_callback_call(p, Completed, Some(Answerer::Machine), None),
            AfterCallback::Retry
        );
        assert_eq!(
            after_callback_call(p, NoAnswer, None, None),
            AfterCallback::Retry
        );
    }

    #[test]
    fn a_callback_that_never_connected_always_reaches_staff() {
        let cnc = Some(FollowupReason::CallbackNotConnected);
        assert_eq!(
            callback_end(Outcome::Unreachable, true),
            (Outcome::VoicemailLeft, cnc)
        );
        assert_eq!(
            callback_end(Outcome::Unreachable, false),
            (Outcome::Unreachable, cnc)
        );
        assert_eq!(
            callback_end(Outcome::Expired, false),
            (Outcome::Expired, cnc)
        );
    }
}
