//! `GET /`: the dashboard for people in a browser — each campaign's KPIs, the latest imports and
//! the open follow-up worklist, each follow-up with a form to mark it done. Same access as `/v1`
//! (an API token as the password of the browser's login prompt, or this machine only when no
//! token is configured). Times are the campaign's local time.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::{ApiError, HttpState};
use crate::campaign::Catalog;
use crate::provider::twiml::escape;
use crate::store::{Pause, signed_by};

mod lookup;
mod visits;
pub use lookup::lookup;
pub use visits::visits;

/// `at` as the clinic reads it: in the campaign's zone (UTC for a campaign no longer loaded).
fn local(catalog: &Catalog, campaign: &str, at: DateTime<Utc>) -> String {
    match catalog.get(campaign) {
        Some(c) => at
            .with_timezone(&c.timezone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        None => at
            .with_timezone(&Tz::UTC)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
    }
}

/// What a dashboard form does, signed into its token so that one form's token does no other's work.
#[derive(Clone, Copy)]
enum FormAction {
    /// Resolve the follow-up whose id is signed.
    Resolve,
    /// Take the number signed off the opt-out ledger.
    RemoveOptOut,
    /// End the outreach whose id is signed.
    Withdraw,
    /// Pause the campaign whose id is signed.
    Pause,
    /// Resume the campaign whose id is signed.
    Resume,
}

impl FormAction {
    /// Where the form for `id` posts.
    fn path(self, id: &str) -> String {
        match self {
            FormAction::Resolve => format!("/followups/{id}/resolve"),
            FormAction::RemoveOptOut => format!("/optouts/{id}/remove"),
            FormAction::Withdraw => format!("/outreach/{id}/withdraw"),
            FormAction::Pause => format!("/campaigns/{id}/pause"),
            FormAction::Resume => format!("/campaigns/{id}/resume"),
        }
    }

    /// The form that does this to `id`, signed for it: `prompt` before the name, and a note
    /// field with placeholder `note` when it takes one.
    fn form(self, state: &HttpState, id: &str, prompt: &str, note: Option<&str>) -> String {
        let note = note
            .map(|n| format!(" <input name=note placeholder=\"{n}\" maxlength=2000 size=14>"))
            .unwrap_or_default();
        format!(
            "<form method=post action=\"{}\"><input type=hidden name=token value=\"{}\">{prompt}\
             <input name=by placeholder=\"your name\" required maxlength=200 size=10>{note} <button>{}</button></form>",
            escape(&self.path(id)),
            form_token(state, self, id),
            self.button(),
        )
    }

    /// What the form's button says.
    fn button(self) -> &'static str {
        match self {
            FormAction::Resolve => "Done",
            FormAction::RemoveOptOut => "Take off the ledger",
            FormAction::Withdraw => "Stop calling",
            FormAction::Pause => "Pause calls",
            FormAction::Resume => "Resume calls",
        }
    }
}

