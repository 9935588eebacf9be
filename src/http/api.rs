//! The `/v1` API (SPEC §6) and `/metrics`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, HttpState, StaffBody};
use crate::import::{self, Format, ImportError};
use crate::store::Withdrawal;

pub async fn campaigns(State(state): State<HttpState>) -> Result<Response, ApiError> {
    // `loaded_at`: when the files were read, so that after `systemctl reload` (SIGHUP) an admin
    // sees whether it has happened.
    let (catalog, loaded_at) = state.app.campaigns_loaded();
    let mut pauses = state.app.db.campaign_pauses().await?;
    let campaigns: Vec<_> = catalog
        .campaigns
        .values()
        .map(|c| {
            json!({"id": c.id, "name": c.name, "kind": c.kind.name(), "timezone": c.timezone.name(),
            "languages": c.messages.keys().collect::<Vec<_>>(), "paused": pauses.remove(&c.id)})
        })
        .collect();
    let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
    let loaded_at = loaded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(
        Json(json!({"campaigns": campaigns, "errors": errors, "loaded_at": loaded_at}))
            .into_response(),
    )
}

/// `POST /v1/campaigns/{id}/pause` `{"by","note"?}`: nothing of the campaign is dialled or
/// texted until it is resumed (calls already ringing finish). 200 with the pause in force,
/// whoever began it.
pub async fn pause(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = StaffBody::read(&body)?;
    let (by, note) = body.signed()?;
    known_campaign(&state, &id)?;
    let pause = state.app.pause_campaign(&id, by, note).await?;
    Ok(Json(json!({"campaign": id, "paused": pause})).into_response())
}

/// `POST /v1/campaigns/{id}/resume` `{"by"}`: the campaign's calls go out again, the overdue
/// ones first (each checked against every rule at the time). 200 whether or not it was paused.
pub async fn resume(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = StaffBody::read(&body)?;
    let (by, _) = body.signed()?;
    known_campaign(&state, &id)?;
    state.app.resume_campaign(&id, by).await?;
    Ok(Json(json!({"campaign": id, "paused": null})).into_response())
}

/// 404 unless `id` is a loaded campaign.
fn known_campaign(state: &HttpState, id: &str) -> Result<(), ApiError> {
    match state.app.campaigns().get(id) {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no campaign {id:?}"),
            Some("campaign"),
        )),
    }
}

/// The largest appointment list the API takes: some 350,000 rows of a typical export (8.6 MB
/// holds 100,000). Longer lists: `ringback import FILE`, which reads the file from disk.
pub const IMPORT_MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Deserialize)]
pub struct ImportQuery {
    dry_run: Option<String>,
}

pub async fn import(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // `?dry_run=true`: the summary the import would answer, and nothing written (as `--dry-run`).
    let dry_run = match q.dry_run.as_deref() {
        None | Some("false" | "0") => false,
        Some("" | "true" | "1") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "dry_run is true or false",
                Some("dry_run"),
            ));
        }
    };
    let body = body.map_err(|rejected| match rejected.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the list is larger than {} MiB: send it in parts, or import it with `ringback import FILE`",
                IMPORT_MAX_BYTES / (1024 * 1024)
            ),
            Some("body"),
        ),
        status => ApiError::new(status, rejected.body_text(), Some("body")),
    })?;
    let catalog = state.app.campaigns();
    let Some(campaign) = catalog.get(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no campaign {id:?}"),
            Some("campaign"),
        ));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let format = if content_type.contains("json") {
        Format::Json
    } else if content_type.contains("csv") || content_type.starts_with("text/") {
        Format::Csv
    } else {
        Format::guess("", &body)
    };
    // Parsing and reconciling a long list is work for the CPU, and SQLite's writes are calls that
    // block: all of it runs on a thread of its own, so that the dialer and the webhooks keep every
    // runtime worker meanwhile. The import is one transaction: it is whole or absent, even if the
    // client stops waiting.
    let (db, campaign) = (state.app.db.clone(), campaign.clone());
    let runtime = tokio::runtime::Handle::current();
    let imported = tokio::task::spawn_blocking(move || {
        let input = import::Input {
            source: "api",
            bytes: &body,
            format,
            now: chrono::Utc::now(),
            dry_run,
        };
        runtime.block_on(import::run(&db, &campaign, input, |_| {}, |_| {}))
    })
    .await;
    let imported = match imported {
        Ok(imported) => imported,
        Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is stopping",
                None,
            ));
        }
    };
    match imported {
        Ok(summary) => Ok(Json(summary).into_response()),
        Err(ImportError::File(e)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("line {}: {}", e.line, e.error),
            Some(&e.field),
        )),
        Err(ImportError::Store(e)) => Err(e.into()),
        Err(e @ ImportError::Campaign(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
            Some("campaign"),
        )),
    }
}

