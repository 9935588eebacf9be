//! Telephony providers: a Twilio-compatible REST client and an in-process simulator. A provider
//! knows no database and no queue; it places calls and reports what it was told.

pub mod signature;
pub mod simulator;
pub mod twilio;
pub mod twiml;

use std::time::Duration;

use crate::phone::Phone;

/// One call to place.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub attempt_id: String,
    pub to: Phone,
    pub from: Phone,
    /// Fetched when the call is answered; answers with TwiML.
    pub answer_url: String,
    /// Receives the call's status callbacks.
    pub status_url: String,
    /// Seconds to let it ring.
    pub ring_timeout_s: u32,
    /// Ask the provider whether a person or a machine answered (not for a clinic's own line).
    pub detect_machine: bool,
}

/// What happened to a call request, in terms of what ringback must do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The number cannot be called (21211, 21214, 21217): stop, record, follow up.
    #[error("invalid number (provider error {code})")]
    InvalidNumber { code: String },
    /// The number cannot take this channel (21614: not a mobile, for SMS): final for the number
    /// and the channel; the outreach goes on by the others.
    #[error("the number cannot take this channel (provider error {code})")]
    WrongChannel { code: String },
    /// The number has unsubscribed with the provider (21610): the opt-out ledger takes it.
    #[error("number opted out with the provider (error {code})")]
    OptedOut { code: String },
    /// The provider did not take the call (429, 5xx, refused connection, other rejections):
    /// place the same attempt again later.
    #[error("provider did not take the call: {reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The request went out but no clear answer came back (timeout, garbage): the call may
    /// exist, so it is never placed again; its status callback or a later reconcile settles it.
    #[error("provider answer unclear: {reason}")]
    Unclear { reason: String },
}

/// A call the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub provider_id: String,
}

/// One SMS to send.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    pub attempt_id: String,
    pub to: Phone,
    pub from: Phone,
    pub body: String,
    pub status_url: String,
}

/// The provider ringback talks to.
pub enum Provider {
    Twilio(twilio::TwilioClient),
    Simulator(simulator::Simulator),
}

impl Provider {
    pub async fn place_call(&self, req: &CallRequest) -> Result<Placed, ProviderError> {
        match self {
            Provider::Twilio(c) => c.place_call(req).await,
            Provider::Simulator(s) => s.place_call(req).await,
        }
    }

    pub async fn send_sms(&self, req: &SmsRequest) -> Result<Placed, ProviderError> {
        match self {
            Provider::Twilio(c) => c.send_sms(req).await,
            Provider::Simulator(s) => s.send_sms(req).await,
        }
    }

    /// The token webhooks are signed with (none for the simulator, which posts no webhooks).
    pub fn auth_token(&self) -> Option<&crate::config::Secret> {
        match self {
            Provider::Twilio(c) => Some(c.auth_token()),
            Provider::Simulator(_) => None,
        }
    }
}
