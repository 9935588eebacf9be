//! `GET /`: the dashboard for people in a browser — each campaign's KPIs, the latest imports and
//! the open follow-up worklist. Same access as `/v1` (an API token as the password of the
//! browser's login prompt, or this machine only when no token is configured).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiError, HttpState};
use crate::provider::twiml::escape;

pub async fn page(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let app = &state.app;
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"30\">\
         <title>ringback</title><style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
         table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}\
         th{background:#f4f4f4}.n{text-align:right}h2{margin-top:2rem}</style></head><body><h1>ringback</h1>",
    );
    html.push_str("<h2>Campaigns</h2><table><tr><th>campaign</th><th>kind</th><th class=n>outreach</th><th class=n>active</th>\
                   <th class=n>contact rate</th><th class=n>confirmed</th><th class=n>calls</th><th class=n>SMS sent</th>\
                   <th class=n>opt-outs</th><th>outcomes</th></tr>");
    for (id, campaign) in &app.campaigns.campaigns {
        let s = crate::report::stats(id, &app.db.kpi_facts(id).await?);
        let outcomes: Vec<String> = s
            .outcomes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        html.push_str(&format!(
            "<tr><td>{} <small>({})</small></td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.0} %</td>\
             <td class=n>{:.0} %</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            escape(&campaign.name),
            escape(id),
            campaign.kind.name(),
            s.outreach.total,
            s.outreach.active,
            s.contact_rate * 100.0,
            s.confirmation_rate * 100.0,
            s.calls.placed,
            s.sms.sent,
            s.opt_outs,
            escape(&outcomes.join(", "))
        ));
    }
    html.push_str("</table>");
    let imports = app.db.imports(None, 10).await?;
    html.push_str("<h2>Latest imports</h2>");
    if imports.is_empty() {
        html.push_str("<p>No appointment list imported yet.</p>");
    } else {
        html.push_str(
            "<table><tr><th>at</th><th>campaign</th><th>list</th>\
             <th class=n>created</th><th class=n>updated</th><th class=n>withdrawn</th>\
             <th class=n>unchanged</th><th class=n>too late</th><th class=n>rejected rows</th><th>refused</th></tr>",
        );
        for i in &imports {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
                 <td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
                i.at.format("%Y-%m-%d %H:%M UTC"),
                escape(&i.campaign),
                escape(&i.source),
                i.created,
                i.updated,
                i.withdrawn,
                i.unchanged,
                i.skipped_too_late,
                i.rejected,
                escape(i.error.as_deref().unwrap_or("")),
            ));
        }
        html.push_str("</table>");
    }
    for error in &app.campaigns.errors {
        html.push_str(&format!("<p>⚠ {}</p>", escape(&error.to_string())));
    }
    let followups = app.db.followups(None, Some("open")).await?;
    html.push_str(&format!(
        "<h2>Follow-ups ({})</h2><p><a href=\"/v1/followups?format=csv\">Download as CSV</a></p>\
         <table><tr><th>since</th><th>reason</th><th>campaign</th><th>patient</th><th>phone</th><th>appointment</th><th>detail</th></tr>",
        followups.len()
    ));
    for f in followups.iter().take(500) {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.created_at.format("%Y-%m-%d %H:%M UTC"),
            escape(&f.reason),
            escape(&f.campaign),
            escape(f.patient.as_deref().unwrap_or("")),
            escape(f.phone.as_deref().unwrap_or("")),
            escape(f.appointment.as_deref().unwrap_or("")),
            escape(f.detail.as_deref().unwrap_or("")),
        ));
    }
    html.push_str("</table></body></html>");
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}
