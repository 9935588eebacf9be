//! Wiring for the long-running commands: provider from configuration, the simulator's event pump,
//! the reconcile loop for calls whose final status never came, and shutdown on a signal.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::app::App;
use crate::config::{Config, ProviderKind};
use crate::events::StatusReport;
use crate::outreach::machine::CallStatus;
use crate::provider::Provider;
use crate::provider::simulator::{Rates, SimEvent, Simulator};
use crate::provider::twilio::TwilioClient;

/// Keep the process's heap on 4 KiB pages. mimalloc asks Linux for transparent huge pages, and
/// the kernel zeroes each 2 MiB page whole when it is first touched: an import, whose heap grows
/// by a few hundred MB in a couple of seconds, spent about a fifth of its time there (a 100,000-row
/// CSV: 2.6 s with huge pages, 2.0 s without). This is what `MIMALLOC_ALLOW_THP=0` does; the
/// binary and the benchmarks call it first thing.
pub fn small_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours. A
        // kernel that refuses it costs only speed.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

/// The configured provider, and the simulator's event stream when it is the simulator.
pub fn provider(
    config: &Config,
    seed: u64,
) -> (Provider, Option<mpsc::UnboundedReceiver<SimEvent>>) {
    match config.provider.kind {
        ProviderKind::Twilio => {
            let token = config
                .provider
                .auth_token
                .clone()
                .unwrap_or_else(|| crate::config::Secret::new(""));
            let sid = config.provider.account_sid.clone().unwrap_or_default();
            let client = TwilioClient::new(
                &config.provider.api_base,
                &sid,
                token,
                Duration::from_secs(10),
            )
            .with_messaging_service(config.provider.messaging_service_sid.clone());
            (Provider::Twilio(client), None)
        }
        ProviderKind::Simulator => {
            let (sim, events) = Simulator::new(seed, Rates::default(), Duration::from_secs(3));
            (Provider::Simulator(sim), Some(events))
        }
    }
}

/// Apply the simulator's events through the same handlers the webhooks use.
pub async fn pump_simulator(app: Arc<App>, mut events: mpsc::UnboundedReceiver<SimEvent>) {
    while let Some(event) = events.recv().await {
        let result = match event {
            SimEvent::Answered {
                attempt_id,
                answered_by,
                ..
            } => match app.on_answer(&attempt_id, Some(&answered_by)).await {
                // A callback's `<Dial>`: the other side picks up, most of the time.
                Ok(Some(twiml)) if twiml.contains("/voice/bridge?") => {
                    let seed = attempt_id
                        .bytes()
                        .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b));
                    let status = if seed % 100 < 85 {
                        "completed"
                    } else {
                        "no-answer"
                    };
                    app.on_bridge(&attempt_id, status, Some(40))
                        .await
                        .map(|_| ())
                }
                other => other.map(|_| ()),
            },
            SimEvent::Digits {
                attempt_id, digits, ..
            } => app.on_gather(&attempt_id, &digits).await.map(|_| ()),
            SimEvent::Ended {
                attempt_id,
                provider_id,
                status,
                duration_s,
            } => {
                let Some(status) = CallStatus::parse(&status) else {
                    continue;
                };
                let report = StatusReport {
                    status,
                    answered_by: None,
                    duration_s: Some(duration_s),
                    delivery_key: format!("sim:{provider_id}:{}", status.name()),
                };
                app.on_call_status(&attempt_id, &report).await.map(|_| ())
            }
        };
        if let Err(e) = result {
            warn!(error = %e, "simulated event not applied");
        }
    }
}

/// How often the reconcile loop looks, and how old a call without a final status must be.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);
pub const STALE_AFTER: TimeDelta = TimeDelta::minutes(10);

/// Ask the provider about calls whose final status never came (a lost callback), so their line
/// is released and the outreach moves on. Runs every `every` until `stop`.
pub async fn reconcile(
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
    every: Duration,
    stale_after: TimeDelta,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let Provider::Twilio(client) = &app.provider else {
            continue;
        };
        let Ok(stale) = app.db.stale_live_calls(Utc::now() - stale_after).await else {
            continue;
        };
        for (attempt, sid) in stale {
            let status = match &sid {
                Some(sid) => match client.fetch_call(sid).await {
                    Ok(info) => CallStatus::parse(&info.status),
                    Err(e) => {
                        warn!(attempt, error = %e, "reconcile: provider not asked");
                        continue;
                    }
                },
                // Never acknowledged by the provider: treat it as a call that did not happen.
                None => Some(CallStatus::Failed),
            };
            let Some(status) = status.filter(|s| s.is_final()) else {
                continue;
            };
            let report = StatusReport {
                status,
                answered_by: None,
                duration_s: None,
                delivery_key: format!("reconcile:{attempt}:{}", status.name()),
            };
            if let Err(e) = app.on_call_status(&attempt, &report).await {
                warn!(attempt, error = %e, "reconcile failed");
            } else {
                info!(
                    attempt,
                    status = status.name(),
                    "reconciled a call with the provider"
                );
            }
        }
    }
}

/// How often `serve` and `worker` purge what is older than `retention_days`.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Delete what ended more than `days` ago, now and every `every` until `stop` (see
/// [`crate::store::Db::purge`]). Counts only in the log.
pub async fn purge(app: Arc<App>, mut stop: watch::Receiver<bool>, every: Duration, days: u32) {
    loop {
        let cutoff = Utc::now() - TimeDelta::days(i64::from(days));
        match app.db.purge(cutoff, false).await {
            Ok(Some(p)) => info!(
                days,
                outreach = p.outreach,
                attempts = p.attempts,
                appointments = p.appointments,
                patients = p.patients,
                queue_jobs = p.queue_jobs,
                "purged what ended before the retention period"
            ),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "purge failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Read the campaigns again on each SIGHUP (`systemctl reload`), until `stop`. `hangups` is
/// registered before the server answers, so no SIGHUP ends the process the default way.
pub async fn reload_on_hangup(
    app: Arc<App>,
    dir: std::path::PathBuf,
    mut hangups: tokio::signal::unix::Signal,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            got = hangups.recv() => if got.is_none() { return },
            _ = stop.changed() => return,
        }
        reload_campaigns(&app, &dir);
    }
}

/// Run the campaigns of `dir` from now on. A file with errors keeps its campaign as it ran (see
/// [`crate::campaign::Catalog::reloaded`]); a directory that cannot be read changes nothing.
pub fn reload_campaigns(app: &App, dir: &std::path::Path) {
    let fresh = match crate::campaign::load_dir(dir) {
        Ok(fresh) => fresh,
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "campaigns not read again: they run as before");
            return;
        }
    };
    let (catalog, kept) = app.campaigns().reloaded(fresh);
    for error in &catalog.errors {
        warn!(%error, "campaign file has errors");
    }
    for campaign in &kept {
        warn!(
            campaign,
            "its file has errors: the campaign runs as it was before"
        );
    }
    // Said whatever the log level, as serve's start is: the admin who reloads looks for it.
    eprintln!(
        "campaigns read again from {}: {} running, {} file(s) with errors",
        dir.display(),
        catalog.campaigns.len(),
        catalog.files_with_errors()
    );
    app.set_campaigns(catalog);
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_heap_is_kept_off_huge_pages() {
        super::small_pages();
        // SAFETY: PR_GET_THP_DISABLE takes plain integers and touches no memory of ours.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
    }
}
