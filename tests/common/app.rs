//! The real app, in-process: HTTP on a random port and the queue worker, against a test database
//! and the Twilio-compatible fake.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use ringback::app::App;
use ringback::campaign::load_dir;
use ringback::config::Secret;
use ringback::http::{HttpState, router};
use ringback::plan::calendar;
use ringback::provider::Provider;
use ringback::provider::twilio::TwilioClient;
use tokio::sync::watch;

use super::TestEnv;
use super::fake_twilio::FakeTwilio;

/// A zone where it is now between 10:00 and 18:00, so calls may be placed whenever tests run.
pub fn daytime_zone() -> Tz {
    let zones = [
        "Europe/Madrid",
        "America/New_York",
        "America/Los_Angeles",
        "Pacific/Honolulu",
        "Pacific/Auckland",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Europe/London",
        "America/Chicago",
        "Asia/Dubai",
        "Australia/Sydney",
        "America/Denver",
    ];
    let now = Utc::now();
    zones
        .iter()
        .map(|z| z.parse::<Tz>().unwrap())
        .find(|z| (10 * 60..18 * 60).contains(&calendar::local_minute(*z, now)))
        .expect("some zone has daytime")
}

/// A zone where it is now night (22:00–06:00), so nothing may be dialled or sent.
pub fn night_zone() -> Tz {
    let zones = [
        "Europe/Madrid",
        "America/New_York",
        "America/Los_Angeles",
        "Pacific/Honolulu",
        "Pacific/Auckland",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Europe/London",
        "Asia/Dubai",
        "Australia/Sydney",
    ];
    let now = Utc::now();
    zones
        .iter()
        .map(|z| z.parse::<Tz>().unwrap())
        .find(|z| !(6 * 60..22 * 60).contains(&calendar::local_minute(*z, now)))
        .expect("some zone has night")
}

/// A reminder campaign open every day in `zone`, paced for tests.
pub fn test_campaign(zone: Tz, calls_per_second: f64) -> String {
    format!(
        r#"name = "Test reminders"
clinic = "CAP Test"
kind = "reminder"
timezone = "{zone}"
country = "ES"
caller_id = "+34930000000"
clinic_phone = "+34930000001"
default_language = "en"
[window]
mon-sun = "08:00-21:00"
[reminder]
start = "48h"
stop = "10m"
[retry]
max_calls = 3
gaps = ["1h"]
max_calls_per_day = 1
max_calls_per_week = 3
[pacing]
calls_per_second = {calls_per_second}
burst = 1
max_concurrent_calls = 20
[messages.en]
voice = "Hello {{first_name}}, {{clinic}} reminds you of your visit on {{date}} at {{time}}. Press 1 to confirm."
voicemail = "Hello, {{clinic}} calling about a visit. Call us on {{clinic_phone}}."
"#
    )
}

pub struct Running {
    pub app: Arc<App>,
    pub url: String,
    stop: watch::Sender<bool>,
    worker: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Running {
    pub async fn stop(mut self) {
        self.stop_worker().await;
    }

    /// Stop the queue worker; the HTTP side keeps answering.
    pub async fn stop_worker(&mut self) {
        let _ = self.stop.send(true);
        if let Some(worker) = self.worker.take() {
            let _ = worker.await;
        }
    }
}

/// The app on `env`'s migrated database with the campaigns in `env.path()/campaigns`, its
/// provider at `provider_url`, reached at `public_url`; API token `api-token`.
pub async fn http_state(
    env: &TestEnv,
    provider_url: &str,
    provider_token: &str,
    public_url: &str,
) -> HttpState {
    let db = env.db().await;
    db.migrate().await.unwrap();
    let catalog = load_dir(&env.campaigns()).unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let client = TwilioClient::new(
        provider_url,
        "ACtest",
        Secret::new(provider_token.to_string()),
        Duration::from_secs(5),
    );
    let app = Arc::new(App::new(db, catalog, Provider::Twilio(client), public_url));
    HttpState {
        app,
        api_tokens: Arc::new(vec![Secret::new("api-token")]),
    }
}

/// Start the app against `env`'s database with the campaigns in `env.path()/campaigns`.
pub async fn start(env: &TestEnv, fake: &FakeTwilio) -> Running {
    if let Ok(filter) = std::env::var("RINGBACK_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = http_state(env, &fake.url, &fake.token, &url).await;
    let app = state.app.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let (stop, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(ringback::jobs::run(app.clone(), 8, stop_rx));
    Running {
        app,
        url,
        stop,
        worker: Some(worker),
    }
}

/// Wait (up to `limit`) until `done` holds; panics with `what` otherwise.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < limit,
            "timed out after {:?} waiting for {what}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An appointment list (phone, first name, last name per patient) whose visits are 30 h ahead,
/// so each first call is due now.
pub fn appointments_csv(patients: &[(String, String, String)]) -> String {
    let when = (Utc::now() + chrono::TimeDelta::hours(30)).to_rfc3339();
    let mut csv =
        String::from("appointment_id,patient_id,first_name,last_name,phone,starts_at,language\n");
    for (i, (phone, first, last)) in patients.iter().enumerate() {
        csv.push_str(&format!("A{i},P{i},{first},{last},{phone},{when},en\n"));
    }
    csv
}

/// `n` patients named `Pat0…` with numbers `{prefix}00…`.
pub fn numbered(prefix: &str, n: usize) -> Vec<(String, String, String)> {
    (0..n)
        .map(|i| (format!("{prefix}{i:02}"), format!("Pat{i}"), String::new()))
        .collect()
}

/// Import into the test campaign, as `ringback import` does.
pub async fn import_csv(app: &App, csv: &str) -> ringback::import::Summary {
    let catalog = app.campaigns();
    let campaign = catalog.get("test").expect("the test campaign");
    let input = ringback::import::Input {
        source: "test",
        bytes: csv.as_bytes(),
        format: ringback::import::Format::Csv,
        now: Utc::now(),
        dry_run: false,
    };
    ringback::import::run(&app.db, campaign, input, |_| {}, |_| {})
        .await
        .expect("import")
}

/// Write the test campaign. `alone`: the shipped campaigns go, so the account's pace is its own.
pub fn use_test_campaign(env: &TestEnv, toml: String, alone: bool) {
    std::fs::write(env.campaigns().join("test.toml"), toml).unwrap();
    if alone {
        std::fs::remove_file(env.campaigns().join("reminders.toml")).unwrap();
        std::fs::remove_file(env.campaigns().join("callbacks.toml")).unwrap();
    }
}