/// The signature a form to act on `id` (a follow-up, a number) carries: only a page served with this
/// deployment's secret has it. The secret is the API tokens, which every `serve` behind a load
/// balancer shares (a page from one, its form posted to another); with none configured (this
/// machine only), the process's own random key.
fn form_token(state: &HttpState, action: FormAction, id: &str) -> String {
    use base64::Engine;
    let hmac =
        |key: &[u8]| Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    let key = if state.api_tokens.is_empty() {
        state.app.form_key.as_bytes().to_vec()
    } else {
        let mut derive = hmac(b"ringback dashboard forms");
        for token in state.api_tokens.iter() {
            derive.update(token.expose().as_bytes());
            derive.update(b"\0");
        }
        derive.finalize().into_bytes().to_vec()
    };
    let mut mac = hmac(&key);
    mac.update(match action {
        FormAction::Resolve => b"resolve:".as_slice(),
        FormAction::RemoveOptOut => b"remove-optout:".as_slice(),
        FormAction::Withdraw => b"withdraw:".as_slice(),
        FormAction::Pause => b"pause:".as_slice(),
        FormAction::Resume => b"resume:".as_slice(),
    });
    mac.update(id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Every page's head: the title and the style.
const HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
     <title>ringback</title><style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
     table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}\
     th{background:#f4f4f4}.n{text-align:right}h2{margin-top:2rem}</style></head><body>";

/// Look a patient's number up: what ringback called them about (`GET /lookup`).
const LOOKUP_FORM: &str = "<form method=get action=\"/lookup\"><input name=phone placeholder=\"patient's number\" \
     required maxlength=40 size=18> <button>Look up</button></form>";

pub async fn page(State(state): State<HttpState>) -> Result<Response, ApiError> {
    // One catalog for the whole page, even across a reload.
    let catalog = state.app.campaigns();
    let mut html = String::from(HEAD);
    html.push_str("<h1>ringback</h1>");
    html.push_str(LOOKUP_FORM);
    campaigns_table(&mut html, &state, &catalog).await?;
    imports_table(&mut html, &state, &catalog).await?;
    for error in &catalog.errors {
        html.push_str(&format!("<p>⚠ {}</p>", escape(&error.to_string())));
    }
    followups_table(&mut html, &state, &catalog).await?;
    // Fresh every 30 s, but never under someone typing a name or a note into a Done form (a
    // plain meta refresh would wipe what they typed).
    html.push_str(
        "</table><script>setInterval(function () {\
         var typing = Array.prototype.some.call(document.querySelectorAll('form input[name=by], form input[name=note]'),\
         function (i) { return i.value !== '' || i === document.activeElement; });\
         if (!typing) { location.reload(); } }, 30000);</script></body></html>",
    );
    Ok(html_page(html))
}

/// Each campaign: its KPIs, its outcomes, and the form that pauses or resumes it.
async fn campaigns_table(
    html: &mut String,
    state: &HttpState,
    catalog: &Catalog,
) -> Result<(), ApiError> {
    let app = &state.app;
    html.push_str("<h2>Campaigns</h2><table><tr><th>campaign</th><th>kind</th><th class=n>outreach</th><th class=n>active</th>\
                   <th class=n>contact rate</th><th class=n>confirmed</th><th class=n>calls</th><th class=n>SMS sent</th>\
                   <th class=n>opt-outs</th><th>outcomes</th><th>calls</th></tr>");
    let pauses = app.db.campaign_pauses().await?;
    for (id, campaign) in &catalog.campaigns {
        let s = crate::report::stats(id, &app.db.kpi_facts(id).await?);
        let outcomes: Vec<String> = s
            .outcomes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        html.push_str(&format!(
            "<tr><td>{} <small>({})</small></td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.0} %</td>\
             <td class=n>{:.0} %</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
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
            outcomes_cell(campaign, &outcomes),
            pause_form(state, catalog, id, pauses.get(id)),
        ));
    }
    html.push_str("</table>");
    Ok(())
}

/// The last ten lists imported (or refused), with their counts.
async fn imports_table(
    html: &mut String,
    state: &HttpState,
    catalog: &Catalog,
) -> Result<(), ApiError> {
    let imports = state.app.db.imports(None, 10).await?;
    html.push_str("<h2>Latest imports</h2>");
    if imports.is_empty() {
        html.push_str("<p>No appointment list imported yet.</p>");
    } else {
        html.push_str(
            "<table><tr><th>at</th><th>campaign</th><th>list</th>\
             <th class=n>created</th><th class=n>updated</th><th class=n>withdrawn</th>\
             <th class=n>unchanged</th><th class=n>too late</th><th class=n>opted out (not called)</th><th class=n>rejected rows</th><th>refused</th></tr>",
        );
        for i in &imports {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
                 <td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
                local(catalog, &i.campaign, i.at),
                escape(&i.campaign),
                escape(&i.source),
                i.created,
                i.updated,
                i.withdrawn,
                i.unchanged,
                i.skipped_too_late,
                i.on_ledger,
                i.rejected,
                escape(i.error.as_deref().unwrap_or("")),
            ));
        }
        html.push_str("</table>");
    }
    Ok(())
}

