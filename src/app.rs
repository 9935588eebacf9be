//! The running application: the database, the campaigns, the provider and the pace, shared by
//! the queue worker, the webhooks and the API.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::campaign::Catalog;
use crate::metrics::Refusals;
use crate::pace::Pacer;
use crate::provider::Provider;
use crate::store::{Db, OptOutRemoval, Pause, Remover, StoreError, Withdrawal};

pub struct App {
    pub db: Db,
    /// The campaigns running, and when they were read; replaced whole when they are read again
    /// (SIGHUP), so each use holds one consistent catalog.
    campaigns: RwLock<(Arc<Catalog>, DateTime<Utc>)>,
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
        let (cps, burst) = strictest_pace(&campaigns);
        App {
            db,
            campaigns: RwLock::new((Arc::new(campaigns), Utc::now())),
            provider,
            public_url: public_url.trim_end_matches('/').to_string(),
            pacer: Pacer::new(cps, burst),
            refusals: Refusals::default(),
            // Two ULIDs made apart: 160 bits from the OS-seeded generator.
            form_key: format!("{}{}", ulid::Ulid::generate(), ulid::Ulid::generate()),
            dialing: AtomicBool::new(true),
        }
    }

    /// The campaigns running now.
    pub fn campaigns(&self) -> Arc<Catalog> {
        self.campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// The campaigns running now and when they were read, both of one reading.
    pub fn campaigns_loaded(&self) -> (Arc<Catalog>, DateTime<Utc>) {
        self.campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Run `catalog` from now on (the campaigns read again); the pace follows its strictest
    /// campaign. A call being placed finishes with the campaign it started with.
    pub fn set_campaigns(&self, catalog: Catalog) {
        let (cps, burst) = strictest_pace(&catalog);
        self.pacer.set(cps, burst);
        *self.campaigns.write().unwrap_or_else(|p| p.into_inner()) =
            (Arc::new(catalog), Utc::now());
    }

    /// Whether new calls and messages may start (not shutting down).
    pub fn dialing(&self) -> bool {
        self.dialing.load(Ordering::SeqCst)
    }

    /// Shutting down: start no more calls or messages.
    pub fn stop_dialing(&self) {
        self.dialing.store(false, Ordering::SeqCst);
    }

    /// Staff end outreach `id` by hand ([`Db::withdraw_outreach`]); an end is logged.
    pub async fn withdraw_outreach(
        &self,
        id: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<Withdrawal, StoreError> {
        let withdrawal = self.db.withdraw_outreach(id, by, note, Utc::now()).await?;
        if withdrawal == Withdrawal::Done {
            tracing::info!(outreach = id, "withdrawn by staff");
        }
        Ok(withdrawal)
    }

    /// Staff take E.164 `phone` off the opt-out ledger ([`Db::remove_optout`]); a removal is
    /// logged (the number masked).
    pub async fn remove_optout(
        &self,
        phone: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<Option<OptOutRemoval>, StoreError> {
        let remover = Remover::Staff { by, note };
        let removal = self.db.remove_optout(phone, remover, Utc::now()).await?;
        if let Some(r) = &removal {
            tracing::info!(to = %crate::phone::mask(phone), source = r.source, "taken off the opt-out ledger by staff");
        }
        Ok(removal)
    }

    /// Staff pause campaign `id` ([`Db::pause_campaign`]); a pause that begins is logged.
    pub async fn pause_campaign(
        &self,
        id: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<Pause, StoreError> {
        let (pause, began) = self.db.pause_campaign(id, by, note, Utc::now()).await?;
        if began {
            tracing::warn!(
                campaign = id,
                "campaign paused by staff: no calls or SMS until it is resumed"
            );
        }
        Ok(pause)
    }

    /// Staff resume campaign `id` ([`Db::resume_campaign`]); a pause that ends is logged.
    pub async fn resume_campaign(&self, id: &str, by: &str) -> Result<(), StoreError> {
        if let Some(ended) = self.db.resume_campaign(id, by, Utc::now()).await? {
            tracing::warn!(campaign = id, paused_at = %ended.paused_at, "campaign resumed by staff");
        }
        Ok(())
    }

    /// The URL of a webhook for one attempt.
    pub fn webhook(&self, path: &str, attempt_id: &str) -> String {
        format!(
            "{}/webhooks/twilio/{path}?attempt={attempt_id}",
            self.public_url
        )
    }
}

/// One provider account: the strictest campaign's pace holds for all (1 call a second, none
/// loaded).
fn strictest_pace(catalog: &Catalog) -> (f64, u32) {
    catalog
        .campaigns
        .values()
        .map(|c| (c.pacing.calls_per_second, c.pacing.burst))
        .fold(None, |acc: Option<(f64, u32)>, (cps, burst)| match acc {
            Some((a, b)) if a <= cps => Some((a, b)),
            _ => Some((cps, burst)),
        })
        .unwrap_or((1.0, 1))
}
