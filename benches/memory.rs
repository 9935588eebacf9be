//! Resident memory of `ringback serve` holding 100,000 planned outreach (SQLite, simulator):
//! the process's VmRSS once it serves, after the API's heaviest reads (`/v1/stats` over every
//! outreach, `/v1/followups`), and its peak (VmHWM).
//! Run: `cargo bench --bench memory` (ROWS=… to change the size).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringback::campaign::load_dir;
use ringback::store::Db;

mod support;

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
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        support::import_reminders(&db, &catalog, &support::appointments(rows)).await;
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
