//! Pacing: calls per second with a burst, per provider account, across every worker.
//!
//! In one process a `governor` limiter spaces calls. With several workers on PostgreSQL the
//! limiter state lives in the database: a GCRA row that one statement advances atomically, so the
//! sum of all workers never exceeds the rate. A provider that says "slow down" (429, 5xx) halves
//! the pace for a while.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::store::{Db, StoreError};

pub struct Pacer {
    rate: Mutex<Rate>,
    /// Until when the provider asked us to slow down, and how much.
    slowed: Mutex<Option<(Instant, u32)>>,
}

/// A pace: calls per second with a burst, and the limiter that keeps it in this process.
#[derive(Clone)]
struct Rate {
    calls_per_second: f64,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    interval: Duration,
    burst: u32,
}

impl Rate {
    /// `calls_per_second` ≥ 1000 means no pacing (benchmarks against a local fake).
    fn new(calls_per_second: f64, burst: u32) -> Rate {
        let burst = burst.max(1);
        if calls_per_second >= 1000.0 {
            return Rate {
                calls_per_second,
                limiter: None,
                interval: Duration::ZERO,
                burst,
            };
        }
        let interval = Duration::from_secs_f64(1.0 / calls_per_second.max(0.001));
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Rate {
            calls_per_second,
            limiter: Some(Arc::new(RateLimiter::direct(quota))),
            interval,
            burst,
        }
    }
}

impl Pacer {
    /// `calls_per_second` ≥ 1000 means no pacing (benchmarks against a local fake).
    pub fn new(calls_per_second: f64, burst: u32) -> Pacer {
        Pacer {
            rate: Mutex::new(Rate::new(calls_per_second, burst)),
            slowed: Mutex::new(None),
        }
    }

    /// Keep a new pace from now on (the campaigns were read again); the same pace keeps its
    /// limiter, and with it the calls it has just spaced. Whether the pace changed.
    pub fn set(&self, calls_per_second: f64, burst: u32) -> bool {
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        if rate.calls_per_second == calls_per_second && rate.burst == burst.max(1) {
            return false;
        }
        *rate = Rate::new(calls_per_second, burst);
        true
    }

    fn rate(&self) -> Rate {
        self.rate.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wait until one more call may start. On PostgreSQL the shared GCRA row decides as well.
    pub async fn ready(&self, db: &Db) -> Result<(), StoreError> {
        let rate = self.rate();
        let Some(limiter) = &rate.limiter else {
            return Ok(());
        };
        let factor = self.slow_factor();
        limiter.until_ready().await;
        if factor > 1 {
            tokio::time::sleep(rate.interval * (factor - 1)).await;
        }
        if matches!(db, Db::Postgres(_)) {
            loop {
                let wait = db
                    .pace_reserve("default", rate.interval * factor, rate.burst)
                    .await?;
                if wait.is_zero() {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
        }
        Ok(())
    }

    /// The provider pushed back: halve the pace for `for_how_long` (down to 1/8).
    pub fn slow_down(&self, for_how_long: Duration) {
        let mut slowed = self.slowed.lock().unwrap_or_else(|p| p.into_inner());
        let factor = slowed.map_or(2, |(_, f)| (f * 2).min(8));
        *slowed = Some((Instant::now() + for_how_long, factor));
    }

    fn slow_factor(&self) -> u32 {
        let mut slowed = self.slowed.lock().unwrap_or_else(|p| p.into_inner());
        match *slowed {
            Some((until, factor)) if Instant::now() < until => factor,
            _ => {
                *slowed = None;
                1
            }
        }
    }
}

impl Db {
    /// Reserve one call on the shared GCRA row: how long to wait before the reservation may start
    /// (zero: start now; otherwise nothing was reserved, ask again after waiting).
    pub async fn pace_reserve(
        &self,
        account: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Duration, StoreError> {
        let Db::Postgres(pool) = self else {
            return Ok(Duration::ZERO);
        };
        let interval_ms = interval.as_millis() as i64;
        let tolerance = interval_ms * (burst as i64 - 1);
        let now = chrono::Utc::now().timestamp_millis();
        // Advance the theoretical arrival time only if the call fits now; say how long otherwise.
        let (tat, granted): (i64, bool) = sqlx::query_as(
            "WITH cur AS (SELECT GREATEST(COALESCE((SELECT tat_ms FROM pace WHERE account = $1), $2), $2) AS tat)
             INSERT INTO pace (account, tat_ms) SELECT $1, tat + $3 FROM cur WHERE tat - $4 <= $2
             ON CONFLICT (account) DO UPDATE SET tat_ms = GREATEST(pace.tat_ms, $2) + $3
                 WHERE GREATEST(pace.tat_ms, $2) - $4 <= $2
             RETURNING tat_ms, true",
        )
        .bind(account)
        .bind(now)
        .bind(interval_ms)
        .bind(tolerance)
        .fetch_optional(pool)
        .await?
        .unwrap_or((0, false));
        if granted && tat > 0 {
            return Ok(Duration::ZERO);
        }
        let current: Option<i64> = sqlx::query_scalar("SELECT tat_ms FROM pace WHERE account = $1")
            .bind(account)
            .fetch_optional(pool)
            .await?;
        let wait = current.map_or(0, |tat| (tat - tolerance - now).max(1));
        Ok(Duration::from_millis(wait as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_push_back_halves_the_pace_down_to_an_eighth_until_it_passes() {
        let pacer = Pacer::new(10.0, 1);
        assert_eq!(pacer.slow_factor(), 1);
        pacer.slow_down(Duration::from_secs(60));
        assert_eq!(pacer.slow_factor(), 2);
        pacer.slow_down(Duration::from_secs(60));
        pacer.slow_down(Duration::from_secs(60));
        pacer.slow_down(Duration::from_secs(60));
        assert_eq!(pacer.slow_factor(), 8);
        pacer.slow_down(Duration::ZERO);
        assert_eq!(
            pacer.slow_factor(),
            1,
            "the slow-down ends when its time is up"
        );
    }

    #[test]
    fn a_rate_of_a_thousand_or_more_means_no_pacing() {
        assert!(Pacer::new(1000.0, 1).rate().limiter.is_none());
        assert!(Pacer::new(999.0, 1).rate().limiter.is_some());
    }

    #[test]
    fn a_new_pace_replaces_the_limiter_and_the_same_pace_keeps_it() {
        let pacer = Pacer::new(2.0, 1);
        let before = pacer.rate().limiter.unwrap();
        assert!(!pacer.set(2.0, 1), "the same pace");
        assert!(Arc::ptr_eq(&before, &pacer.rate().limiter.unwrap()));
        assert!(pacer.set(5.0, 3));
        let now = pacer.rate();
        assert_eq!((now.interval, now.burst), (Duration::from_millis(200), 3));
        assert!(!Arc::ptr_eq(&before, &now.limiter.unwrap()));
        assert!(pacer.set(1000.0, 1));
        assert!(pacer.rate().limiter.is_none(), "pacing off");
    }
}
