//! The outcome feed over 100,000 ended outreach, through the HTTP API, on SQLite and on
//! PostgreSQL: the whole span as CSV in one answer (what a spreadsheet or a nightly EHR job
//! asks for), and JSON pages of 1,000 followed by their cursors (what a polling EHR does);
//! then one day's visits among them, as the front desk prints them.
//!
//! Run: `cargo bench --bench outcomes` (ROWS=… to change the size; RINGBACK_TEST_PG_URL names
//! the PostgreSQL server, as for the tests; without one, SQLite only; KEEP_DB=1 keeps the
//! PostgreSQL database, to look at its query plans).

mod support;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ringback::campaign::load_dir;
use ringback::store::Db;
use sqlx::AssertSqlSafe;

const TOKEN: &str = "bench-api-token";

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        bench("SQLite", &sqlite, rows).await;
        let admin = std::env::var("RINGBACK_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let Ok(server) = sqlx::PgPool::connect(&admin).await else {
            println!("PostgreSQL: not reachable at {admin}; skipped");
            return;
        };
        let name = format!(
            "ringback_bench_{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&server)
            .await
            .expect("create database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => admin.clone(),
        };
        bench("PostgreSQL", &url, rows).await;
        if std::env::var("KEEP_DB").is_ok() {
            println!("kept {name}");
            return;
        }
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&server)
            .await
            .expect("drop database");
    });
}

async fn bench(backend: &str, url: &str, rows: usize) {
    let db = Db::connect(url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let catalog = load_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/campaigns"
    )))
    .expect("campaigns");
    support::import_reminders(&db, &catalog, &support::appointments(rows)).await;
    end_every_outreach(&db, rows).await;

    // The API as `serve` runs it, with a token (the worker is not started: nothing is dialled).
    let client = ringback::provider::twilio::TwilioClient::new(
        "http://127.0.0.1:9",
        "ACbench",
        ringback::config::Secret::new(support::TOKEN),
        std::time::Duration::from_secs(5),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Arc::new(ringback::app::App::new(
        db.clone(),
        catalog,
        ringback::provider::Provider::Twilio(client),
        &base,
    ));
    let state = ringback::http::HttpState {
        app,
        api_tokens: Arc::new(vec![ringback::config::Secret::new(TOKEN)]),
    };
    let server = tokio::spawn(async move {
        axum::serve(listener, ringback::http::router(state))
            .await
            .unwrap()
    });
    let http = reqwest::Client::new();
    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).bearer_auth(TOKEN);
        async move {
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body")
        }
    };

    // The whole day as CSV, three times; the middle time is quoted.
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let csv = get("/v1/outcomes?campaign=reminders&since=1d&format=csv".into()).await;
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), rows + 1);
        size = csv.len();
    }
    times.sort_by(f64::total_cmp);
    let whole = times[1];
    println!(
        "{backend}: GET /v1/outcomes?format=csv, {rows} outcomes ({:.1} MB) in {whole:.3} s = {:.0} rows/s \
         (runs: {:.3} / {:.3} / {:.3} s)",
        size as f64 / 1e6,
        rows as f64 / whole,
        times[0],
        times[1],
        times[2]
    );

    // JSON pages of 1,000, each from the cursor of the one before.
    let mut pages = Vec::new();
    let mut seen = 0;
    let mut after = String::new();
    let start = Instant::now();
    loop {
        let page_start = Instant::now();
        let body = get(format!(
            "/v1/outcomes?campaign=reminders&since=1d&limit=1000{after}"
        ))
        .await;
        pages.push(page_start.elapsed().as_secs_f64() * 1e3);
        let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        seen += page["outcomes"].as_array().map_or(0, Vec::len);
        if page["more"] != true {
            break;
        }
        let next = page["next"].as_str().expect("where the next page starts");
        after = format!("&after={next}");
    }
    let total = start.elapsed().as_secs_f64();
    assert_eq!(seen, rows);
    pages.sort_by(f64::total_cmp);
    let at = |q: f64| pages[((pages.len() - 1) as f64 * q).round() as usize];
    println!(
        "{backend}: GET /v1/outcomes in JSON pages of 1,000 followed by cursor: {rows} outcomes in {} pages, \
         {total:.3} s = {:.0} rows/s; a page p50 {:.1} ms, p99 {:.1} ms, the last {:.1} ms",
        pages.len(),
        rows as f64 / total,
        at(0.5),
        at(0.99),
        pages.last().copied().unwrap_or_default()
    );
    // One day's visits (a twentieth of the list), as the desk prints them: three times, the
    // middle one quoted.
    let day = (Utc::now() + chrono::TimeDelta::days(3))
        .with_timezone(&chrono_tz::Europe::Madrid)
        .date_naive();
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let csv = get(format!("/v1/visits?campaign=reminders&on={day}&format=csv")).await;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        count = csv.iter().filter(|b| **b == b'\n').count() - 1;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{backend}: GET /v1/visits?on={day}&format=csv, {count} visits of {rows} appointments in {:.0} ms \
         (runs: {:.0} / {:.0} / {:.0} ms)",
        times[1], times[0], times[1], times[2]
    );
    server.abort();
    db.close().await;
}

/// End every outreach over the last twelve hours, one outcome after another (by the number
/// in its appointment's id, `A{n}`): confirmed, voicemail left, unreachable after three calls,
/// cancel requested (with a follow-up).
async fn end_every_outreach(db: &Db, rows: usize) {
    let now = Utc::now().timestamp_millis();
    let step = 43_200_000 / rows.max(1) as i64;
    let statements = [
        "UPDATE outreach SET state = 'finished',
            outcome = CASE (SELECT CAST(substr(a.external_id, 2) AS BIGINT) % 4 FROM appointments a
                            WHERE a.id = outreach.appointment_id)
                      WHEN 0 THEN 'confirmed' WHEN 1 THEN 'voicemail_left'
                      WHEN 2 THEN 'unreachable' ELSE 'cancel_requested' END,
            outcome_at = $1 - 43200000 + $2 * (SELECT CAST(substr(a.external_id, 2) AS BIGINT)
                                               FROM appointments a WHERE a.id = outreach.appointment_id)",
        "UPDATE attempts SET status = 'done', placed_at = $1 - 86400000 WHERE status = 'planned'",
        "INSERT INTO followups (id, campaign, outreach_id, phone, reason, status, created_at)
         SELECT 'F' || id, campaign, id, phone, 'cancel_requested', 'open', $1
         FROM outreach WHERE outcome = 'cancel_requested'",
    ];
    for sql in statements {
        // Each statement takes now, and the first also the step between two outcomes.
        let with_step = sql.contains("$2");
        match db {
            Db::Sqlite(pool) => {
                let query = sqlx::query(sql).bind(now);
                let query = if with_step { query.bind(step) } else { query };
                query.execute(pool).await.map(drop)
            }
            Db::Postgres(pool) => {
                let query = sqlx::query(sql).bind(now);
                let query = if with_step { query.bind(step) } else { query };
                query.execute(pool).await.map(drop)
            }
        }
        .expect(sql);
    }
    // What autovacuum does after so many changes, within the minute.
    if let Db::Postgres(pool) = db {
        sqlx::query("ANALYZE").execute(pool).await.expect("analyze");
    }
}
