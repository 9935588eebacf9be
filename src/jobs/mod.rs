//! The queue (apalis on the same database): a job is only a wake-up carrying an attempt id, due at
//! the attempt's instant. A feeder queues planned attempts shortly before they are due; the worker
//! hands each job to [`App::dial`], which re-checks everything and places the attempt at most once.
//! apalis types stay in this module.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::app::App;
use crate::store::Db;

/// How far ahead of its instant an attempt is queued.
const HORIZON: TimeDelta = TimeDelta::minutes(10);
/// The queue polls this often, so a job runs within about a second of being due.
const POLL: Duration = Duration::from_secs(1);

/// Wake up and dial this attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DialJob {
    pub attempt: String,
}

/// The job storage beside ringback's tables.
#[derive(Clone)]
pub enum Queue {
    Sqlite(SqliteStorage<DialJob>),
    Postgres(PostgresStorage<DialJob>),
}

impl Queue {
    pub fn new(db: &Db) -> Queue {
        match db {
            Db::Sqlite(pool) => Queue::Sqlite(SqliteStorage::new(pool)),
            Db::Postgres(pool) => Queue::Postgres(PostgresStorage::new(pool)),
        }
    }

    /// Queue one wake-up per `(attempt, task id, run_at)`, all in one transaction, each with a
    /// ULID task id and a single try (the attempt's own state decides any retry, never the queue).
    pub async fn push_many(
        &self,
        wakeups: &[(&str, ulid::Ulid, DateTime<Utc>)],
    ) -> Result<(), String> {
        let tasks = wakeups.iter().map(|(attempt, task_id, run_at)| {
            TaskBuilder::new(DialJob {
                attempt: attempt.to_string(),
            })
            .task_id(TaskId::from_ulid(*task_id))
            .run_at_timestamp(run_at.timestamp().max(0) as u64)
            .max_attempts(1)
            .build()
        });
        let tasks = futures::stream::iter(tasks.collect::<Vec<_>>());
        match self.clone() {
            Queue::Sqlite(mut s) => s.push_all(tasks).await.map_err(|e| e.to_string()),
            Queue::Postgres(mut s) => s.push_all(tasks).await.map_err(|e| e.to_string()),
        }
    }
}

/// Attempts looked at per batch by the feeder.
const FEED_BATCH: i64 = 500;

/// Queue every planned attempt due within the horizon, once. Returns how many were queued.
pub async fn feed_once(app: &App, queue: &Queue) -> Result<usize, String> {
    app.db
        .reclaim_direct(DIRECT, Utc::now() - DIRECT_STALE)
        .await
        .map_err(|e| e.to_string())?;
    let mut queued = 0;
    loop {
        let due = app
            .db
            .unqueued_due(Utc::now() + HORIZON, FEED_BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let full = due.len() as i64 == FEED_BATCH;
        let n = feed_batch(app, queue, due).await?;
        queued += n;
        // A short batch was the last; a batch that queued nothing would only come back unchanged.
        if !full || n == 0 {
            return Ok(queued);
        }
    }
}

async fn feed_batch(
    app: &App,
    queue: &Queue,
    due: Vec<(String, DateTime<Utc>)>,
) -> Result<usize, String> {
    // The queue runs jobs due in the same second by id: ids that rise with the batch (which is
    // soonest first) keep the soonest attempt first, where random ones in one millisecond would
    // not.
    let mut ids = ulid::Generator::new();
    let planned: Vec<(&str, ulid::Ulid, DateTime<Utc>)> = due
        .iter()
        .map(|(attempt, at)| {
            let id = ids.generate().unwrap_or_else(|_| ulid::Ulid::generate());
            (attempt.as_str(), id, *at)
        })
        .collect();
    // Take the right to queue each first, so two feeders never queue one attempt twice.
    let taken = app
        .db
        .take_many_for_queue(&planned)
        .await
        .map_err(|e| e.to_string())?;
    let wakeups: Vec<(&str, ulid::Ulid, DateTime<Utc>)> = planned
        .into_iter()
        .zip(taken)
        .filter_map(|(wakeup, taken)| taken.then_some(wakeup))
        .collect();
    if wakeups.is_empty() {
        return Ok(0);
    }
    if let Err(e) = queue.push_many(&wakeups).await {
        warn!(attempts = wakeups.len(), error = %e, "could not queue; will try again");
        let ids: Vec<&str> = wakeups.iter().map(|w| w.0).collect();
        let _ = app.db.release_many(&ids).await;
        return Ok(0);
    }
    Ok(wakeups.len())
}

/// Dial an attempt that is due now without waiting for the queue to poll (a callback). It is
/// taken for queueing first, so the feeder leaves it alone; should this process stop before
/// it is placed, the feeder takes it back after [`DIRECT_STALE`].
pub fn dial_now(app: Arc<App>, attempt: String) {
    tokio::spawn(async move {
        let task = format!("{DIRECT}{}", ulid::Ulid::generate());
        match app.db.take_for_queue(&attempt, &task).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                warn!(attempt, error = %e, "could not take the attempt; the queue will");
                return;
            }
        }
        match app.dial(&attempt).await {
            Ok(outcome) => debug!(attempt, ?outcome, "dialled at once"),
            Err(e) => {
                warn!(attempt, error = %e, "dialling at once failed; the queue will try");
                let _ = app.db.release_queue(&attempt).await;
            }
        }
    });
}

