//! Callback requests over HTTP: `POST /v1/callbacks` (web forms, other phone systems) and the
//! clinic number's missed-call webhook; and the two webhooks of a bridged callback call.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::webhooks::{
    Params, Signed, SignedAttempt, param, query_value, reject, twiml_or_hang_up, unavailable, xml,
};
use super::{ApiError, HttpState};
use crate::callbacks::{Accepted, CallbackError, CallbackRequest, Source, is_withheld};
use crate::campaign::Campaign;
use crate::provider::twiml;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackBody {
    phone: Option<String>,
    name: Option<String>,
    source: Option<String>,
    campaign: Option<String>,
    note: Option<String>,
}

/// `POST /v1/callbacks`: 202 with a new callback, 200 when merged into the open one.
pub async fn request(State(state): State<HttpState>, body: Bytes) -> Result<Response, ApiError> {
    let unprocessable = |message: String, field: &str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message, Some(field))
    };
    let body: CallbackBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body is not a callback request: {e}"),
            None,
        )
    })?;
    let Some(phone) = body.phone.filter(|p| !p.trim().is_empty()) else {
        return Err(unprocessable("phone is required".into(), "phone"));
    };
    let source = match body.source.as_deref() {
        None => Source::Api,
        Some(s) => Source::parse(s).ok_or_else(|| {
            unprocessable(
                "source is missed_call, voicemail, web_form or api".into(),
                "source",
            )
        })?,
    };
    let app = &state.app;
    let campaign = &app
        .callback_campaign(body.campaign.as_deref(), None)
        .map_err(refused)?;
    let req = CallbackRequest {
        phone,
        name: body.name,
        source,
        note: body.note,
        recording_url: None,
        same_call: false,
    };
    let accepted = app
        .request_callback(campaign, &req, Utc::now())
        .await
        .map_err(refused)?;
    let status = if accepted.merged {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = json!({
        "id": accepted.id,
        "status": accepted.status,
        "first_attempt_at": accepted.first_attempt_at,
    });
    dispatch(&state, &accepted);
    Ok((status, axum::Json(body)).into_response())
}

/// A callback due now is dialled at once, not at the queue's next poll.
fn dispatch(state: &HttpState, accepted: &Accepted) {
    if let Some(attempt) = &accepted.due_now {
        crate::jobs::dial_now(state.app.clone(), attempt.clone());
    }
}

fn refused(e: CallbackError) -> ApiError {
    match e {
        CallbackError::Invalid { field, message } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message, Some(field))
        }
        CallbackError::Phone(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("phone: {e}"),
            Some("phone"),
        ),
        CallbackError::Store(e) => e.into(),
    }
}

/// `POST /webhooks/twilio/voice/missed[?campaign=ID]`: the clinic number's `<Dial action>`,
/// status callback or `<Record action>`. A missed call (or a voicemail) becomes a callback to
/// `From`; an answered one withdraws that number's open callback.
pub async fn missed(State(state): State<HttpState>, Signed { uri, params }: Signed) -> Response {
    let app = &state.app;
    let inbound = match Inbound::read(&params) {
        Ok(inbound) => inbound,
        Err(problem) => return reject(StatusCode::BAD_REQUEST, problem),
    };
    let campaign_id = query_value(&uri, "campaign");
    let campaign = &match app.callback_campaign(campaign_id.as_deref(), param(&params, "To")) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "missed-call webhook: no campaign to call back in");
            return reject(
                StatusCode::BAD_REQUEST,
                "no callback campaign for this call",
            );
        }
    };
    let now = Utc::now();
    let missed = match inbound.missed() {
        Ok(Some(missed)) => missed,
        // `queued`, `ringing` … say nothing yet about the call.
        Ok(None) => return xml(twiml::hang_up()),
        Err(problem) => return reject(StatusCode::BAD_REQUEST, problem),
    };
    // One inbound call has one fate: its first report decides (a status callback after the
    // `<Dial action>` changes nothing); its voicemail may still follow and is merged.
    let call = inbound.call;
    let first_report = match app.db.first_delivery(&format!("inbound:{call}"), now).await {
        Ok(first) => first,
        Err(e) => return unavailable(e),
    };
    if !missed {
        if first_report
            && let Ok(phone) = crate::phone::Phone::parse(inbound.from, Some(campaign.country))
            && let Err(e) = app
                .db
                .withdraw_callback(&campaign.id, phone.as_str(), now)
                .await
        {
            return unavailable(e);
        }
        return xml(twiml::hang_up());
    }
    let source = if inbound.recording.is_some() {
        match app
            .db
            .first_delivery(&format!("inbound-recording:{call}"), now)
            .await
        {
            Ok(true) => Source::Voicemail,
            Ok(false) => {
                let words = missed_words(&campaign.default_language);
                return xml(twiml::say_and_hang_up(
                    words.thanks,
                    &campaign.default_language,
                ));
            }
            Err(e) => return unavailable(e),
        }
    } else if first_report {
        Source::MissedCall
    } else {
        return xml(twiml::hang_up());
    };
    call_back(&state, campaign, &inbound, source, first_report, now).await
}

