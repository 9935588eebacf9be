//! A Twilio-compatible fake on a random port. It accepts `POST …/Calls.json`, then plays each call
//! out as Twilio does: signed status callbacks, the answer URL with `AnsweredBy`, the `<Gather>`
//! action with `Digits`, and the final status twice with a late `ringing` after it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ringback::provider::signature;

/// How the patient at a number behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// A person answers and presses this key (or none).
    Human(Option<&'static str>),
    Machine,
    NoAnswer,
    Busy,
    /// The API refuses the number with this error code.
    Refuse(u16, &'static str),
    /// The call is accepted, but no status callback ever comes (only a `GET` tells what became of it).
    Silent,
    /// An SMS is accepted, then fails with this error code in its status callback.
    SmsFails(&'static str),
    /// A landline: an SMS is refused with 21614 (not a mobile); a call rings unanswered.
    Landline,
}

/// What the fake saw and answered.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Every `Calls.json` form, accepted or not.
    pub requests: Vec<HashMap<String, String>>,
    /// The attempt id of each accepted call.
    pub accepted: Vec<String>,
    /// Calls asked about with `GET …/Calls/{Sid}.json`.
    pub fetched: Vec<String>,
    /// When each accepted call's request arrived.
    pub accepted_at: Vec<std::time::Instant>,
    /// Each webhook delivery: path, HTTP status, body.
    pub webhooks: Vec<(String, u16, String)>,
    /// Numbers a `<Dial>` connected a call to.
    pub dialed: Vec<String>,
    /// Every `Messages.json` form, accepted or not.
    pub messages: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
pub struct FakeTwilio {
    pub url: String,
    pub token: String,
    scripts: Arc<Mutex<HashMap<String, Script>>>,
    /// Responses to give before accepting calls normally (e.g. a 429, then a 500).
    pub failures: Arc<Mutex<Vec<(u16, String)>>>,
    pub log: Arc<Mutex<Log>>,
    http: reqwest::Client,
}

impl FakeTwilio {
    pub async fn start(token: &str) -> FakeTwilio {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeTwilio {
            url,
            token: token.to_string(),
            scripts: Default::default(),
            failures: Default::default(),
            log: Default::default(),
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Calls.json", post(create_call))
            .route("/2010-04-01/Accounts/{sid}/Calls/{call}", get(fetch_call))
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(create_message),
            )
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn script(&self, phone: &str, script: Script) {
        self.scripts
            .lock()
            .unwrap()
            .insert(phone.to_string(), script);
    }

    pub fn log(&self) -> Log {
        self.log.lock().unwrap().clone()
    }

    /// POST a signed webhook as Twilio does; returns status and body.
    pub async fn post(&self, url: &str, params: &[(&str, &str)]) -> (u16, String) {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = signature::sign(&self.token, url, &pairs);
        let response = self
            .http
            .post(url)
            .header("X-Twilio-Signature", signature)
            .form(&pairs)
            .send()
            .await;
        let (status, body) = match response {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        let path = url
            .split('?')
            .next()
            .unwrap_or_default()
            .rsplit("/webhooks/")
            .next()
            .unwrap_or_default()
            .to_string();
        self.log
            .lock()
            .unwrap()
            .webhooks
            .push((path, status, body.clone()));
        (status, body)
    }

    async fn play(self, sid: String, form: HashMap<String, String>, script: Script) {
        let to = form.get("To").cloned().unwrap_or_default();
        let status_url = form.get("StatusCallback").cloned().unwrap_or_default();
        let answer_url = form.get("Url").cloned().unwrap_or_default();
        let status = |s: &'static str, seq: &'static str| {
            vec![
                ("CallSid", sid.clone()),
                ("CallStatus", s.to_string()),
                ("To", to.clone()),
                ("SequenceNumber", seq.to_string()),
            ]
        };
        let send = |params: Vec<(&'static str, String)>| {
            let fake = self.clone();
            let url = status_url.clone();
            async move {
                let refs: Vec<(&str, &str)> =
                    params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                fake.post(&url, &refs).await
            }
        };
        if script == Script::Silent {
            return;
        }
        send(status("initiated", "0")).await;
        send(status("ringing", "1")).await;
        let final_status = match &script {
            Script::Human(digits) => {
                let answered = vec![
                    ("CallSid", sid.as_str()),
                    ("AnsweredBy", "human"),
                    ("To", to.as_str()),
                    ("CallStatus", "in-progress"),
                ];
                let (_, mut twiml) = self.post(&answer_url, &answered).await;
                // A `<Dial>`: the dialled number's script decides how the bridge ends.
                if let Some((action, number)) = dial_action(&twiml) {
                    let other = self.scripts.lock().unwrap().get(&number).cloned();
                    let (status, duration) = match other {
                        Some(Script::Human(_)) | Some(Script::Machine) => ("completed", "30"),
                        Some(Script::Busy) => ("busy", "0"),
                        Some(Script::Refuse(..)) => ("failed", "0"),
                        _ => ("no-answer", "0"),
                    };
                    self.log.lock().unwrap().dialed.push(number.clone());
                    twiml = self
                        .post(
                            &action,
                            &[
                                ("CallSid", sid.as_str()),
                                ("DialCallStatus", status),
                                ("DialCallDuration", duration),
                                ("To", to.as_str()),
                            ],
                        )
                        .await
                        .1;
                }
                if let (Some(d), Some(action)) = (digits, gather_action(&twiml)) {
                    self.post(
                        &action,
                        &[
                            ("CallSid", sid.as_str()),
                            ("Digits", d),
                            ("To", to.as_str()),
                        ],
                    )
                    .await;
                }
                "completed"
            }
            Script::Machine => {
                let answered = vec![
                    ("CallSid", sid.as_str()),
                    ("AnsweredBy", "machine_end_beep"),
                    ("To", to.as_str()),
                    ("CallStatus", "in-progress"),
                ];
                self.post(&answer_url, &answered).await;
                "completed"
            }
            Script::NoAnswer | Script::SmsFails(_) | Script::Landline => "no-answer",
            Script::Busy => "busy",
            Script::Refuse(..) | Script::Silent => return,
        };
        let mut done = status(final_status, "3");
        done.push(("CallDuration", "21".into()));
        // Delivered twice, and a late `ringing` after it: none of it may change the outcome.
        send(done.clone()).await;
        send(done).await;
        send(status("ringing", "1")).await;
    }
}

/// The `action` and `<Number>` of the first `<Dial>` in a TwiML document.
pub fn dial_action(twiml: &str) -> Option<(String, String)> {
    let start = twiml.find("<Dial")?;
    let rest = &twiml[start..];
    let at = rest.find("action=\"")? + 8;
    let end = rest[at..].find('"')?;
    let action = rest[at..at + end].replace("&amp;", "&");
    let n = rest.find("<Number>")? + 8;
    let n_end = rest[n..].find('<')?;
    Some((action, rest[n..n + n_end].to_string()))
}

/// The `action` of the first `<Gather>` in a TwiML document.
pub fn gather_action(twiml: &str) -> Option<String> {
    let start = twiml.find("<Gather")?;
    let rest = &twiml[start..];
    let at = rest.find("action=\"")? + 8;
    let end = rest[at..].find('"')?;
    Some(rest[at..at + end].replace("&amp;", "&"))
}

async fn create_call(
    State(fake): State<FakeTwilio>,
    Path(_sid): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> impl IntoResponse {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in &form {
        map.entry(k.clone())
            .and_modify(|e| e.push_str(&format!(",{v}")))
            .or_insert(v.clone());
    }
    fake.log.lock().unwrap().requests.push(map.clone());
    if let Some((status, body)) = {
        let mut f = fake.failures.lock().unwrap();
        (!f.is_empty()).then(|| f.remove(0))
    } {
        return (StatusCode::from_u16(status).unwrap(), body).into_response();
    }
    let to = map.get("To").cloned().unwrap_or_default();
    let script = fake
        .scripts
        .lock()
        .unwrap()
        .get(&to)
        .cloned()
        .unwrap_or(Script::NoAnswer);
    if let Script::Refuse(status, code) = script {
        let body = format!("{{\"code\":{code},\"message\":\"refused\",\"status\":{status}}}");
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response();
    }
    let sid = format!("CA{}", ulid::Ulid::generate().to_string().to_lowercase());
    let attempt = map
        .get("Url")
        .and_then(|u| u.split("attempt=").nth(1))
        .unwrap_or_default()
        .to_string();
    {
        let mut log = fake.log.lock().unwrap();
        log.accepted.push(attempt);
        log.accepted_at.push(std::time::Instant::now());
    }
    tokio::spawn(fake.clone().play(sid.clone(), map, script));
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        format!("{{\"sid\":\"{sid}\",\"status\":\"queued\"}}"),
    )
        .into_response()
}

async fn create_message(
    State(fake): State<FakeTwilio>,
    Path(_sid): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> impl IntoResponse {
    let map: HashMap<String, String> = form.into_iter().collect();
    fake.log.lock().unwrap().messages.push(map.clone());
    let to = map.get("To").cloned().unwrap_or_default();
    let script = fake.scripts.lock().unwrap().get(&to).cloned();
    let refused = match script {
        Some(Script::Refuse(status, code)) => Some((status, code)),
        Some(Script::Landline) => Some((400, "21614")),
        _ => None,
    };
    if let Some((status, code)) = refused {
        let body = format!("{{\"code\":{code},\"message\":\"refused\",\"status\":{status}}}");
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response();
    }
    let sid = format!("SM{}", ulid::Ulid::generate().to_string().to_lowercase());
    let status_url = map.get("StatusCallback").cloned().unwrap_or_default();
    let play = fake.clone();
    let message = sid.clone();
    tokio::spawn(async move {
        let last: Vec<(&str, &str)> = match script {
            Some(Script::SmsFails(code)) => {
                vec![("MessageStatus", "undelivered"), ("ErrorCode", code)]
            }
            _ => vec![("MessageStatus", "delivered")],
        };
        for step in [vec![("MessageStatus", "sent")], last.clone(), last] {
            let mut params = vec![("MessageSid", message.as_str()), ("To", to.as_str())];
            params.extend(step);
            play.post(&status_url, &params).await;
        }
    });
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        format!("{{\"sid\":\"{sid}\",\"status\":\"queued\"}}"),
    )
        .into_response()
}

async fn fetch_call(
    State(fake): State<FakeTwilio>,
    Path((_sid, call)): Path<(String, String)>,
) -> impl IntoResponse {
    let sid = call.trim_end_matches(".json");
    fake.log.lock().unwrap().fetched.push(sid.to_string());
    (
        [("content-type", "application/json")],
        format!("{{\"sid\":\"{sid}\",\"status\":\"no-answer\"}}"),
    )
}
