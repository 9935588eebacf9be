//! Test harness: a fresh database per test on either backend, and the real `ringback` binary.

#![allow(dead_code)]

pub mod app;
pub mod fake_twilio;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::{DateTime, Datelike, Days, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use ringback::store::Db;
use sqlx::AssertSqlSafe;

pub const SHIPPED_CAMPAIGNS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/campaigns");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database and a working directory; both go away with it.
pub struct TestEnv {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

pub fn admin_url() -> String {
    std::env::var("RINGBACK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestEnv {
    pub async fn new(backend: Backend) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("ringback.db").display());
                TestEnv {
                    url,
                    dir,
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!(
                    "ringback_test_{}",
                    ulid::Ulid::generate().to_string().to_lowercase()
                );
                let admin = admin_url();
                let pool = sqlx::PgPool::connect(&admin).await.expect(
                    "PostgreSQL must run on 127.0.0.1:5432 for the test suite (see README: Tests)",
                );
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&pool)
                    .await
                    .expect("create database");
                pool.close().await;
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(b, _)| b)
                    .to_string();
                TestEnv {
                    url: format!("{base}/{name}"),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A campaigns directory holding the shipped campaigns, plus whatever the test adds.
    pub fn campaigns(&self) -> PathBuf {
        let dir = self.dir.path().join("campaigns");
        if !dir.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            for name in ["reminders.toml", "callbacks.toml"] {
                std::fs::copy(Path::new(SHIPPED_CAMPAIGNS).join(name), dir.join(name)).unwrap();
            }
        }
        dir
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Run `ringback ARGS` against this environment's database and campaigns.
    pub fn ringback(&self, args: &[&str]) -> Run {
        self.ringback_with_stdin(args, None)
    }

    pub fn ringback_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let campaigns = self.campaigns();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringback"))
            .args(args)
            .current_dir(self.dir.path())
            .env("RINGBACK_DATABASE_URL", &self.url)
            .env("RINGBACK_CAMPAIGNS_DIR", &campaigns)
            .env_remove("DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ringback");
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(bytes) = stdin {
                input.write_all(bytes).unwrap();
            }
        }
        Run(child.wait_with_output().expect("ringback output"))
    }

    /// Run `ringback ARGS` with its output going to a pipe nobody reads any more, as
    /// `ringback … | head` leaves it: the exit code and what it said on stderr.
    #[allow(dead_code)]
    pub fn ringback_into_closed_pipe(&self, args: &[&str]) -> (Option<i32>, String) {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        // Its scratch directories go to the test's own directory.
        let tmp = self.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp");
        let out = Command::new(env!("CARGO_BIN_EXE_ringback"))
            .args(args)
            .env("TMPDIR", &tmp)
            .current_dir(self.dir.path())
            .env("RINGBACK_DATABASE_URL", &self.url)
            .env("RINGBACK_CAMPAIGNS_DIR", self.campaigns())
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run ringback");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn db(&self) -> Db {
        Db::connect(&self.url).await.expect("connect")
    }

    /// One number from the database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let db = self.db().await;
        let n = match &db {
            Db::Sqlite(pool) => {
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string()))
                    .fetch_one(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string()))
                    .fetch_one(pool)
                    .await
            }
        };
        db.close().await;
        n.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Rows of text columns from the database.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let db = self.db().await;
        let rows = match &db {
            Db::Sqlite(pool) => {
                use sqlx::Row;
                sqlx::query(AssertSqlSafe(sql.to_string()))
                    .fetch_all(pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                            .collect()
                    })
                    .collect()
            }
            Db::Postgres(pool) => {
                use sqlx::Row;
                sqlx::query(AssertSqlSafe(sql.to_string()))
                    .fetch_all(pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                            .collect()
                    })
                    .collect()
            }
        };
        db.close().await;
        rows
    }

    /// `[state, outcome]` of the one outreach whose `column` is `value`.
    pub async fn outreach_state(&self, column: &str, value: &str) -> Vec<Option<String>> {
        self.rows(&format!(
            "SELECT state, outcome FROM outreach WHERE {column} = '{value}'"
        ))
        .await
        .remove(0)
    }

    pub async fn execute(&self, sql: &str) {
        let db = self.db().await;
        match &db {
            Db::Sqlite(pool) => sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                .execute(pool)
                .await
                .map(|_| ()),
            Db::Postgres(pool) => sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                .execute(pool)
                .await
                .map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        db.close().await;
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside any async context we can borrow: use a small runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin_url()).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// A finished `ringback` process.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// A weekday at 11:00 Madrid time, at least `days` ahead: far enough for a reminder to be planned.
pub fn appointment_in(days: u64) -> String {
    let zone: Tz = "Europe/Madrid".parse().unwrap();
    let mut date = Utc::now()
        .with_timezone(&zone)
        .date_naive()
        .checked_add_days(Days::new(days))
        .unwrap();
    while matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        date = date.succ_opt().unwrap();
    }
    let local = date.and_time(NaiveTime::from_hms_opt(11, 0, 0).unwrap());
    local.format("%Y-%m-%d %H:%M").to_string()
}

pub fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The default header of SPEC §5.
pub const HEADER: &str = "appointment_id,patient_id,first_name,last_name,phone,starts_at,timezone,language,provider,location,status";

/// A CSV of `n` good appointments with default column names, a few days ahead.
pub fn csv_rows(n: usize, days: u64) -> String {
    let when = appointment_in(days);
    let mut out = String::from(HEADER);
    out.push('\n');
    for i in 0..n {
        out.push_str(&format!(
            "A{i},P{i},Anna{i},Puig,6{:08},{when},,ca,Dra. Font,Consulta 1,booked\n",
            12_000_000 + i
        ));
    }
    out
}

/// The signed token of the dashboard form on `page` that posts to `action`.
pub fn form_token(page: &str, action: &str) -> String {
    page.split(&format!(
        "action=\"{action}\"><input type=hidden name=token value=\""
    ))
    .nth(1)
    .and_then(|rest| rest.split('"').next())
    .unwrap_or_else(|| panic!("no form to {action}: {page}"))
    .to_string()
}

/// `GET {url}{path}` of the API with the tests' token, as JSON.
pub async fn api_get(url: &str, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth("api-token")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON")
}

/// A client that stops at a redirect, to see where a form sends the browser.
pub fn no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `[state, outcome]` of an outreach that ended with `outcome`.
pub fn finished(outcome: &str) -> Vec<Option<String>> {
    vec![Some("finished".into()), Some(outcome.into())]
}

/// Generate a test for each backend: `both_backends!(name, |env| async move { … })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let env = TestEnv::new(Backend::Sqlite).await;
                ($body)(env).await;
            }
            #[tokio::test]
            async fn postgres() {
                let env = TestEnv::new(Backend::Postgres).await;
                ($body)(env).await;
            }
        }
    };
}