/// What the phone system says of one inbound call.
struct Inbound<'p> {
    from: &'p str,
    recording: Option<&'p str>,
    /// `DialCallStatus` (a `<Dial action>`: the caller is still on the line), else `CallStatus`.
    status: Option<&'p str>,
    dialled: bool,
    call: &'p str,
}

impl<'p> Inbound<'p> {
    /// The report's parameters, or what is wrong with them.
    fn read(params: &'p Params) -> Result<Self, &'static str> {
        let from = params
            .iter()
            .find(|(k, _)| k == "From")
            .map(|(_, v)| v.as_str())
            .ok_or("missing From")?;
        if from.len() > 64 {
            return Err("From is too long");
        }
        if from.trim_start().to_ascii_lowercase().starts_with("sip:") || from.contains('@') {
            return Err("From is a SIP address: ringback calls back phone numbers only");
        }
        let recording = param(params, "RecordingUrl");
        let dialled = param(params, "DialCallStatus");
        let status = dialled.or_else(|| param(params, "CallStatus"));
        if recording.is_none() && status.is_none() {
            return Err("missing DialCallStatus or CallStatus");
        }
        if recording.is_some_and(|r| r.len() > 1000 || !r.starts_with("http")) {
            return Err("RecordingUrl is not a URL");
        }
        Ok(Inbound {
            from,
            recording,
            status,
            dialled: dialled.is_some(),
            call: param(params, "CallSid").unwrap_or("-"),
        })
    }

    /// Whether nobody took the call (a voicemail counts as missed); `None` while its status
    /// says nothing yet.
    fn missed(&self) -> Result<Option<bool>, &'static str> {
        match self.status {
            _ if self.recording.is_some() => Ok(Some(true)),
            Some("no-answer" | "busy" | "failed" | "canceled") => Ok(Some(true)),
            Some("completed" | "answered" | "in-progress") => Ok(Some(false)),
            Some(_) => Ok(None),
            None => Err("unknown call status"),
        }
    }
}

/// Make the missed call's callback (a caller whose number cannot be called back is put on the
/// staff worklist instead) and tell the caller.
async fn call_back(
    state: &HttpState,
    campaign: &Campaign,
    inbound: &Inbound<'_>,
    source: Source,
    first_report: bool,
    now: chrono::DateTime<Utc>,
) -> Response {
    let app = &state.app;
    let words = missed_words(&campaign.default_language);
    let lang = campaign.default_language.as_str();
    let uncallable = || async {
        match app
            .uncallable_caller(campaign, inbound.from, source, now)
            .await
        {
            Ok(_) => xml(twiml::say_and_hang_up(words.sorry, lang)),
            Err(e) => unavailable(e),
        }
    };
    if is_withheld(inbound.from) {
        return uncallable().await;
    }
    let req = CallbackRequest {
        phone: inbound.from.to_string(),
        name: None,
        source,
        note: None,
        recording_url: inbound.recording.map(String::from),
        same_call: source == Source::Voicemail && !first_report,
    };
    match app.request_callback(campaign, &req, now).await {
        Ok(accepted) => {
            dispatch(state, &accepted);
            xml(answer_caller(
                state,
                campaign,
                &accepted,
                source,
                inbound.dialled,
            ))
        }
        Err(CallbackError::Phone(_)) => uncallable().await,
        Err(CallbackError::Invalid { message, .. }) => {
            warn!(%message, "missed-call webhook refused");
            reject(StatusCode::BAD_REQUEST, "refused")
        }
        Err(CallbackError::Store(e)) => unavailable(e),
    }
}