/// The open follow-ups (the first 500), each with its Done form.
async fn followups_table(
    html: &mut String,
    state: &HttpState,
    catalog: &Catalog,
) -> Result<(), ApiError> {
    let followups = state.app.db.followups(None, Some("open")).await?;
    html.push_str(&format!(
        "<h2>Follow-ups ({})</h2><p><a href=\"/v1/followups?format=csv\">Download as CSV</a></p>\
         <table><tr><th>since</th><th>reason</th><th>campaign</th><th>patient</th><th>phone</th><th>appointment</th><th>detail</th><th>done</th></tr>",
        followups.len()
    ));
    for f in followups.iter().take(500) {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            local(catalog, &f.campaign, f.created_at),
            escape(&f.reason),
            escape(&f.campaign),
            escape(f.patient.as_deref().unwrap_or("")),
            match f.phone.as_deref() {
                Some(phone) => format!(
                    "<a href=\"{}\">{}</a>",
                    escape(&lookup_path(phone)),
                    escape(phone)
                ),
                None => String::new(),
            },
            escape(f.appointment.as_deref().unwrap_or("")),
            escape(f.detail.as_deref().unwrap_or("")),
            FormAction::Resolve.form(state, &f.id, "", Some("note")),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct StaffForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    note: String,
}

impl StaffForm {
    /// The name and note typed, once the token shows the form is this dashboard's own for
    /// `action` on `id`; else the status and message of the page that says what is wrong.
    fn signed(
        &self,
        state: &HttpState,
        action: FormAction,
        id: &str,
    ) -> Result<(&str, Option<&str>), (StatusCode, String)> {
        let expected = form_token(state, action, id);
        if !super::constant_time_eq(expected.as_bytes(), self.token.as_bytes()) {
            return Err((
                StatusCode::FORBIDDEN,
                "This form is out of date, or not from this dashboard. Go back, reload the page and try again.".into(),
            ));
        }
        signed_by(&self.by, Some(&self.note)).map_err(|_| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "Type your name (up to 200 characters; a note up to 2000), then press {}.",
                    action.button()
                ),
            )
        })
    }
}

/// `POST /followups/{id}/resolve` from the dashboard's form: resolved by whoever typed their name,
/// then back to the dashboard (done already, by a second click or a colleague: the same).
pub async fn resolve(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let app = &state.app;
    let (by, note) = match form.signed(&state, FormAction::Resolve, &id) {
        Ok(signed) => signed,
        Err((status, message)) => return Ok(page_error(status, &message)),
    };
    match app.db.resolve_followup(&id, by, note, Utc::now()).await? {
        None => Ok(page_error(StatusCode::NOT_FOUND, "No such follow-up.")),
        Some(_) => Ok(Redirect::to("/").into_response()),
    }
}

/// `POST /optouts/{phone}/remove` from the lookup page's form: the number off the ledger, kept
/// with the name typed, then back to the number's page.
pub async fn remove_optout(
    State(state): State<HttpState>,
    Path(phone): Path<String>,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let (by, note) = match form.signed(&state, FormAction::RemoveOptOut, &phone) {
        Ok(signed) => signed,
        Err((status, message)) => return Ok(page_error(status, &message)),
    };
    // The token signs the number as the page showed it: E.164, so no parsing can differ.
    state.app.remove_optout(&phone, by, note).await?;
    // Taken off by a colleague meanwhile: the same page, which shows it off the ledger.
    Ok(Redirect::to(&lookup_path(&phone)).into_response())
}