/// The task id prefix of attempts dialled at once, outside the queue.
pub const DIRECT: &str = "now-";
/// An attempt taken for dialling at once and still planned this long after its instant was
/// lost (its process stopped): the feeder queues it again. Claiming keeps it to one call.
const DIRECT_STALE: TimeDelta = TimeDelta::minutes(5);

/// Feed the queue every second until `stop` turns true.
pub async fn feed(app: Arc<App>, queue: Queue, mut stop: watch::Receiver<bool>) {
    loop {
        match feed_once(&app, &queue).await {
            Ok(n) if n > 0 => debug!(queued = n, "fed the queue"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "feeding the queue failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn dial_job(job: DialJob, app: Data<Arc<App>>) -> Result<(), BoxDynError> {
    match app.dial(&job.attempt).await {
        Ok(outcome) => {
            debug!(attempt = job.attempt, ?outcome, "dial job");
            Ok(())
        }
        // The attempt is still `planned` (or settled by its state): ask the feeder to queue it again.
        Err(e) => {
            warn!(attempt = job.attempt, error = %e, "dial job failed; the attempt will be queued again");
            let _ = app.db.release_queue(&job.attempt).await;
            Ok(())
        }
    }
}

/// Run the queue worker (and the feeder beside it) until `stop` turns true.
pub async fn run(
    app: Arc<App>,
    concurrency: usize,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let queue = Queue::new(&app.db);
    let feeder = tokio::spawn(feed(app.clone(), queue.clone(), stop.clone()));
    let name = format!(
        "ringback-{}-{}-{}",
        hostname(),
        std::process::id(),
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let mut signal = stop.clone();
    let shutdown = async move {
        while !*signal.borrow() {
            if signal.changed().await.is_err() {
                break;
            }
        }
        Ok(())
    };
    // The same worker on either storage; only the backend's type differs.
    macro_rules! monitor {
        ($storage:expr) => {{
            let app = app.clone();
            let storage = $storage;
            Monitor::new()
                .register(move |_| {
                    WorkerBuilder::new(name.clone())
                        .backend(storage.clone().poll_with_strategy(Every::new(POLL)))
                        .data(app.clone())
                        .concurrency(concurrency)
                        .build(dial_job)
                })
                .shutdown_timeout(Duration::from_secs(30))
                .run_with_signal(shutdown)
                .await
        }};
    }
    let result = match queue {
        Queue::Sqlite(storage) => monitor!(storage),
        Queue::Postgres(storage) => monitor!(storage),
    };
    let _ = feeder.await;
    result.map_err(|e| e.to_string())
}

/// Wake the queue's fetch every `period`, never missing a tick.
///
/// apalis's own `poll_with_interval` replaces its timer when it fires without polling the new
/// one, so no wake-up is registered for the next tick. When the fetch that follows comes back
/// empty in the same poll (a slow fetch under load), the worker sleeps until something else
/// wakes it: its heartbeat, 30 s later. Jobs due meanwhile waited that long.
struct Every {
    period: Duration,
    ticks: Option<tokio::time::Interval>,
}

impl Every {
    fn new(period: Duration) -> Every {
        Every {
            period,
            ticks: None,
        }
    }
}

impl PollStrategy for Every {
    fn poll_drive(
        &mut self,
        cx: &mut std::task::Context<'_>,
        _: &PollSnapshot,
    ) -> std::task::Poll<Option<()>> {
        let period = self.period;
        let ticks = self.ticks.get_or_insert_with(|| {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        // Poll until pending: that last poll is what registers the wake-up for the next tick.
        let mut ticked = false;
        while ticks.poll_tick(cx).is_ready() {
            ticked = true;
        }
        if ticked {
            std::task::Poll::Ready(Some(()))
        } else {
            std::task::Poll::Pending
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use futures::task::{ArcWake, waker};

    use super::*;

    struct Count(AtomicUsize);

    impl ArcWake for Count {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The tick that fires also arms the next one: a worker whose poll saw the tick is woken
    /// again a period later, whatever else happens in that poll.
    #[tokio::test(start_paused = true)]
    async fn every_tick_arms_the_next() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = waker(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut every = Every::new(Duration::from_secs(1));
        let snapshot = PollSnapshot::default();
        assert_eq!(every.poll_drive(&mut cx, &snapshot), Poll::Pending);
        for tick in 1..=3 {
            tokio::time::sleep(Duration::from_millis(1_001)).await;
            assert_eq!(
                count.0.load(Ordering::SeqCst),
                tick,
                "woken for tick {tick}"
            );
            assert_eq!(every.poll_drive(&mut cx, &snapshot), Poll::Ready(Some(())));
        }
    }
}