/// `POST /v1/outreach/{id}/withdraw` `{"by","note"?}`: staff end an outreach by hand (they
/// reached the patient another way): `withdrawn`, every planned call and SMS withdrawn. 404 for
/// no such outreach, 409 when it has ended already (saying how).
pub async fn withdraw(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = StaffBody::read(&body)?;
    let (by, note) = body.signed()?;
    match state.app.withdraw_outreach(&id, by, note).await? {
        Withdrawal::Done => {
            let view = state.app.db.outreach_view(&id).await?;
            Ok(Json(view).into_response())
        }
        Withdrawal::Ended(outcome) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "it has ended already ({})",
                outcome.as_deref().unwrap_or("no outcome")
            ),
            Some("id"),
        )),
        Withdrawal::Unknown => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such outreach",
            Some("id"),
        )),
    }
}

pub async fn outreach(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.app.db.outreach_view(&id).await? {
        Some(view) => Ok(Json(view).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such outreach",
            Some("id"),
        )),
    }
}

#[derive(Deserialize)]
pub struct LookupQuery {
    phone: Option<String>,
}

/// How many outreach a lookup shows: a patient's last year of reminders and callbacks.
pub const LOOKUP_LIMIT: i64 = 50;

/// `GET /v1/outreach?phone=NUMBER`: the latest outreach to a number (any spelling of the
/// campaigns' country), newest first, each with its attempts; and whether it is on the opt-out
/// ledger. For the front desk, when a patient rings back after a missed call.
pub async fn lookup(
    State(state): State<HttpState>,
    Query(q): Query<LookupQuery>,
) -> Result<Response, ApiError> {
    let Some(raw) = q.phone.filter(|p| !p.trim().is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "phone is required: /v1/outreach?phone=NUMBER",
            Some("phone"),
        ));
    };
    let phone = super::sms::parse_number(&state, &raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("phone: {e}"),
            Some("phone"),
        )
    })?;
    let db = &state.app.db;
    let outreach = db.outreach_of_phone(phone.as_str(), LOOKUP_LIMIT).await?;
    let opted_out = db.optout_of(phone.as_str()).await?;
    Ok(Json(json!({
        "phone": phone.as_str(),
        "opted_out": opted_out.is_some(),
        "opt_out_source": opted_out,
        "outreach": outreach,
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct FollowupQuery {
    campaign: Option<String>,
    status: Option<String>,
    format: Option<String>,
}

pub async fn followups(
    State(state): State<HttpState>,
    Query(q): Query<FollowupQuery>,
) -> Result<Response, ApiError> {
    let status = match q.status.as_deref() {
        None => Some("open"),
        Some("all") => None,
        Some(s @ ("open" | "resolved")) => Some(s),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "status is open, resolved or all",
                Some("status"),
            ));
        }
    };
    let list = state
        .app
        .db
        .followups(q.campaign.as_deref(), status)
        .await?;
    if q.format.as_deref() == Some("csv") {
        return Ok(csv_response(crate::cli::followups_csv(&list)));
    }
    Ok(Json(json!({"followups": list})).into_response())
}

pub async fn resolve(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = StaffBody::read(&body)?;
    let (by, note) = body.signed()?;
    match state
        .app
        .db
        .resolve_followup(&id, by, note, chrono::Utc::now())
        .await?
    {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such follow-up",
            Some("id"),
        )),
        Some(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already resolved",
            Some("id"),
        )),
        Some(true) => Ok(Json(json!({"id": id, "status": "resolved"})).into_response()),
    }
}

/// The most outcomes one JSON page holds; `next` goes on from there.
const OUTCOME_PAGE_MAX: u32 = 10_000;

#[derive(Deserialize)]
pub struct OutcomesQuery {
    campaign: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

/// `GET /v1/outcomes[?campaign=&since=&until=&after=&limit=&format=csv]`: each outreach that
/// ended in the span, oldest first, keyed by the clinic's own ids. JSON pages of `limit`
/// (default 1,000), each with `next`, the `after` of the following page or poll (see
/// [`crate::outcomes::resume_point`]), and `more`, whether a full page may have more after it;
/// CSV is the whole span unless `limit` is given.
pub async fn outcomes(
    State(state): State<HttpState>,
    Query(q): Query<OutcomesQuery>,
) -> Result<Response, ApiError> {
    let csv = csv_wanted(q.format.as_deref())?;
    let zone = zone_of(&state, q.campaign.as_deref())?;
    let after = q
        .after
        .as_deref()
        .map(str::parse::<crate::store::Cursor>)
        .transpose()
        .map_err(|e| bad_request(e, "after"))?;
    let now = Utc::now();
    let span = crate::outcomes::span(
        q.since.as_deref(),
        q.until.as_deref(),
        after.as_ref(),
        zone,
        now,
    )
    .map_err(|e| bad_request(e.error, e.field))?;
    let limit = match q.limit.as_deref() {
        None if csv => None,
        None => Some(1_000),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=OUTCOME_PAGE_MAX).contains(&n) => Some(n),
            _ => {
                return Err(bad_request(
                    format!("limit is 1 to {OUTCOME_PAGE_MAX}"),
                    "limit",
                ));
            }
        },
    };
    let query = crate::store::OutcomeQuery {
        campaign: q.campaign.as_deref(),
        since: span.since,
        until: span.until,
        after: after.as_ref(),
        limit,
    };
    let list = state.app.db.outcomes(&query).await?;
    if csv {
        return Ok(csv_response(crate::outcomes::to_csv(&list)));
    }
    // A full page may have more after it; after a short one, the reader polls again later.
    let full = limit.is_some_and(|n| list.len() == n as usize);
    let next = crate::outcomes::resume_point(&list, full, after.as_ref(), span.since, now);
    Ok(Json(json!({"outcomes": list, "next": next.to_string(), "more": full})).into_response())
}

