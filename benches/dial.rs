//! Dialing benchmarks against a Twilio-compatible fake on loopback, SQLite, the real worker:
//!   a) dials/s with pacing off (1,000 calls/s, the most a campaign may set, turns the limiter off,
//!      and the live-call limit is the highest allowed, 10,000), 10,000 attempts;
//!   b) pacing at 10 calls/s for 60 s: the mean rate and the busiest 1-s window;
//!   c) due instant → provider request latency, p50 and p99.
//! Run: `cargo bench --bench dial` (all), or `cargo bench --bench dial -- a` (one). N=… sets (a)'s size;
//! PER_SECOND=1 prints (a)'s calls in each second; CALLS_STAY_UP=1 has the fake send no final
//! status (by default each call ends at once, so its webhook and the next step load the database
//! while dialing goes on).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, State};
use axum::routing::post;
use chrono::{DateTime, TimeDelta, Utc};
use ringback::campaign::load_dir;
use ringback::import::{self, Format};
use ringback::store::Db;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Each accepted request: when it arrived, and the attempt it was for.
type Arrivals = Arc<Mutex<Vec<(DateTime<Utc>, String)>>>;

/// Each call ends at once on an answering machine: a signed final status to the app, as Twilio sends.
async fn end_call(status_url: String, sid: String) {
    let params = vec![
        ("CallSid".to_string(), sid),
        ("CallStatus".to_string(), "completed".to_string()),
        ("AnsweredBy".to_string(), "machine_end_beep".to_string()),
    ];
    let signature = ringback::provider::signature::sign(support::TOKEN, &status_url, &params);
    let _ = HTTP
        .post(&status_url)
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .send()
        .await;
}

static HTTP: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(reqwest::Client::new);

async fn calls(
    State(arrivals): State<Arrivals>,
    Form(form): Form<Vec<(String, String)>>,
) -> (axum::http::StatusCode, String) {
    let now = Utc::now();
    let status_url = form
        .iter()
        .find(|(k, _)| k == "StatusCallback")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let attempt = form
        .iter()
        .find(|(k, _)| k == "Url")
        .and_then(|(_, u)| u.split("attempt=").nth(1))
        .unwrap_or_default()
        .to_string();
    let sid = {
        let mut a = arrivals.lock().unwrap();
        a.push((now, attempt));
        format!("CA{:032}", a.len())
    };
    if std::env::var("CALLS_STAY_UP").is_err() {
        tokio::spawn(end_call(status_url, sid.clone()));
    }
    (
        axum::http::StatusCode::CREATED,
        format!("{{\"sid\":\"{sid}\"}}"),
    )
}

async fn fake() -> (String, Arrivals) {
    let arrivals: Arrivals = Default::default();
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(calls))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, arrivals)
}

fn campaign(cps: f64, burst: u32) -> String {
    let lines = if cps >= 1000.0 { 10_000 } else { 100 };
    let zone = support::daytime_zone();
    format!(
        "name = \"Bench\"\nclinic = \"C\"\nkind = \"reminder\"\ntimezone = \"{zone}\"\ncountry = \"ES\"\ncaller_id = \"+34930000000\"\n\
         clinic_phone = \"+34930000001\"\ndefault_language = \"en\"\n[window]\nmon-sun = \"08:00-21:00\"\n[reminder]\nstart = \"48h\"\nstop = \"10m\"\n\
         [pacing]\ncalls_per_second = {cps}\nburst = {burst}\nmax_concurrent_calls = {lines}\n\
         [messages.en]\nvoice = \"Hi {{first_name}}\"\nvoicemail = \"Call {{clinic_phone}}\"\n"
    )
}

struct Run {
    arrivals: Arrivals,
    db: Db,
}

