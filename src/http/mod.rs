//! HTTP: the provider's webhooks, the `/v1` API, health and metrics.

mod api;
mod callbacks;
mod dashboard;
mod sms;
mod webhooks;

pub use api::IMPORT_MAX_BYTES;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::app::App;
use crate::config::Secret;

/// What the HTTP side needs beyond the app.
#[derive(Clone)]
pub struct HttpState {
    pub app: Arc<App>,
    pub api_tokens: Arc<Vec<Secret>>,
}

/// The whole HTTP surface; tests drive it with `oneshot` or a real listener.
pub fn router(state: HttpState) -> Router {
    let api = Router::new()
        .route("/campaigns", get(api::campaigns))
        .route(
            "/campaigns/{id}/appointments",
            post(api::import).layer(DefaultBodyLimit::max(api::IMPORT_MAX_BYTES)),
        )
        .route("/campaigns/{id}/pause", post(api::pause))
        .route("/campaigns/{id}/resume", post(api::resume))
        .route("/imports", get(api::imports))
        .route("/outreach", get(api::lookup))
        .route("/outreach/{id}", get(api::outreach))
        .route("/outreach/{id}/withdraw", post(api::withdraw))
        .route("/followups", get(api::followups))
        .route("/followups/{id}/resolve", post(api::resolve))
        .route("/outcomes", get(api::outcomes))
        .route("/visits", get(api::visits))
        .route("/stats", get(api::stats))
        .route("/callbacks", post(callbacks::request))
        .route("/optouts", get(sms::list).post(sms::add))
        .route("/optouts/removals", get(sms::removals))
        .route("/optouts/{phone}/remove", post(sms::remove))
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    let dashboard = Router::new()
        .route("/", get(dashboard::page))
        .route("/followups/{id}/resolve", post(dashboard::resolve))
        .route("/lookup", get(dashboard::lookup))
        .route("/visits", get(dashboard::visits))
        .route("/optouts/{phone}/remove", post(dashboard::remove_optout))
        .route("/outreach/{id}/withdraw", post(dashboard::withdraw))
        .route("/campaigns/{id}/pause", post(dashboard::pause))
        .route("/campaigns/{id}/resume", post(dashboard::resume))
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    let webhooks = Router::new()
        .route("/webhooks/twilio/voice/answer", post(webhooks::answer))
        .route("/webhooks/twilio/voice/gather", post(webhooks::gather))
        .route("/webhooks/twilio/voice/status", post(webhooks::status))
        .route("/webhooks/twilio/voice/missed", post(callbacks::missed))
        .route("/webhooks/twilio/voice/bridge", post(callbacks::bridge))
        .route("/webhooks/twilio/voice/agent", post(callbacks::agent))
        .route("/webhooks/twilio/sms/inbound", post(sms::inbound))
        .route("/webhooks/twilio/sms/status", post(sms::status))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_refusals,
        ));
    Router::new()
        .merge(dashboard)
        .merge(webhooks)
        .route("/healthz", get(healthz))
        .route("/metrics", get(api::metrics))
        .nest("/v1", api)
        .with_state(state)
}

/// Count the webhooks refused (`/metrics`): 403 for a bad signature, any other 4xx as malformed.
async fn count_refusals(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match response.status() {
        StatusCode::FORBIDDEN => state.app.refusals.signature(),
        s if s.is_client_error() => state.app.refusals.malformed(),
        _ => {}
    }
    response
}

async fn healthz(State(state): State<HttpState>) -> Response {
    match state.app.db.live_calls().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
    }
}

/// `/v1` and the dashboard answer a configured bearer token; with none configured, only callers
/// on this machine. What they answer is about patients (names, numbers, visits), so no browser or
/// proxy keeps a copy: `Cache-Control: no-store` on every answer, CSV downloads included.
async fn authorize(
    State(state): State<HttpState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let allowed = if state.api_tokens.is_empty() {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback())
    } else {
        let given = given_token(&headers).unwrap_or_default();
        state
            .api_tokens
            .iter()
            .any(|t| constant_time_eq(t.expose().as_bytes(), given.as_bytes()))
    };
    if allowed {
        let mut response = next.run(request).await;
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    } else {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
            None,
        )
        .into_response();
        // A browser asks for the token as the password of its login prompt.
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"ringback\", charset=\"UTF-8\""),
        );
        response
    }
}

/// The token a request carries: `Bearer TOKEN`, or `Basic` with the token as the password.
fn given_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.to_string());
    }
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.strip_prefix("Basic ")?)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `{"by","note"?}`: who of the staff does something by hand (resolve a follow-up, take a
/// number off the opt-out ledger, withdraw an outreach), and why.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffBody {
    by: String,
    note: Option<String>,
}

impl StaffBody {
    /// The name and note of a request's body: 400 when it is not such an object, 422 naming
    /// `by` or `note` when one is out of bounds.
    pub fn read(body: &[u8]) -> Result<StaffBody, ApiError> {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("body must be {{\"by\": \"…\", \"note\"?: \"…\"}}: {e}"),
                Some("by"),
            )
        })
    }

    /// The name and note, trimmed and checked (see [`crate::store::signed_by`]).
    pub fn signed(&self) -> Result<(&str, Option<&str>), ApiError> {
        crate::store::signed_by(&self.by, self.note.as_deref()).map_err(|(field, message)| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message, Some(field))
        })
    }
}

/// An API error: `{"error","field"}`, never internals.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: field.map(String::from),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        tracing::error!(error = %e, "storage failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage unavailable, try again",
            None,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": self.message, "field": self.field})),
        )
            .into_response()
    }
}
