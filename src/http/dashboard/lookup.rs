//! `GET /lookup?phone=`: what ringback called one number about, for the front desk.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{FormAction, HEAD, LOOKUP_FORM, html_page, local, page_error};
use crate::campaign::Catalog;
use crate::http::{ApiError, HttpState};
use crate::provider::twiml::escape;
use crate::store::OutreachView;

#[derive(Deserialize)]
pub struct LookupQuery {
    #[serde(default)]
    phone: String,
}

/// `GET /lookup?phone=`: what ringback called a number about, newest first, in each campaign's
/// local time: for the front desk when a patient rings back after a missed call.
pub async fn lookup(
    State(state): State<HttpState>,
    Query(q): Query<LookupQuery>,
) -> Result<Response, ApiError> {
    let app = &state.app;
    let catalog = app.campaigns();
    let phone = match crate::http::sms::parse_number(&state, q.phone.trim()) {
        Ok(phone) => phone,
        Err(e) => {
            return Ok(page_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "{:?} is not a phone number ringback can call: {e}.",
                    q.phone.trim()
                ),
            ));
        }
    };
    let outreach = app
        .db
        .outreach_of_phone(phone.as_str(), crate::http::api::LOOKUP_LIMIT)
        .await?;
    let mut html = String::from(HEAD);
    html.push_str("<h1><a href=\"/\">ringback</a></h1>");
    html.push_str(LOOKUP_FORM);
    html.push_str(&format!("<h2>{}</h2>", escape(phone.as_str())));
    if let Some(source) = app.db.optout_of(phone.as_str()).await? {
        html.push_str(&format!(
            "<p><b>On the do-not-call ledger</b> ({}): ringback does not call or text this number.</p>",
            escape(&source)
        ));
        // Only at the patient's own request: the form says so, and keeps who took it off.
        html.push_str(&FormAction::RemoveOptOut.form(
            &state,
            phone.as_str(),
            "If the patient asks to be called again: ",
            Some("note (optional)"),
        ));
    }
    if outreach.is_empty() {
        html.push_str(
            "<p>ringback has not called this number (or no longer keeps what it did).</p>",
        );
    }
    for o in &outreach {
        outreach_section(&mut html, &state, &catalog, o);
    }
    html.push_str("</body></html>");
    Ok(html_page(html))
}

/// One outreach of a number: what it is about, where it stands, and each of its attempts.
fn outreach_section(html: &mut String, state: &HttpState, catalog: &Catalog, o: &OutreachView) {
    let visit = match (&o.appointment, o.appointment_at) {
        (Some(id), Some(at)) => format!(
            ", appointment {} on {}",
            escape(id),
            local(catalog, &o.campaign, at)
        ),
        _ => String::new(),
    };
    let by_hand = match (&o.withdrawn_by, &o.withdrawn_note) {
        (Some(by), Some(note)) => format!(" by {}: {}", escape(by), escape(note)),
        (Some(by), None) => format!(" by {}", escape(by)),
        _ => String::new(),
    };
    html.push_str(&format!(
        "<h3>{} ({}){}</h3><p>{}: {}{}{}</p>",
        escape(&o.campaign),
        escape(&o.kind),
        visit,
        escape(o.patient.as_deref().unwrap_or("unnamed caller")),
        escape(&o.state),
        o.outcome
            .as_deref()
            .map(|x| format!(", {}", escape(x)))
            .unwrap_or_default(),
        by_hand,
    ));
    // Still calling: staff who reached the patient another way stop it here.
    if o.state == "active" {
        html.push_str(&FormAction::Withdraw.form(
            state,
            &o.id,
            "Reached the patient another way? ",
            Some("note (optional)"),
        ));
    }
    html.push_str("<table><tr><th>when</th><th>channel</th><th>status</th><th>result</th></tr>");
    for t in &o.attempts {
        let result: Vec<String> = [
            t.call_status.clone(),
            t.answered_by.clone(),
            t.digits.as_ref().map(|d| format!("pressed {d}")),
            t.error.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let when = t.placed_at.unwrap_or(t.due_at);
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            local(catalog, &o.campaign, when),
            escape(&t.channel),
            escape(&t.status),
            escape(&result.join(", ")),
        ));
    }
    html.push_str("</table>");
}
