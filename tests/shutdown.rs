//! `ringback serve` as a process, on SQLite and PostgreSQL. On SIGHUP it reads the campaigns
//! again. On SIGTERM it starts no more calls, keeps answering the webhooks of the calls in
//! flight, and exits once they have ended.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::app::{appointments_csv, daytime_zone, test_campaign, use_test_campaign, wait_for};
use common::fake_twilio::{FakeTwilio, Script};
use common::*;

/// `ringback serve` on a free port, dialling through `fake`; and its base URL.
fn serve(env: &TestEnv, fake: &FakeTwilio) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .arg("serve")
        .current_dir(env.path())
        .env("RINGBACK_DATABASE_URL", &env.url)
        .env("RINGBACK_CAMPAIGNS_DIR", env.campaigns())
        .env("RINGBACK_LISTEN", format!("127.0.0.1:{port}"))
        .env("RINGBACK_PUBLIC_URL", &base)
        .env("RINGBACK_PROVIDER", "twilio")
        .env("RINGBACK_TWILIO_API_BASE", &fake.url)
        .env("RINGBACK_TWILIO_ACCOUNT_SID", "ACtest")
        .env("RINGBACK_TWILIO_AUTH_TOKEN", &fake.token)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, base)
}

both_backends!(
    sigterm_drains_calls_in_flight_and_starts_no_new_one,
    |env: TestEnv| async move {
        use_test_campaign(&env, test_campaign(daytime_zone(), 50.0), true);
        let fake = FakeTwilio::start("test-auth-token").await;
        // The first patient answers and stays on the line: no final status until we send it.
        fake.script("+34612000301", Script::Silent);
        let first = env.write(
            "first.csv",
            appointments_csv(&[("+34612000301".into(), "Anna".into(), String::new())]),
        );
        env.ringback(&["import", "--campaign", "test", first.to_str().unwrap()])
            .assert_code(0);
        let (mut serve, base) = serve(&env, &fake);
        wait_for("the first call", Duration::from_secs(60), || async {
            fake.log().requests.len() == 1
        })
        .await;

        Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status()
            .unwrap();
        // A second patient due now, while the server drains.
        let second = env.write(
            "second.csv",
            appointments_csv(&[("+34612000302".into(), "Joan".into(), String::new())])
                .replace("A0,P0", "A1,P1"),
        );
        env.ringback(&["import", "--campaign", "test", second.to_str().unwrap()])
            .assert_code(0);
        // Longer than the queue takes to place a due call (a feed and a poll, a second each).
        let window = Instant::now();
        while window.elapsed() < Duration::from_secs(4) {
            assert!(
                serve.try_wait().unwrap().is_none(),
                "exited with a call in flight"
            );
            let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
            assert_eq!(health.status(), 200, "still answering while it drains");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(fake.log().requests.len(), 1, "no new call after SIGTERM");

        // The call in flight ends: its status webhook is still applied, then the server exits.
        let status_url = fake.log().requests[0]["StatusCallback"].clone();
        let (code, _) = fake
            .post(
                &status_url,
                &[
                    ("CallSid", "CAdrain"),
                    ("CallStatus", "completed"),
                    ("AnsweredBy", "human"),
                ],
            )
            .await;
        assert_eq!(code, 204);
        let exited = Instant::now();
        let status = loop {
            if let Some(status) = serve.try_wait().unwrap() {
                break status;
            }
            assert!(
                exited.elapsed() < Duration::from_secs(20),
                "did not exit after draining"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "{status:?}");
        assert_eq!(fake.log().requests.len(), 1);
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM attempts WHERE phone = '+34612000302' AND status = 'planned'"
            )
            .await,
            1,
            "the second call is kept for the next start"
        );
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM outreach WHERE phone = '+34612000301' AND outcome = 'reached'"
            )
            .await,
            1
        );
    }
);

/// `GET /v1/campaigns` of a `serve` on `base`: (ids in order, the whole answer).
async fn campaigns(base: &str) -> Option<(Vec<String>, serde_json::Value)> {
    let answer = reqwest::get(format!("{base}/v1/campaigns")).await.ok()?;
    let body: serde_json::Value = answer.json().await.ok()?;
    let ids = body["campaigns"]
        .as_array()?
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect();
    Some((ids, body))
}