#[derive(Deserialize)]
pub struct VisitsQuery {
    campaign: Option<String>,
    on: Option<String>,
    format: Option<String>,
}

/// `GET /v1/visits[?campaign=&on=DAY&format=csv]`: the visits of a day (default tomorrow, in
/// the campaign's zone) in the order they come, each with where its reminder stands.
pub async fn visits(
    State(state): State<HttpState>,
    Query(q): Query<VisitsQuery>,
) -> Result<Response, ApiError> {
    let csv = csv_wanted(q.format.as_deref())?;
    let zone = zone_of(&state, q.campaign.as_deref())?;
    let on = q.on.as_deref().unwrap_or(crate::visits::DEFAULT_DAY);
    let (since, until) =
        crate::visits::day(on, zone, Utc::now()).map_err(|e| bad_request(e, "on"))?;
    let list = state
        .app
        .db
        .visits(q.campaign.as_deref(), since, until)
        .await?;
    if csv {
        return Ok(csv_response(crate::visits::to_csv(&list)));
    }
    let day = since.with_timezone(&zone).date_naive().to_string();
    Ok(Json(json!({"day": day, "timezone": zone.name(), "visits": list})).into_response())
}

/// The zone dates are read in (see [`crate::campaign::Catalog::zone_for`]); 404 if there is no
/// such campaign.
fn zone_of(state: &HttpState, campaign: Option<&str>) -> Result<chrono_tz::Tz, ApiError> {
    state
        .app
        .campaigns()
        .zone_for(campaign)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e, Some("campaign")))
}

/// A CSV answer for a spreadsheet.
pub(super) fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// `format=csv` (true) or `format=json` (false, as when there is none).
fn csv_wanted(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(bad_request("format is json or csv", "format")),
    }
}

fn bad_request(message: impl Into<String>, field: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message, Some(field))
}

#[derive(Deserialize)]
pub struct ImportsQuery {
    campaign: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/imports?campaign=&limit=`: the import log, newest first (50 unless `limit` says).
pub async fn imports(
    State(state): State<HttpState>,
    Query(q): Query<ImportsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "limit is 1 to 1000",
            Some("limit"),
        ));
    }
    let imports = state.app.db.imports(q.campaign.as_deref(), limit).await?;
    Ok(Json(json!({"imports": imports})).into_response())
}

#[derive(Deserialize)]
pub struct StatsQuery {
    campaign: Option<String>,
}

pub async fn stats(
    State(state): State<HttpState>,
    Query(q): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let ids: Vec<String> = match q.campaign {
        Some(id) if state.app.campaigns().get(&id).is_some() => vec![id],
        Some(id) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no campaign {id:?}"),
                Some("campaign"),
            ));
        }
        None => state.app.campaigns().campaigns.keys().cloned().collect(),
    };
    let mut all = Vec::new();
    for id in ids {
        let facts = state.app.db.kpi_facts(&id).await?;
        all.push(crate::report::stats(&id, &facts));
    }
    Ok(match all.len() {
        1 => Json(json!(all.remove(0))).into_response(),
        _ => Json(json!({"campaigns": all})).into_response(),
    })
}

pub async fn metrics(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let now = Utc::now();
    let facts = state.app.db.metric_facts(now).await?;
    let (catalog, loaded_at) = state.app.campaigns_loaded();
    let campaigns: Vec<&str> = catalog.campaigns.keys().map(String::as_str).collect();
    let files = crate::metrics::CampaignFiles {
        with_errors: catalog.files_with_errors(),
        loaded_at,
        paused: state.app.db.campaign_pauses().await?.into_keys().collect(),
    };
    let text = crate::metrics::render(&campaigns, files, &facts, &state.app.refusals, now);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