/// Import `n` patients whose first call is due at once, run the worker until all are placed.
async fn run(n: usize, cps: f64, burst: u32, limit: Duration, due_in: Option<Duration>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("campaigns")).unwrap();
    std::fs::write(
        dir.path().join("campaigns/bench.toml"),
        campaign(cps, burst),
    )
    .unwrap();
    let catalog = load_dir(&dir.path().join("campaigns")).unwrap();
    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let when = (Utc::now() + TimeDelta::hours(30)).to_rfc3339();
    let mut csv = String::from("appointment_id,patient_id,first_name,phone,starts_at\n");
    for i in 0..n {
        csv.push_str(&format!("A{i},P{i},Pat,{},{when}\n", 600_000_000 + i));
    }
    let c = catalog.get("bench").unwrap().clone();
    let input = import::Input {
        source: "bench",
        bytes: csv.as_bytes(),
        format: Format::Csv,
        now: Utc::now(),
        dry_run: false,
    };
    import::run(&db, &c, input, |_| {}, |_| {}).await.unwrap();
    if let (Some(due_in), Db::Sqlite(pool)) = (due_in, &db) {
        // Due at future instants spread over 3 s, as scheduled reminders are.
        let base = (Utc::now() + TimeDelta::from_std(due_in).unwrap()).timestamp_millis();
        sqlx::query(
            "UPDATE attempts SET due_at = $1 + (CAST(substr(phone, -4) AS INTEGER) % 3000)",
        )
        .bind(base)
        .execute(pool)
        .await
        .unwrap();
    }
    let (url, arrivals) = fake().await;
    let running = support::start(db.clone(), catalog, &url).await;
    let started = Instant::now();
    while arrivals.lock().unwrap().len() < n && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    std::mem::forget(dir);
    Run { arrivals, db }
}

async fn due_times(db: &Db) -> std::collections::HashMap<String, DateTime<Utc>> {
    let Db::Sqlite(pool) = db else { unreachable!() };
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT id, due_at FROM attempts")
        .fetch_all(pool)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, at)| (id, DateTime::from_timestamp_millis(at).unwrap()))
        .collect()
}

async fn bench_a() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let r = run(n, 1_000.0, 1, Duration::from_secs(300), None).await;
    let a = r.arrivals.lock().unwrap().clone();
    let first = a.iter().map(|x| x.0).min().unwrap();
    let last = a.iter().map(|x| x.0).max().unwrap();
    let secs = (last - first).num_milliseconds() as f64 / 1000.0;
    if std::env::var("PER_SECOND").is_ok() {
        let mut per = vec![0; secs as usize + 1];
        for x in &a {
            per[((x.0 - first).num_milliseconds() / 1000) as usize] += 1;
        }
        println!("per second: {per:?}");
    }
    let mut ids: Vec<_> = a.iter().map(|x| &x.1).collect();
    ids.sort();
    ids.dedup();
    println!(
        "(a) pacing off: {} of {n} attempts placed in {secs:.2} s = {:.0} dials/s; distinct attempts {}",
        a.len(),
        a.len() as f64 / secs.max(0.001),
        ids.len()
    );
}

async fn bench_b() {
    let r = run(600, 10.0, 1, Duration::from_secs(75), None).await;
    let a = r.arrivals.lock().unwrap().clone();
    let mut times: Vec<DateTime<Utc>> = a.iter().map(|x| x.0).collect();
    times.sort();
    let span = (times[times.len() - 1] - times[0]).num_milliseconds() as f64 / 1000.0;
    let mean = (times.len() - 1) as f64 / span;
    let busiest = times
        .iter()
        .map(|t| {
            times
                .iter()
                .filter(|u| **u >= *t && **u < *t + TimeDelta::seconds(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "(b) pacing 10/s burst 1: {} calls over {span:.1} s, mean {mean:.3}/s ({:+.2} %), busiest 1-s window {busiest} (limit 11)",
        times.len(),
        (mean / 10.0 - 1.0) * 100.0
    );
}

async fn bench_c() {
    // 300 attempts due over 3 s starting 5 s from now, unpaced: from each due instant to its request.
    let r = run(
        300,
        1_000.0,
        1,
        Duration::from_secs(60),
        Some(Duration::from_secs(5)),
    )
    .await;
    let due = due_times(&r.db).await;
    let mut lat: Vec<f64> = r
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(at, id)| due.get(id).map(|d| (*at - *d).num_milliseconds() as f64))
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "(c) due → request, {} calls: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    ringback::runtime::small_pages();
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = which.is_empty();
    if all || which.iter().any(|w| w == "a") {
        bench_a().await;
    }
    if all || which.iter().any(|w| w == "c") {
        bench_c().await;
    }
    if all || which.iter().any(|w| w == "b") {
        bench_b().await;
    }
}
