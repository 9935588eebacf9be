//! Missed call → callback benchmark: 1,000 signed missed-call webhooks posted to the real server
//! (SQLite file, real worker), each answered by a `POST …/Calls.json` at a Twilio-compatible fake
//! on loopback. Measured per number: from the moment its webhook is sent to the moment its call
//! request arrives. The pace is set out of the way (1,000 calls/s, 1,000 lines and agents), and
//! webhooks are sent at 50/s, as a busy clinic's bursts of missed calls would never reach.
//! Run: `cargo bench --bench callbacks`. N=… sets the number of callbacks, RATE=… the webhooks/s.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, State};
use axum::routing::post;
use ringback::campaign::load_dir;
use ringback::store::Db;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLINIC: &str = "+34930000001";

/// When each number's call request arrived.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn calls(
    State(arrivals): State<Arrivals>,
    Form(form): Form<Vec<(String, String)>>,
) -> (axum::http::StatusCode, String) {
    let now = Instant::now();
    let to = form
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let n = {
        let mut a = arrivals.lock().unwrap();
        a.entry(to).or_insert(now);
        a.len()
    };
    (
        axum::http::StatusCode::CREATED,
        format!("{{\"sid\":\"CA{n:032}\"}}"),
    )
}

fn campaign() -> String {
    let zone = support::daytime_zone();
    format!(
        "name = \"Bench callbacks\"\nclinic = \"C\"\nkind = \"callback\"\ntimezone = \"{zone}\"\ncountry = \"ES\"\n\
         caller_id = \"+34930000000\"\nclinic_phone = \"{CLINIC}\"\ndefault_language = \"en\"\n\
         [window]\nmon-sun = \"08:00-21:00\"\n[callback]\nconnect = \"patient_first\"\nagents = 1000\nexpire_after = \"3d\"\n\
         [retry]\nmax_calls = 3\ngaps = [\"1h\"]\nmax_calls_per_day = 3\nmax_calls_per_week = 6\n\
         [pacing]\ncalls_per_second = 1000\nburst = 1\nmax_concurrent_calls = 10000\n\
         [messages.en]\nvoice = \"Hi {{first_name}}\"\nvoicemail = \"Call {{clinic_phone}}\"\n"
    )
}

#[tokio::main]
async fn main() {
    ringback::runtime::small_pages();
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let rate: f64 = std::env::var("RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50.0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("campaigns")).unwrap();
    std::fs::write(dir.path().join("campaigns/bench.toml"), campaign()).unwrap();
    let catalog = load_dir(&dir.path().join("campaigns")).unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    db.migrate().await.unwrap();

    let arrivals: Arrivals = Default::default();
    let fake = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(calls))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await.unwrap() });

    let running = support::start(db, catalog, &fake_url).await;
    let public = running.public.clone();

    let http = reqwest::Client::new();
    let url = format!("{public}/webhooks/twilio/voice/missed");
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let spacing = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let from = format!("+3461{:07}", 1_000_000 + i);
        let params = vec![
            ("CallSid".to_string(), format!("CAin{i:030}")),
            ("From".to_string(), from.clone()),
            ("To".to_string(), CLINIC.to_string()),
            ("DialCallStatus".to_string(), "no-answer".to_string()),
        ];
        let signature = ringback::provider::signature::sign(support::TOKEN, &url, &params);
        let (http, url, sent) = (http.clone(), url.clone(), sent.clone());
        tokio::time::sleep_until((started + spacing * i as u32).into()).await;
        tasks.push(tokio::spawn(async move {
            sent.lock().unwrap().insert(from, Instant::now());
            let r = http
                .post(&url)
                .header("X-Twilio-Signature", signature)
                .form(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;

    let sent = sent.lock().unwrap();
    let arrivals = arrivals.lock().unwrap();
    let mut lat: Vec<f64> = sent
        .iter()
        .filter_map(|(from, at)| {
            arrivals
                .get(from)
                .map(|arr| arr.duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "missed-call webhook → Calls.json, {} of {n} callbacks at {rate}/s: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        lat[lat.len() - 1]
    );
}
