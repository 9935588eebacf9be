//! Twilio webhooks: each checks `X-Twilio-Signature` against `public_url` + path + query and
//! answers 403 on a mismatch; malformed ones get 400, never 500.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::events::StatusReport;
use crate::outreach::machine::CallStatus;
use crate::provider::{signature, twiml};

pub(super) type Params = Vec<(String, String)>;

/// Why a webhook is refused: 400 or 403, and a word.
type Refusal = (StatusCode, &'static str);

pub(super) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

pub(super) fn reject(status: StatusCode, why: &str) -> Response {
    (status, why.to_string()).into_response()
}

pub(super) fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// A correctly signed webhook: its form parameters and the URI it was posted to. Refused with
/// 403 (bad or missing signature) or 400 (not a form) before any handler runs.
pub(super) struct Signed {
    pub uri: OriginalUri,
    pub params: Params,
}

impl FromRequest<HttpState> for Signed {
    type Rejection = Response;

    async fn from_request(req: Request, state: &HttpState) -> Result<Signed, Response> {
        let (mut parts, body) = req.into_parts();
        let uri = match OriginalUri::from_request_parts(&mut parts, state).await {
            Ok(uri) => uri,
            Err(never) => match never {},
        };
        let headers = parts.headers.clone();
        let Form(params) = Form::<Params>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        verify_signature(state, &uri, &headers, &params)
            .map_err(|(status, why)| reject(status, why))?;
        Ok(Signed { uri, params })
    }
}

/// A correctly signed webhook about one attempt (`?attempt=ID`).
pub(super) struct SignedAttempt {
    pub attempt: String,
    pub params: Params,
}

impl FromRequest<HttpState> for SignedAttempt {
    type Rejection = Response;

    async fn from_request(req: Request, state: &HttpState) -> Result<SignedAttempt, Response> {
        let Signed { uri, params } = Signed::from_request(req, state).await?;
        let attempt = query_value(&uri, "attempt")
            .filter(|a| {
                !a.is_empty() && a.len() <= 64 && a.chars().all(|c| c.is_ascii_alphanumeric())
            })
            .ok_or_else(|| reject(StatusCode::BAD_REQUEST, "missing attempt"))?;
        Ok(SignedAttempt { attempt, params })
    }
}

/// The value of `name` in the query string (ids only: no escapes to decode).
pub(super) fn query_value(uri: &OriginalUri, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    uri.query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix(prefix.as_str())))
        .map(String::from)
}

/// `Ok` when `X-Twilio-Signature` signs `public_url` + path + query and the parameters.
fn verify_signature(
    state: &HttpState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), Refusal> {
    let Some(token) = state.app.provider.auth_token() else {
        return Err((
            StatusCode::FORBIDDEN,
            "webhooks are off: no provider auth token configured",
        ));
    };
    let url = format!(
        "{}{}",
        state.app.public_url,
        uri.path_and_query().map_or("", |p| p.as_str())
    );
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if signature.is_empty() || !signature::verify(token.expose(), &url, params, signature) {
        return Err((StatusCode::FORBIDDEN, "bad signature"));
    }
    Ok(())
}

/// TwiML for the provider: the handler's, a polite hang-up for a call that is not ours to explain,
/// or 503 when storage failed.
pub(super) fn twiml_or_hang_up(
    result: Result<Option<String>, crate::store::StoreError>,
) -> Response {
    match result {
        Ok(Some(body)) => xml(body),
        Ok(None) => xml(twiml::hang_up()),
        Err(e) => unavailable(e),
    }
}

pub(super) fn unavailable(e: crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "webhook: storage failed");
    reject(StatusCode::SERVICE_UNAVAILABLE, "try again")
}

pub async fn answer(
    State(state): State<HttpState>,
    SignedAttempt { attempt, params }: SignedAttempt,
) -> Response {
    twiml_or_hang_up(
        state
            .app
            .on_answer(&attempt, param(&params, "AnsweredBy"))
            .await,
    )
}

pub async fn gather(
    State(state): State<HttpState>,
    SignedAttempt { attempt, params }: SignedAttempt,
) -> Response {
    let Some(digits) = param(&params, "Digits") else {
        return xml(twiml::hang_up());
    };
    if digits.len() > 8
        || !digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
    {
        return reject(StatusCode::BAD_REQUEST, "bad Digits");
    }
    twiml_or_hang_up(state.app.on_gather(&attempt, digits).await)
}

pub async fn status(
    State(state): State<HttpState>,
    SignedAttempt { attempt, params }: SignedAttempt,
) -> Response {
    let Some(status) = param(&params, "CallStatus").and_then(CallStatus::parse) else {
        return reject(StatusCode::BAD_REQUEST, "missing or unknown CallStatus");
    };
    let report = StatusReport {
        status,
        answered_by: param(&params, "AnsweredBy").map(String::from),
        duration_s: param(&params, "CallDuration").and_then(|d| d.parse().ok()),
        delivery_key: format!(
            "call:{}:{}:{}:{}",
            attempt,
            param(&params, "CallSid").unwrap_or("-"),
            status.name(),
            param(&params, "SequenceNumber").unwrap_or("-")
        ),
    };
    match state.app.on_call_status(&attempt, &report).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable(e),
    }
}
