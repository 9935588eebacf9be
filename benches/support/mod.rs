//! What the benchmarks share.

#![allow(dead_code)]

use chrono::Utc;
use chrono_tz::Tz;

/// A zone where it is now between 09:00 and 18:00, so calls may be placed whenever a bench runs
/// (quiet hours apply to benchmarks too).
pub fn daytime_zone() -> Tz {
    [
        "Europe/Madrid",
        "America/New_York",
        "America/Los_Angeles",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Pacific/Auckland",
        "Europe/London",
        "Asia/Dubai",
    ]
    .iter()
    .filter_map(|z| z.parse::<Tz>().ok())
    .find(|z| (9 * 60..18 * 60).contains(&ringback::plan::calendar::local_minute(*z, Utc::now())))
    .unwrap_or(chrono_tz::Europe::Madrid)
}

/// The token the fake provider signs webhooks with.
pub const TOKEN: &str = "bench-token";

/// The real app: HTTP on a random port and the queue worker (32 attempts at once).
pub struct Running {
    /// The app's base URL (its `public_url`).
    pub public: String,
    stop: tokio::sync::watch::Sender<bool>,
    worker: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    /// Stop the worker and wait for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.worker.await;
    }
}

/// Start the app on `db` with `catalog`, talking to the Twilio-compatible fake at `provider`.
pub async fn start(
    db: ringback::store::Db,
    catalog: ringback::campaign::Catalog,
    provider: &str,
) -> Running {
    use std::sync::Arc;
    let client = ringback::provider::twilio::TwilioClient::new(
        provider,
        "ACbench",
        ringback::config::Secret::new(TOKEN),
        std::time::Duration::from_secs(5),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let app = Arc::new(ringback::app::App::new(
        db,
        catalog,
        ringback::provider::Provider::Twilio(client),
        &public,
    ));
    let state = ringback::http::HttpState {
        app: app.clone(),
        api_tokens: Arc::new(vec![]),
    };
    tokio::spawn(async move {
        axum::serve(listener, ringback::http::router(state))
            .await
            .unwrap()
    });
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(ringback::jobs::run(app, 32, stop_rx));
    Running {
        public,
        stop,
        worker,
    }
}

/// Import `list` (CSV) into the shipped `reminders` campaign of `catalog`, as `ringback import`
/// does; every row must be created.
pub async fn import_reminders(
    db: &ringback::store::Db,
    catalog: &ringback::campaign::Catalog,
    list: &str,
) {
    let campaign = catalog.require("reminders").expect("reminders campaign");
    let input = ringback::import::Input {
        source: "bench",
        bytes: list.as_bytes(),
        format: ringback::import::Format::Csv,
        now: Utc::now(),
        dry_run: false,
    };
    let summary = ringback::import::run(db, campaign, input, |_| {}, |_| {})
        .await
        .expect("import");
    assert!(
        summary.rejected.is_empty(),
        "{:?}",
        summary.rejected.first()
    );
    assert_eq!(
        summary.created as usize,
        list.lines().count() - 1,
        "{summary:?}"
    );
}

/// A list of `rows` appointments 3 to 22 days ahead: every first call is planned, none due
/// while a bench runs.
pub fn appointments(rows: usize) -> String {
    let mut out =
        String::from("appointment_id,patient_id,first_name,last_name,phone,starts_at,language\n");
    let today = Utc::now().date_naive();
    for i in 0..rows {
        let day = today
            .checked_add_days(chrono::Days::new(3 + (i % 20) as u64))
            .unwrap_or(today);
        let lang = ["ca", "es", "en"][i % 3];
        out.push_str(&format!(
            "A{i},P{i},Anna,Puig,{},{day} {:02}:00,{lang}\n",
            600_000_000 + i,
            9 + i % 9
        ));
    }
    out
}
