//! `ringback serve` (HTTP, webhooks, worker) and `ringback worker` (worker only).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Failure, Outcome, catalog, connect};
use crate::app::App;
use crate::config::Config;
use crate::http::{HttpState, router};
use crate::runtime;

/// How long `serve` keeps answering webhooks of calls in flight after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(120);

pub async fn run(config: &Config, with_http: bool, concurrency: usize) -> Outcome {
    let db = connect(config).await?;
    let campaigns = catalog(config)?;
    for error in &campaigns.errors {
        eprintln!("{error} (campaign not loaded)");
    }
    let (provider, events) = runtime::provider(config, 0x5eed);
    let app = Arc::new(App::new(db, campaigns, provider, &config.public_url));
    if let Some(events) = events {
        tokio::spawn(runtime::pump_simulator(app.clone(), events));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| Failure::runtime(format!("SIGHUP handler: {e}")))?;
    tokio::spawn(runtime::reload_on_hangup(
        app.clone(),
        config.campaigns_dir.clone(),
        hangups,
        stop_rx.clone(),
    ));
    let worker = tokio::spawn(crate::jobs::run(app.clone(), concurrency, stop_rx.clone()));
    tokio::spawn(runtime::reconcile(
        app.clone(),
        stop_rx.clone(),
        runtime::RECONCILE_EVERY,
        runtime::STALE_AFTER,
    ));
    if let Some(days) = config.retention_days {
        tokio::spawn(runtime::purge(
            app.clone(),
            stop_rx.clone(),
            runtime::PURGE_EVERY,
            days,
        ));
    }

    if !with_http {
        runtime::shutdown_signal().await;
        app.stop_dialing();
        let _ = stop_tx.send(true);
        let _ = worker.await;
        return Ok(ExitCode::SUCCESS);
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Failure::runtime(format!("listen on {}: {e}", config.listen)))?;
    let bound = listener
        .local_addr()
        .map_or_else(|_| config.listen.clone(), |a| a.to_string());
    eprintln!(
        "ringback serving on http://{bound} (webhooks at {}/webhooks/twilio/…)",
        config.public_url
    );
    let state = HttpState {
        app: app.clone(),
        api_tokens: Arc::new(config.api_tokens.clone()),
    };
    let (http_stop_tx, mut http_stop_rx) = watch::channel(false);
    let drain_app = app.clone();
    tokio::spawn(async move {
        runtime::shutdown_signal().await;
        // Stop starting calls, keep answering the webhooks of calls in flight, then stop.
        drain_app.stop_dialing();
        let _ = stop_tx.send(true);
        let started = std::time::Instant::now();
        while started.elapsed() < DRAIN && drain_app.db.live_calls().await.unwrap_or(0) > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let _ = http_stop_tx.send(true);
    });
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = http_stop_rx.changed().await;
    })
    .await
    .map_err(|e| Failure::runtime(format!("http: {e}")))?;
    let _ = worker.await;
    Ok(ExitCode::SUCCESS)
}
