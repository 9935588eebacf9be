//! SMS webhooks (a patient's reply, a message's status) and the opt-out ledger API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::webhooks::{Signed, SignedAttempt, param, reject, unavailable, xml};
use super::{ApiError, HttpState, StaffBody};
use crate::outreach::machine::SmsStatus;
use crate::phone::Phone;
use crate::replies::{BODY_MAX, SmsReport};

/// `POST /webhooks/twilio/sms/inbound`: a patient's SMS (`From`, `Body`).
pub async fn inbound(State(state): State<HttpState>, Signed { params, .. }: Signed) -> Response {
    let Some(from) = param(&params, "From") else {
        return reject(StatusCode::BAD_REQUEST, "missing From");
    };
    let Ok(from) = Phone::parse_e164(from) else {
        return reject(StatusCode::BAD_REQUEST, "From is not an E.164 number");
    };
    // An empty body (a picture alone) still reaches staff; one longer than any SMS is refused.
    let body = params
        .iter()
        .find(|(k, _)| k == "Body")
        .map_or("", |(_, v)| v.as_str());
    if body.chars().count() > BODY_MAX {
        return reject(
            StatusCode::BAD_REQUEST,
            "Body is longer than 1600 characters",
        );
    }
    let key = param(&params, "MessageSid").or_else(|| param(&params, "SmsSid"));
    match state
        .app
        .on_sms(&from, param(&params, "To"), body, key)
        .await
    {
        Ok(twiml) => xml(twiml),
        Err(e) => unavailable(e),
    }
}

/// `POST /webhooks/twilio/sms/status?attempt=ID`: a message's status callback.
pub async fn status(
    State(state): State<HttpState>,
    SignedAttempt { attempt, params }: SignedAttempt,
) -> Response {
    let Some(status) = param(&params, "MessageStatus")
        .or_else(|| param(&params, "SmsStatus"))
        .and_then(SmsStatus::parse)
    else {
        return reject(StatusCode::BAD_REQUEST, "missing or unknown MessageStatus");
    };
    let error_code = param(&params, "ErrorCode")
        .filter(|c| c.len() <= 8 && c.bytes().all(|b| b.is_ascii_digit()))
        .map(String::from);
    let report = SmsReport {
        status,
        error_code,
        delivery_key: format!(
            "sms:{attempt}:{}:{}",
            param(&params, "MessageSid").unwrap_or("-"),
            status.name()
        ),
    };
    match state.app.on_sms_status(&attempt, &report).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /v1/optouts`: the ledger.
pub async fn list(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let optouts = state.app.db.optouts().await?;
    Ok(Json(json!({ "optouts": optouts })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOutBody {
    phone: Option<String>,
    source: Option<String>,
}

/// `POST /v1/optouts` `{"phone","source"?}`: 201 when added (every planned attempt to the
/// number withdrawn at once), 200 when it was there already.
pub async fn add(State(state): State<HttpState>, body: Bytes) -> Result<Response, ApiError> {
    let body: OptOutBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body is not an opt-out: {e}"),
            None,
        )
    })?;
    let unprocessable =
        |m: String, f: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m, Some(f));
    let Some(raw) = body.phone.filter(|p| !p.trim().is_empty()) else {
        return Err(unprocessable("phone is required".into(), "phone"));
    };
    let source = body.source.unwrap_or_else(|| "api".into());
    if source.is_empty()
        || source.len() > 32
        || !source.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(unprocessable(
            "source is a short lower-case word (e.g. api, list, staff)".into(),
            "source",
        ));
    }
    let phone =
        parse_number(&state, &raw).map_err(|e| unprocessable(format!("phone: {e}"), "phone"))?;
    let db = &state.app.db;
    let existed = db.optout_of(phone.as_str()).await?.is_some();
    let withdrawn = db.opt_out(phone.as_str(), &source, Utc::now()).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({"phone": phone, "source": source, "withdrawn_attempts": withdrawn})),
    )
        .into_response())
}

/// `POST /v1/optouts/{phone}/remove` `{"by","note"?}`: staff take a number off the ledger at
/// the patient's request; kept with who and why (`GET /v1/optouts/removals`). 404 when the
/// number is not on it.
pub async fn remove(
    State(state): State<HttpState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = StaffBody::read(&body)?;
    let (by, note) = body.signed()?;
    let phone = parse_number(&state, raw.trim()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("phone: {e}"),
            Some("phone"),
        )
    })?;
    match state.app.remove_optout(phone.as_str(), by, note).await? {
        Some(removal) => Ok(Json(removal).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{} is not on the opt-out ledger", phone.as_str()),
            Some("phone"),
        )),
    }
}

/// `GET /v1/optouts/removals`: every number taken off the ledger, by whom, newest first.
pub async fn removals(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let removals = state.app.db.optout_removals().await?;
    Ok(Json(json!({ "removals": removals })).into_response())
}

/// A number in E.164, or in any spelling of the campaigns' country when they share one.
pub fn parse_number(state: &HttpState, raw: &str) -> Result<Phone, crate::phone::PhoneError> {
    Phone::parse(raw, state.app.campaigns().shared_country())
}
