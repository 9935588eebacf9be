//! A day's visits for the front desk (`GET /visits`), a page of the dashboard.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::{HEAD, LOOKUP_FORM, html_page, local, lookup_path, page_error, query_value};
use crate::http::{ApiError, HttpState};
use crate::provider::twiml::escape;

#[derive(Deserialize)]
pub struct VisitsPageQuery {
    campaign: Option<String>,
    on: Option<String>,
}

/// A day's visits for the front desk (`GET /visits?campaign=&on=`): each visit in the order
/// they come, with where its reminder stands, the day before and after a click away.
pub async fn visits(
    State(state): State<HttpState>,
    Query(q): Query<VisitsPageQuery>,
) -> Result<Response, ApiError> {
    let catalog = state.app.campaigns();
    let campaign = q.campaign.as_deref().filter(|c| !c.is_empty());
    let zone = match catalog.zone_for(campaign) {
        Ok(zone) => zone,
        Err(e) => return Ok(page_error(StatusCode::NOT_FOUND, &e)),
    };
    let on = q.on.as_deref().unwrap_or(crate::visits::DEFAULT_DAY);
    let (since, until) = match crate::visits::day(on, zone, Utc::now()) {
        Ok(span) => span,
        Err(e) => return Ok(page_error(StatusCode::BAD_REQUEST, &e)),
    };
    let list = state.app.db.visits(campaign, since, until).await?;
    let day = since.with_timezone(&zone).date_naive();
    // The same campaign on another day, or as CSV.
    let link = |path: &str, on: chrono::NaiveDate, format: &str| {
        let campaign = campaign
            .map(|id| format!("&campaign={}", query_value(id)))
            .unwrap_or_default();
        escape(&format!("{path}?on={on}{format}{campaign}"))
    };
    let mut html = String::from(HEAD);
    html.push_str("<h1><a href=\"/\">ringback</a></h1>");
    html.push_str(LOOKUP_FORM);
    html.push_str(&format!(
        "<h2>Visits on {} ({}, {})</h2><p><a href=\"{}\">← the day before</a> · <a href=\"{}\">the day after →</a> · \
         <a href=\"{}\">Download as CSV</a></p>",
        day.format("%A %Y-%m-%d"),
        escape(campaign.unwrap_or("every campaign")),
        escape(zone.name()),
        link("/visits", day - chrono::TimeDelta::days(1), ""),
        link("/visits", day + chrono::TimeDelta::days(1), ""),
        link("/v1/visits", day, "&format=csv"),
    ));
    if list.is_empty() {
        html.push_str("<p>No visits that day.</p>");
    } else {
        html.push_str(
            "<table><tr><th>time</th><th>campaign</th><th>appointment</th><th>patient</th><th>phone</th>\
             <th>status</th><th>reminder</th><th class=n>calls</th><th class=n>SMS</th><th>next, or follow-up</th></tr>",
        );
    }
    for v in &list {
        let reminder = match (v.reminder.as_str(), v.outcome.as_deref()) {
            ("ended", Some(outcome)) => outcome.to_string(),
            ("calling", _) => "still calling".to_string(),
            ("none", _) => "not reminded".to_string(),
            (other, _) => other.to_string(),
        };
        let next = match (v.next_attempt_at, v.followup.as_deref()) {
            (Some(at), _) => format!("{} {}", v.next_kind(), local(&catalog, &v.campaign, at)),
            (None, Some(f)) => format!("follow-up {f}"),
            (None, None) => String::new(),
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td>\
             <td>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            escape(v.appointment_at.get(11..16).unwrap_or("")),
            escape(&v.campaign),
            escape(&v.appointment_id),
            escape(&v.patient),
            escape(&lookup_path(&v.phone)),
            escape(&v.phone),
            escape(&v.status),
            escape(&reminder),
            v.calls,
            v.sms,
            escape(&next),
        ));
    }
    if !list.is_empty() {
        html.push_str("</table>");
    }
    html.push_str("</body></html>");
    Ok(html_page(html))
}