/// `ringback_campaign_files_with_errors` from the `/metrics` of a `serve` on `base`.
async fn file_errors(base: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ringback_campaign_files_with_errors "))
        .unwrap_or_else(|| panic!("no ringback_campaign_files_with_errors in {text}"))
        .parse()
        .unwrap()
}

both_backends!(
    sighup_reads_the_campaigns_again_and_a_broken_file_keeps_its_campaign_running,
    |env: TestEnv| async move {
        let zone = daytime_zone();
        use_test_campaign(&env, test_campaign(zone, 50.0), true);
        let fake = FakeTwilio::start("test-auth-token").await;
        let (mut serve, base) = serve(&env, &fake);
        wait_for("serve to answer", Duration::from_secs(60), || async {
            campaigns(&base).await.is_some()
        })
        .await;
        let (ids, first) = campaigns(&base).await.unwrap();
        assert_eq!(ids, ["test"]);
        let hang_up = |serve: &std::process::Child| {
            Command::new("kill")
                .args(["-HUP", &serve.id().to_string()])
                .status()
                .unwrap();
        };
        // SIGHUP, then the campaigns as read again.
        let reload = |serve: &std::process::Child, before: serde_json::Value| {
            hang_up(serve);
            let base = base.clone();
            async move {
                wait_for(
                    "the campaigns read again",
                    Duration::from_secs(30),
                    || async {
                        campaigns(&base)
                            .await
                            .is_some_and(|(_, now)| now["loaded_at"] != before["loaded_at"])
                    },
                )
                .await;
                campaigns(&base).await.unwrap()
            }
        };

        // A new campaign, and a typo in the running one's zone.
        let test_toml = test_campaign(zone, 50.0);
        std::fs::write(
            env.campaigns().join("second.toml"),
            test_toml.replace("Test reminders", "Second reminders"),
        )
        .unwrap();
        std::fs::write(
            env.campaigns().join("test.toml"),
            test_toml.replacen("timezone = \"", "timezone = \"Mars/", 1),
        )
        .unwrap();
        let (ids, second) = reload(&serve, first.clone()).await;
        assert_eq!(ids, ["second", "test"], "{second}");
        let test = &second["campaigns"][1];
        assert_eq!(test["timezone"], zone.name(), "runs as before: {second}");
        let errors = second["errors"].to_string();
        assert!(
            errors.contains("test.toml") && errors.contains("Mars/"),
            "{second}"
        );
        // What an alert watches: one file with errors.
        assert_eq!(file_errors(&base).await, 1.0);

        // Both take lists and call: the new one, and the one whose file broke.
        for (campaign, phone) in [("second", "+34612000401"), ("test", "+34612000402")] {
            let list = appointments_csv(&[(phone.into(), "Anna".into(), String::new())]);
            let answer = reqwest::Client::new()
                .post(format!("{base}/v1/campaigns/{campaign}/appointments"))
                .header("content-type", "text/csv")
                .body(list)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{campaign}");
            let summary: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(summary["created"], 1, "{campaign}: {summary}");
        }
        wait_for(
            "a call from each campaign",
            Duration::from_secs(60),
            || async { fake.log().requests.len() == 2 },
        )
        .await;

        // The typo fixed and the name changed: read as written; the second file gone, its campaign too.
        std::fs::write(
            env.campaigns().join("test.toml"),
            test_toml.replace("Test reminders", "Test reminders, renamed"),
        )
        .unwrap();
        std::fs::remove_file(env.campaigns().join("second.toml")).unwrap();
        let (ids, third) = reload(&serve, second).await;
        assert_eq!(ids, ["test"], "{third}");
        assert_eq!(third["campaigns"][0]["name"], "Test reminders, renamed");
        assert_eq!(third["errors"], serde_json::json!([]), "{third}");
        assert_eq!(file_errors(&base).await, 0.0);

        assert!(
            serve.try_wait().unwrap().is_none(),
            "SIGHUP does not end it"
        );
        Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status()
            .unwrap();
        assert!(serve.wait().unwrap().success());
    }
);
