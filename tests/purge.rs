//! Retention: `ringback purge` and `retention_days`, on a SQLite file and on PostgreSQL.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::app::wait_for;
use common::*;
use ringback::store::Db;

const DAY_MS: i64 = 86_400_000;

/// Six appointments imported, then aged by hand as months of calling would leave them:
/// - A1 (P1) and A2 (P2): confirmed 100 days ago, visit 99 days ago, a resolved follow-up and an
///   event on A1's outreach; P2 also has A3, still to come.
/// - A4: as old, but its follow-up is still open. A5: ended 5 days ago. A6: still active.
///
/// Plus a number opted out 200 days ago, two webhook deliveries (200 days old, and new) and two
/// follow-ups of no outreach (resolved 200 days ago, and open as long).
async fn months_of_calls(env: &TestEnv) {
    let mut list = String::from("appointment_id,patient_id,first_name,phone,starts_at\n");
    let (soon, later) = (appointment_in(5), appointment_in(12));
    for (id, patient, phone, when) in [
        ("A1", "P1", "612000001", &soon),
        ("A2", "P2", "612000002", &soon),
        ("A3", "P2", "612000002", &later),
        ("A4", "P4", "612000004", &soon),
        ("A5", "P5", "612000005", &soon),
        ("A6", "P6", "612000006", &soon),
    ] {
        list.push_str(&format!("{id},{patient},Anna,{phone},{when}\n"));
    }
    let file = env.write("list.csv", list);
    env.ringback(&["import", "--campaign", "reminders", file.to_str().unwrap()])
        .assert_code(0);
    let dnc = env.write("dnc.csv", "phone\n612000009\n");
    env.ringback(&["optout", "import", dnc.to_str().unwrap()])
        .assert_code(0);

    let now = Utc::now().timestamp_millis();
    let (ended, visit, recent, ancient) = (
        now - 100 * DAY_MS,
        now - 99 * DAY_MS,
        now - 5 * DAY_MS,
        now - 200 * DAY_MS,
    );
    let outreach_of = |ids: &str| {
        format!(
            "(SELECT o.id FROM outreach o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id IN ({ids}))"
        )
    };
    let old = outreach_of("'A1', 'A2', 'A4'");
    let a1 = outreach_of("'A1'");
    let a4 = outreach_of("'A4'");
    let a5 = outreach_of("'A5'");
    env.execute(&format!(
        "UPDATE outreach SET state = 'finished', outcome = 'confirmed', outcome_at = {ended},
             created_at = {ended}, updated_at = {ended} WHERE id IN {old};
         UPDATE attempts SET status = 'done', placed_at = {ended}, due_at = {ended},
             call_status = 'completed', answered_by = 'human' WHERE outreach_id IN {old};
         UPDATE appointments SET starts_at = {visit}, updated_at = {ended}
             WHERE external_id IN ('A1', 'A2', 'A4', 'A5');
         UPDATE patients SET created_at = {ended}, updated_at = {ended};
         UPDATE outreach SET state = 'finished', outcome = 'reached', outcome_at = {recent}
             WHERE id IN {a5};
         UPDATE outreach SET created_at = {ended} WHERE id IN {outreach_a6};
         INSERT INTO outreach_events (id, outreach_id, at, kind) SELECT 'E1', id, {ended}, 'note' FROM outreach WHERE id IN {a1};
         INSERT INTO followups (id, campaign, outreach_id, phone, reason, status, created_at, resolved_at, resolved_by)
             SELECT 'F1', 'reminders', id, phone, 'unreachable', 'resolved', {ended}, {ended}, 'Marta' FROM outreach WHERE id IN {a1};
         INSERT INTO followups (id, campaign, outreach_id, phone, reason, status, created_at)
             SELECT 'F4', 'reminders', id, phone, 'reschedule_requested', 'open', {ended} FROM outreach WHERE id IN {a4};
         INSERT INTO followups (id, campaign, phone, reason, detail, status, created_at, resolved_at)
             VALUES ('F8', 'reminders', '+34612000008', 'patient_message', 'hola', 'resolved', {ancient}, {ancient}),
                    ('F9', 'reminders', '+34612000009', 'patient_message', 'hola', 'open', {ancient}, NULL);
         UPDATE optouts SET created_at = {ancient};
         INSERT INTO webhook_deliveries (key, received_at) VALUES ('old', {ancient}), ('new', {now});",
        outreach_a6 = outreach_of("'A6'"),
    ))
    .await;

    // The queue's wake-ups and workers: J1 ran 100 days ago (on W1, not seen since); J2 failed
    // for good and J3 with tries left as long ago; J4 ran 5 days ago; J5 is still running on W2,
    // silent as long (a worker that died mid-job); W3 is running now.
    let secs = |ms: i64| ms / 1000;
    let (ended_s, recent_s, now_s) = (secs(ended), secs(recent), secs(now));
    let jobs = [
        ("J1", "Done", 1, 1, ended_s, "'W1'"),
        ("J2", "Failed", 1, 1, ended_s, "NULL"),
        ("J3", "Failed", 1, 25, ended_s, "NULL"),
        ("J4", "Done", 1, 1, recent_s, "'W3'"),
        ("J5", "Running", 0, 1, ended_s, "'W2'"),
    ];
    let workers = [("W1", ended_s), ("W2", ended_s), ("W3", now_s)];
    let postgres = env.url.starts_with("postgres");
    let (jobs_table, workers_table, time): (_, _, fn(i64) -> String) = match postgres {
        true => ("apalis.jobs", "apalis.workers", |s| {
            format!("to_timestamp({s})")
        }),
        false => ("Jobs", "Workers", |s| s.to_string()),
    };
    let mut sql = String::new();
    for (id, seen) in workers {
        sql.push_str(&format!(
            "INSERT INTO {workers_table} (id, worker_type, storage_name, last_seen)
             VALUES ('{id}', 'DialJob', 'ringback', {});",
            time(seen)
        ));
    }
    for (id, status, attempts, max_attempts, at, lock_by) in jobs {
        let done = match status {
            "Running" => "NULL".to_string(),
            _ => time(at),
        };
        sql.push_str(&format!(
            "INSERT INTO {jobs_table} (job, id, job_type, status, attempts, max_attempts, run_at, lock_by, done_at)
             VALUES ({job}, '{id}', 'DialJob', '{status}', {attempts}, {max_attempts}, {run_at}, {lock_by}, {done});",
            job = if postgres { "'\\x00'::bytea" } else { "x'00'" },
            run_at = time(at),
        ));
    }
    env.execute(&sql).await;
}