/// What the caller hears: on a `<Dial action>` the caller is still on the line, so they are told
/// they will be called back and may leave a message.
fn answer_caller(
    state: &HttpState,
    campaign: &Campaign,
    accepted: &Accepted,
    source: Source,
    on_the_line: bool,
) -> String {
    let lang = campaign.default_language.as_str();
    let words = missed_words(lang);
    if source == Source::Voicemail {
        return twiml::say_and_hang_up(words.thanks, lang);
    }
    if accepted.status == "opted_out" || !on_the_line {
        return twiml::say_and_hang_up(words.sorry, lang);
    }
    let record_url = format!(
        "{}/webhooks/twilio/voice/missed?campaign={}",
        state.app.public_url, campaign.id
    );
    twiml::leave_message(words.will_call_back, lang, &record_url)
}

struct MissedWords {
    will_call_back: &'static str,
    sorry: &'static str,
    thanks: &'static str,
}

fn missed_words(lang: &str) -> MissedWords {
    match lang.split('-').next().unwrap_or_default() {
        "ca" => MissedWords {
            will_call_back: "Ara no us podem atendre. Us tornarem la trucada aviat. Si voleu, deixeu un missatge després del senyal.",
            sorry: "Ara no us podem atendre. Torneu a trucar més tard, si us plau.",
            thanks: "Gràcies. Us tornarem la trucada aviat.",
        },
        "es" => MissedWords {
            will_call_back: "Ahora no podemos atenderle. Le devolveremos la llamada pronto. Si quiere, deje un mensaje después de la señal.",
            sorry: "Ahora no podemos atenderle. Vuelva a llamar más tarde, por favor.",
            thanks: "Gracias. Le devolveremos la llamada pronto.",
        },
        _ => MissedWords {
            will_call_back: "Sorry we cannot take your call right now. We will call you back soon. You may leave a message after the tone.",
            sorry: "Sorry we cannot take your call right now. Please call again later.",
            thanks: "Thank you. We will call you back soon.",
        },
    }
}

/// `POST /webhooks/twilio/voice/bridge?attempt=ID`: the `<Dial>` of a callback ended.
pub async fn bridge(
    State(state): State<HttpState>,
    SignedAttempt { attempt, params }: SignedAttempt,
) -> Response {
    let Some(status) = param(&params, "DialCallStatus").filter(|s| {
        matches!(
            *s,
            "completed" | "answered" | "busy" | "no-answer" | "failed" | "canceled"
        )
    }) else {
        return reject(StatusCode::BAD_REQUEST, "missing or unknown DialCallStatus");
    };
    let duration = param(&params, "DialCallDuration").and_then(|d| d.parse::<i64>().ok());
    twiml_or_hang_up(state.app.on_bridge(&attempt, status, duration).await)
}

/// `POST /webhooks/twilio/voice/agent?attempt=ID`: staff pressed a key after a callback.
pub async fn agent(
    State(state): State<HttpState>,
    SignedAttempt { attempt, params }: SignedAttempt,
) -> Response {
    let digits = param(&params, "Digits").unwrap_or_default();
    if digits.len() > 8 {
        return reject(StatusCode::BAD_REQUEST, "bad Digits");
    }
    twiml_or_hang_up(state.app.on_agent_key(&attempt, digits).await)
}
