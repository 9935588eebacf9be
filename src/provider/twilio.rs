//! The Twilio REST API (2010-04-01), or any API that speaks it (SignalWire, test fakes).

use std::time::Duration;

use serde::Deserialize;

use super::{CallRequest, Placed, ProviderError, SmsRequest};
use crate::config::Secret;
use crate::outreach::Channel;

/// Call status events ringback asks to hear about.
pub const STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: Secret,
    /// SMS go out through this Messaging Service instead of from the campaign's number.
    messaging_service: Option<String>,
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
    status: Option<String>,
    answered_by: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<serde_json::Value>,
    message: Option<String>,
}

/// What the provider says of a call when asked (reconciling a lost status callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub status: String,
    pub answered_by: Option<String>,
    pub duration_s: Option<i64>,
}

impl TwilioClient {
    pub fn new(
        api_base: &str,
        account_sid: &str,
        auth_token: Secret,
        timeout: Duration,
    ) -> TwilioClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        TwilioClient {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token,
            messaging_service: None,
        }
    }

    /// Send SMS through a Messaging Service (`MG…`), which picks the sender.
    pub fn with_messaging_service(mut self, sid: Option<String>) -> TwilioClient {
        self.messaging_service = sid;
        self
    }

    pub fn auth_token(&self) -> &Secret {
        &self.auth_token
    }

    fn calls_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.api_base, self.account_sid
        )
    }

    /// The form of a `POST …/Calls.json`: only parameters the API defines.
    pub fn call_form(req: &CallRequest) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("To", req.to.to_string()),
            ("From", req.from.to_string()),
            ("Url", req.answer_url.clone()),
            ("Method", "POST".to_string()),
            ("StatusCallback", req.status_url.clone()),
            ("StatusCallbackMethod", "POST".to_string()),
            ("Timeout", req.ring_timeout_s.to_string()),
        ];
        if req.detect_machine {
            form.push(("MachineDetection", "DetectMessageEnd".to_string()));
        }
        form.extend(
            STATUS_EVENTS
                .iter()
                .map(|e| ("StatusCallbackEvent", e.to_string())),
        );
        form
    }

    /// The form of a `POST …/Messages.json`: from the campaign's number, or through the
    /// Messaging Service when one is configured.
    pub fn sms_form(
        req: &SmsRequest,
        messaging_service: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let sender = match messaging_service {
            Some(sid) => ("MessagingServiceSid", sid.to_string()),
            None => ("From", req.from.to_string()),
        };
        vec![
            ("To", req.to.to_string()),
            sender,
            ("Body", req.body.clone()),
            ("StatusCallback", req.status_url.clone()),
        ]
    }

    /// Place a call. See [`ProviderError`] for what each failure means.
    pub async fn place_call(&self, req: &CallRequest) -> Result<Placed, ProviderError> {
        self.create(self.calls_url(), &Self::call_form(req), Channel::Voice)
            .await
    }

    /// Send an SMS; failures mean what they mean for calls.
    pub async fn send_sms(&self, req: &SmsRequest) -> Result<Placed, ProviderError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_base, self.account_sid
        );
        let form = Self::sms_form(req, self.messaging_service.as_deref());
        self.create(url, &form, Channel::Sms).await
    }

    /// `POST` a form that creates a resource (a call, a message) and map the answer.
    async fn create(
        &self,
        url: String,
        form: &[(&'static str, String)],
        channel: Channel,
    ) -> Result<Placed, ProviderError> {
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(form)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            // Refused before anything was sent: the provider certainly made no call.
            Err(e) if e.is_connect() => return Err(retry(format!("cannot connect: {e}"), None)),
            Err(e) => {
                return Err(ProviderError::Unclear {
                    reason: format!("no answer: {e}"),
                });
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) if status.is_success() => {
                return Err(ProviderError::Unclear {
                    reason: format!("body lost: {e}"),
                });
            }
            Err(e) => return Err(retry(format!("HTTP {status}, body lost: {e}"), retry_after)),
        };
        if status.is_success() {
            return match serde_json::from_slice::<CallResource>(&body) {
                Ok(call) if call.sid.starts_with("CA") || !call.sid.is_empty() => Ok(Placed {
                    provider_id: call.sid,
                }),
                _ => Err(ProviderError::Unclear {
                    reason: format!("HTTP {status} with a body that is not a call"),
                }),
            };
        }
        let error: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let code = error
            .as_ref()
            .and_then(|e| e.code.as_ref())
            .map(|c| c.to_string().trim_matches('"').to_string())
            .unwrap_or_default();
        let message = error.and_then(|e| e.message).unwrap_or_default();
        Err(match (status.as_u16(), code.as_str()) {
            (_, "21211" | "21214" | "21217") => ProviderError::InvalidNumber { code },
            // "Not a mobile number" is the Messaging API's answer only: on a call it would say
            // nothing about the number's voice line.
            (_, "21614") if channel == Channel::Sms => ProviderError::WrongChannel { code },
            (_, "21610") => ProviderError::OptedOut { code },
            (429, _) | (_, "20429") => retry(format!("rate limited ({code})"), retry_after),
            (500..=599, _) => retry(format!("HTTP {status}"), retry_after),
            _ => retry(
                format!("HTTP {status} error {code}: {message}"),
                Some(Duration::from_secs(300)),
            ),
        })
    }

    /// Ask the provider what became of a call.
    pub async fn fetch_call(&self, sid: &str) -> Result<CallInfo, ProviderError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{}.json",
            self.api_base, self.account_sid, sid
        );
        let response = self
            .http
            .get(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .send()
            .await
            .map_err(|e| retry(e.to_string(), None))?;
        let status = response.status();
        let call: CallResource = response
            .json()
            .await
            .map_err(|e| retry(format!("HTTP {status}: {e}"), None))?;
        Ok(CallInfo {
            status: call.status.unwrap_or_default(),
            answered_by: call.answered_by,
            duration_s: call.duration.and_then(|d| d.parse().ok()),
        })
    }
}

fn retry(reason: String, after: Option<Duration>) -> ProviderError {
    ProviderError::Retry { reason, after }
}
