//! The running application: the database, the campaigns, the provider and the pace, shared by
//! the queue worker, the webhooks and the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::campaign::Catalog;
use crate::metrics::Refusals;
use crate::pace::Pacer;
use crate::provider::Provider;
use crate::store::Db;

pub struct App {
    pub db: Db,
    pub campaigns: Arc<Catalog>,
    pub provider: Provider,
    /// Base of every webhook URL handed to the provider (no trailing slash).
    pub public_url: String,
    pub pacer: Pacer,
    /// Webhooks refused since start, for `/metrics`.
    pub refusals: Refusals,
    /// Signs the dashboard's forms when no API token is configured (this machine only), so that
    /// another site cannot post them with the browser's session; random per process.
    pub form_key: String,
    /// Cleared on shutdown: no new call or message starts, webhooks are still answered.
    dialing: AtomicBool,
}

impl App {
    pub fn new(db: Db, campaigns: Catalog, provider: Provider, public_url: &str) -> App {
        // One provider account: the strictest campaign's pace holds for all.
        let (cps, burst) = campaigns
            .campaigns
            .values()
            .map(|c| (c.pacing.calls_per_second, c.pacing.burst))
            .fold(None, |acc: Option<(f64, u32)>, (cps, burst)| match acc {
                Some((a, b)) if a <= cps => Some((a, b)),
                _ => Some((cps, burst)),
            })
            .unwrap_or((1.0, 1));
        App {
            db,
            campaigns: Arc::new(campaigns),
            provider,
            public_url: public_url.trim_end_matches('/').to_string(),
            pacer: Pacer::new(cps, burst),
            refusals: Refusals::default(),
            // Two ULIDs made apart: 160 bits from the OS-seeded generator.
            form_key: format!("{}{}", ulid::Ulid::generate(), ulid::Ulid::generate()),
            dialing: AtomicBool::new(true),
        }
    }

    /// Whether new calls and messages may start (not shutting down).
    pub fn dialing(&self) -> bool {
        self.dialing.load(Ordering::SeqCst)
    }

    /// Shutting down: start no more calls or messages.
    pub fn stop_dialing(&self) {
        self.dialing.store(false, Ordering::SeqCst);
    }

    /// The URL of a webhook for one attempt.
    pub fn webhook(&self, path: &str, attempt_id: &str) -> String {
        format!(
            "{}/webhooks/twilio/{path}?attempt={attempt_id}",
            self.public_url
        )
    }
}