/// `POST /outreach/{id}/withdraw` from the lookup page's form: the outreach ended by hand, kept
/// with the name typed, then back to its number's page (ended already, by a colleague or by the
/// patient's answer meanwhile: the same page, which shows how it ended).
pub async fn withdraw(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let (by, note) = match form.signed(&state, FormAction::Withdraw, &id) {
        Ok(signed) => signed,
        Err((status, message)) => return Ok(page_error(status, &message)),
    };
    state.app.withdraw_outreach(&id, by, note).await?;
    match state.app.db.outreach_view(&id).await? {
        Some(o) => Ok(Redirect::to(&lookup_path(&o.phone)).into_response()),
        None => Ok(page_error(StatusCode::NOT_FOUND, "No such outreach.")),
    }
}

/// A campaign's calls column: running with a form to pause them, or paused (since when, by
/// whom, why) with a form to resume them.
fn pause_form(state: &HttpState, catalog: &Catalog, id: &str, pause: Option<&Pause>) -> String {
    let (action, status) = match pause {
        None => (FormAction::Pause, "running".to_string()),
        Some(p) => (
            FormAction::Resume,
            format!(
                "<b>paused</b> since {} by {}{}",
                local(catalog, id, p.paused_at),
                escape(&p.paused_by),
                p.note
                    .as_deref()
                    .map(|n| format!(": {}", escape(n)))
                    .unwrap_or_default()
            ),
        ),
    };
    let note = matches!(action, FormAction::Pause).then_some("why");
    status + &action.form(state, id, "", note)
}

/// `POST /campaigns/{id}/pause` and `/resume` from the dashboard's forms, then back to it.
pub async fn pause(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let (by, note) = match form.signed(&state, FormAction::Pause, &id) {
        Ok(signed) => signed,
        Err((status, message)) => return Ok(page_error(status, &message)),
    };
    state.app.pause_campaign(&id, by, note).await?;
    Ok(Redirect::to("/").into_response())
}

pub async fn resume(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let (by, _) = match form.signed(&state, FormAction::Resume, &id) {
        Ok(signed) => signed,
        Err((status, message)) => return Ok(page_error(status, &message)),
    };
    state.app.resume_campaign(&id, by).await?;
    Ok(Redirect::to("/").into_response())
}

/// The lookup page of an E.164 number: a '+' then digits, so only the '+' needs escaping.
/// A campaign's outcomes so far, and links to the last week's, one line each, and (reminders)
/// to today's and tomorrow's visits.
fn outcomes_cell(campaign: &crate::campaign::Campaign, outcomes: &[String]) -> String {
    let id = query_value(&campaign.id);
    let mut links = vec![(
        format!("/v1/outcomes?campaign={id}&since=7d&format=csv"),
        "outcomes of the last 7 days, one line each (CSV)",
    )];
    if matches!(campaign.kind, crate::campaign::Kind::Reminder(_)) {
        links.push((format!("/visits?campaign={id}&on=today"), "today's visits"));
        links.push((
            format!("/visits?campaign={id}&on=tomorrow"),
            "tomorrow's visits",
        ));
    }
    let links: Vec<String> = links
        .iter()
        .map(|(href, text)| format!("<a href=\"{}\">{text}</a>", escape(href)))
        .collect();
    format!("{}<br>{}", escape(&outcomes.join(", ")), links.join(" · "))
}

/// `text` as a query string value: letters, digits and `-_.~` as they are, the rest %-escaped.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn lookup_path(phone: &str) -> String {
    format!("/lookup?phone={}", phone.replace('+', "%2B"))
}

fn page_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ringback</title></head>\
             <body style=\"font-family:system-ui,sans-serif;margin:2rem\"><p>{}</p><p><a href=\"/\">Back to the dashboard</a></p></body></html>",
            escape(message)
        ),
    )
        .into_response()
}

/// A page as sent (never cached: see `authorize`).
fn html_page(html: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