/// The ids in a queue table (`Jobs` or `Workers` on SQLite), in order.
async fn queue_ids(env: &TestEnv, table: &str) -> Vec<String> {
    let table = match env.url.starts_with("postgres") {
        true => format!("apalis.{}", table.to_lowercase()),
        false => table.to_string(),
    };
    env.rows(&format!("SELECT id FROM {table} ORDER BY id"))
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

/// The calls placed as `/metrics` counts them: (campaign, channel, status, answerer, how many).
async fn placed(env: &TestEnv) -> Vec<ringback::store::PlacedCount> {
    let db = env.db().await;
    let mut placed = db.metric_facts(Utc::now()).await.unwrap().placed;
    db.close().await;
    placed.sort();
    placed
}

/// `ringback ARGS` ends with `code`, and its error says `says`.
fn refused(env: &TestEnv, args: &[&str], code: i32, says: &str) {
    let run = env.ringback(args);
    run.assert_code(code);
    assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
}

/// A `ringback serve` killed when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The external ids of the appointments left, in order.
async fn appointments_left(env: &TestEnv) -> Vec<String> {
    env.rows("SELECT external_id FROM appointments ORDER BY external_id")
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

both_backends!(
    a_purge_deletes_what_ended_before_the_retention_period_and_keeps_the_rest,
    |env: TestEnv| async move {
        months_of_calls(&env).await;
        let rows_before = env
            .scalar("SELECT (SELECT COUNT(*) FROM outreach) + (SELECT COUNT(*) FROM attempts) + (SELECT COUNT(*) FROM patients)")
            .await;

        // A dry run says what would go, and nothing goes.
        let dry = env.ringback(&["purge", "--days", "30", "--dry-run"]);
        dry.assert_code(0);
        let dry = dry.json();
        assert_eq!(dry["dry_run"], true, "{dry}");
        assert_eq!(
            env.scalar("SELECT (SELECT COUNT(*) FROM outreach) + (SELECT COUNT(*) FROM attempts) + (SELECT COUNT(*) FROM patients)")
                .await,
            rows_before
        );

        let placed_before = placed(&env).await;
        assert_eq!(placed_before.len(), 1, "{placed_before:?}");
        let run = env.ringback(&["purge", "--days", "30"]);
        run.assert_code(0);
        let summary = run.json();
        assert_eq!(summary["kept_days"], 30, "{summary}");
        assert_eq!(summary["dry_run"], false, "{summary}");
        let deleted = &summary["deleted"];
        assert_eq!(deleted, &dry["deleted"], "the dry run counted the same");
        // A1's and A2's outreach, each with its one call, A1's event and resolved follow-up, and
        // the resolved follow-up of no outreach; their two visits; P1, who has nothing else.
        assert_eq!(
            deleted,
            &serde_json::json!({
                "outreach": 2, "attempts": 2, "events": 1, "followups": 2,
                "appointments": 2, "patients": 1, "webhook_deliveries": 1, "channel_blocks": 0,
                "queue_jobs": 2, "queue_workers": 1
            }),
            "{summary}"
        );
        assert_eq!(appointments_left(&env).await, ["A3", "A4", "A5", "A6"]);
        assert_eq!(
            env.rows("SELECT external_id FROM patients ORDER BY external_id")
                .await
                .concat(),
            [
                Some("P2".into()),
                Some("P4".into()),
                Some("P5".into()),
                Some("P6".into())
            ]
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM outreach WHERE phone IN ('+34612000001')")
                .await,
            0
        );
        assert_eq!(env.scalar("SELECT COUNT(*) FROM attempts").await, 4);
        assert_eq!(
            env.rows("SELECT id FROM followups ORDER BY id")
                .await
                .concat(),
            [Some("F4".into()), Some("F9".into())]
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM optouts WHERE phone = '+34612000009'")
                .await,
            1,
            "the opt-out ledger is kept whatever its age"
        );
        assert_eq!(
            env.rows("SELECT key FROM webhook_deliveries")
                .await
                .concat(),
            [Some("new".into())]
        );

        // The queue keeps what is to come or may still run, and the workers those name.
        assert_eq!(queue_ids(&env, "Jobs").await, ["J3", "J4", "J5"]);
        assert_eq!(queue_ids(&env, "Workers").await, ["W2", "W3"]);

        // /metrics' counters do not go down: the deleted calls are counted as they go.
        assert_eq!(placed(&env).await, placed_before);

        // Again: nothing left to delete.
        let again = env.ringback(&["purge", "--days", "30"]);
        again.assert_code(0);
        let zero: u64 = again.json()["deleted"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(zero, 0, "{}", again.stdout());

        // The same list imported again: P1 and A1, A2 anew, next to what stayed.
        let list = env.path().join("list.csv");
        let reimport = env.ringback(&["import", "--campaign", "reminders", list.to_str().unwrap()]);
        reimport.assert_code(0);
        assert_eq!(reimport.json()["created"], 2, "{}", reimport.stdout());
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM patients WHERE external_id = 'P1'")
                .await,
            1
        );
    }
);

both_backends!(
    a_purge_needs_a_retention_of_two_weeks_or_more,
    |env: TestEnv| async move {
        months_of_calls(&env).await;
        refused(&env, &["purge", "--days", "7"], 1, "at least 14 days");
        refused(&env, &["purge"], 1, "--days");
        env.write("ringback.toml", "retention_days = 3\n");
        refused(&env, &["purge"], 1, "retention_days");
        assert_eq!(appointments_left(&env).await.len(), 6, "nothing deleted");
    }
);

both_backends!(
    serve_purges_by_itself_with_retention_days_set,
    |env: TestEnv| async move {
        months_of_calls(&env).await;
        env.write(
            "ringback.toml",
            "retention_days = 30\nlisten = \"127.0.0.1:0\"\n",
        );
        // Stopped when the test ends, passed or failed.
        let serve = Stopped(
            std::process::Command::new(env!("CARGO_BIN_EXE_ringback"))
                .arg("serve")
                .current_dir(env.path())
                .env("RINGBACK_DATABASE_URL", &env.url)
                .env("RINGBACK_CAMPAIGNS_DIR", env.campaigns())
                .env_remove("DATABASE_URL")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for("serve to purge", Duration::from_secs(30), || async {
            appointments_left(&env).await.len() == 4
        })
        .await;
        drop(serve);
        assert_eq!(appointments_left(&env).await, ["A3", "A4", "A5", "A6"]);
    }
);

/// Two workers' hourly purges at once on PostgreSQL: the second steps aside rather than wait on
/// the first's rows; `ringback purge` then says so (exit 2) and deletes nothing.
#[tokio::test]
async fn a_purge_steps_aside_while_another_runs_on_postgres() {
    let env = TestEnv::new(Backend::Postgres).await;
    months_of_calls(&env).await;
    let db = env.db().await;
    let Db::Postgres(pool) = &db else {
        unreachable!("a PostgreSQL environment")
    };
    // Another worker's purge, holding the lock in its transaction.
    let mut other = pool.begin().await.unwrap();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7270657267)")
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert!(held);
    assert_eq!(
        db.purge(Utc::now() - chrono::TimeDelta::days(30), false)
            .await
            .unwrap(),
        None
    );
    refused(
        &env,
        &["purge", "--days", "30"],
        2,
        "another worker is purging",
    );
    assert_eq!(appointments_left(&env).await.len(), 6);
    other.rollback().await.unwrap();
    env.ringback(&["purge", "--days", "30"]).assert_code(0);
    assert_eq!(appointments_left(&env).await.len(), 4);
    db.close().await;
}
