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
