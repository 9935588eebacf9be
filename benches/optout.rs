//! STOP → withdrawal benchmark: 1,000 patients, each with a call planned for a few milliseconds
//! after the moment their STOP reply is sent; the real server (SQLite file, real worker, the pace
//! out of the way) against a Twilio-compatible fake on loopback.
//! Measured: each STOP webhook's latency (sent → answered; the opt-out and the withdrawal of
//! every planned attempt commit before the answer), p50 / p99; and which calls still reached the
//! provider — none may belong to a number whose STOP was answered before its call was due.
//! Run: `cargo bench --bench optout`. N=… patients, GAP_MS=… between STOPs, LEAD_MS=… from a
//! STOP to its call's due instant.

mod support;

use std::collections::HashMap;
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

/// Call requests that reached the provider, by number.
type Calls = Arc<Mutex<HashMap<String, DateTime<Utc>>>>;

async fn calls(
    State(calls): State<Calls>,
    Form(form): Form<Vec<(String, String)>>,
) -> (axum::http::StatusCode, String) {
    let to = form
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let n = {
        let mut c = calls.lock().unwrap();
        c.insert(to, Utc::now());
        c.len()
    };
    (
        axum::http::StatusCode::CREATED,
        format!("{{\"sid\":\"CA{n:032}\"}}"),
    )
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn campaign() -> String {
    let zone = support::daytime_zone();
    format!(
        "name = \"Bench\"\nclinic = \"C\"\nkind = \"reminder\"\ntimezone = \"{zone}\"\ncountry = \"ES\"\ncaller_id = \"+34930000000\"\n\
         clinic_phone = \"+34930000001\"\ndefault_language = \"en\"\n[window]\nmon-sun = \"08:00-21:00\"\n[reminder]\nstart = \"48h\"\nstop = \"10m\"\n\
         [pacing]\ncalls_per_second = 1000\nburst = 1\nmax_concurrent_calls = 10000\n\
         [messages.en]\nvoice = \"Hi {{first_name}}\"\nvoicemail = \"Call {{clinic_phone}}\"\n"
    )
}

#[tokio::main]
async fn main() {
    ringback::runtime::small_pages();
    let n = env("N", 1_000) as usize;
    let gap = Duration::from_millis(env("GAP_MS", 10));
    let lead = TimeDelta::milliseconds(env("LEAD_MS", 5) as i64);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("campaigns")).unwrap();
    std::fs::write(dir.path().join("campaigns/bench.toml"), campaign()).unwrap();
    let catalog = load_dir(&dir.path().join("campaigns")).unwrap();
    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let phone = |i: usize| format!("+3461{:07}", 2_000_000 + i);
    let when = (Utc::now() + TimeDelta::hours(30)).to_rfc3339();
    let mut csv = String::from("appointment_id,patient_id,first_name,phone,starts_at\n");
    for i in 0..n {
        csv.push_str(&format!("A{i},P{i},Pat,{},{when}\n", phone(i)));
    }
    let input = import::Input {
        source: "bench",
        bytes: csv.as_bytes(),
        format: Format::Csv,
        now: Utc::now(),
        dry_run: false,
    };
    let c = catalog.get("bench").unwrap().clone();
    import::run(&db, &c, input, |_| {}, |_| {}).await.unwrap();
    // STOP i is sent at start + i·gap; its call is due `lead` later.
    let start_wall = Utc::now() + TimeDelta::seconds(8);
    let due = |i: usize| start_wall + TimeDelta::from_std(gap * i as u32).unwrap() + lead;
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    for i in 0..n {
        sqlx::query("UPDATE attempts SET due_at = $1 WHERE phone = $2")
            .bind(due(i).timestamp_millis())
            .bind(phone(i))
            .execute(pool)
            .await
            .unwrap();
    }

    let placed: Calls = Default::default();
    let fake = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(calls))
        .with_state(placed.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await.unwrap() });
    let running = support::start(db.clone(), catalog, &fake_url).await;
    let public = running.public.clone();

    let http = reqwest::Client::new();
    let url = format!("{public}/webhooks/twilio/sms/inbound");
    let wait = (start_wall - Utc::now()).to_std().unwrap_or_default();
    let started = Instant::now() + wait;
    let mut tasks = Vec::new();
    for i in 0..n {
        let params = vec![
            ("MessageSid".to_string(), format!("SM{i:032}")),
            ("From".to_string(), phone(i)),
            ("To".to_string(), "+34930000000".to_string()),
            ("Body".to_string(), "STOP".to_string()),
        ];
        let signature = ringback::provider::signature::sign(support::TOKEN, &url, &params);
        let (http, url) = (http.clone(), url.clone());
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
        tasks.push(tokio::spawn(async move {
            let sent = Utc::now();
            let r = http
                .post(&url)
                .header("X-Twilio-Signature", signature)
                .form(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            (i, sent, Utc::now())
        }));
    }
    let mut answered = Vec::new();
    for t in tasks {
        answered.push(t.await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.stop().await;

    let mut lat: Vec<f64> = answered
        .iter()
        .map(|(_, s, a)| (*a - *s).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1];
    let placed = placed.lock().unwrap().clone();
    let (mut before, mut inside, mut after) = (0, 0, 0);
    let (mut placed_before, mut placed_inside, mut placed_after) = (0, 0, 0);
    for (i, sent, done) in &answered {
        let d = due(*i);
        let was_placed = placed.contains_key(&phone(*i));
        if d < *sent {
            before += 1;
            placed_before += usize::from(was_placed);
        } else if d <= *done {
            inside += 1;
            placed_inside += usize::from(was_placed);
        } else {
            after += 1;
            placed_after += usize::from(was_placed);
        }
    }
    let withdrawn: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE status = 'withdrawn'")
            .fetch_one(pool)
            .await
            .unwrap();
    println!(
        "STOP → withdrawal, {n} opt-outs every {} ms, each call due {} ms after its STOP was sent: \
         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {withdrawn} planned calls withdrawn",
        gap.as_millis(),
        lead.num_milliseconds(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        lat[lat.len() - 1]
    );
    println!(
        "calls placed: {placed_inside} of {inside} due while their STOP was being answered, \
         {placed_after} of {after} due after it was answered, {placed_before} of {before} due before it was sent"
    );
    std::mem::forget(dir);
}
