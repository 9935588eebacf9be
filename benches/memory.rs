//! Resident memory of `ringback serve` holding 100,000 planned outreach (SQLite, simulator):
//! the process's VmRSS once it serves, after the API's heaviest reads (`/v1/stats` over every
//! outreach, `/v1/followups`), and its peak (VmHWM).
//! Run: `cargo bench --bench memory` (ROWS=… to change the size).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use ringback::campaign::load_dir;
use ringback::import::{self, Format};
use ringback::store::Db;

fn generate(rows: usize) -> String {
    let mut out =
        String::from("appointment_id,patient_id,first_name,last_name,phone,starts_at,language\n");
    let today = Utc::now().date_naive();
    for i in 0..rows {
        // 3 to 22 days ahead: every first call is planned, none due while this runs.
        let day = today
            .checked_add_days(Days::new(3 + (i % 20) as u64))
            .unwrap_or(today);
        let lang = ["ca", "es", "en"][i % 3];
        out.push_str(&format!(
            "A{i},P{i},Anna,Puig,{},{day} {:02}:00,{lang}\n",
            600_000_000 + i,
            9 + i % 9
        ));
    }
    out
}

fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let campaigns = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/campaigns"));
    let catalog = load_dir(campaigns).expect("campaigns");
    let campaign = catalog.require("reminders").expect("reminders campaign");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let csv = generate(rows);
        let input = import::Input {
            source: "bench",
            bytes: csv.as_bytes(),
            format: Format::Csv,
            now: Utc::now(),
            dry_run: false,
        };
        let summary = import::run(&db, campaign, input, |_| {}, |_| {})
            .await
            .expect("import");
        assert_eq!(summary.created, rows as u64);
        db.close().await;
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .arg("serve")
        .current_dir(dir.path())
        .env("RINGBACK_DATABASE_URL", &url)
        .env("RINGBACK_CAMPAIGNS_DIR", campaigns)
        .env("RINGBACK_LISTEN", format!("127.0.0.1:{port}"))
        .env("RINGBACK_PROVIDER", "simulator")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let pid = serve.id();
    let get = |path: &str| {
        rt.block_on(async {
            reqwest::get(format!("{base}{path}"))
                .await
                .map(|r| r.status().as_u16())
                .ok()
        })
    };
    let started = Instant::now();
    while get("/healthz") != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the feeder and the queue run a few rounds.
    std::thread::sleep(Duration::from_secs(5));
    let (serving, _) = memory(pid);
    assert_eq!(get("/v1/stats"), Some(200));
    assert_eq!(get("/v1/followups"), Some(200));
    assert_eq!(get("/"), Some(200));
    let (after_reads, peak) = memory(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = serve.wait();
    println!(
        "serve holding {rows} planned outreach: RSS {:.1} MB serving, {:.1} MB after /v1/stats, /v1/followups and the dashboard; peak {:.1} MB",
        serving as f64 / 1024.0,
        after_reads as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
