//! Reminders end to end: the real app (HTTP + worker) against a Twilio-compatible fake that plays
//! each call out, on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::app::{
    appointments_csv, daytime_zone, import_csv, numbered, start, test_campaign, use_test_campaign,
    wait_for,
};
use common::fake_twilio::{FakeTwilio, Script};
use common::*;

const PATIENTS: [(&str, Script, usize); 8] = [
    ("+34612000001", Script::Human(Some("1")), 7),
    ("+34612000002", Script::Human(Some("2")), 7),
    ("+34612000003", Script::Human(Some("9")), 7),
    ("+34612000004", Script::Machine, 6),
    ("+34612000005", Script::NoAnswer, 5),
    ("+34612000006", Script::Refuse(400, "21211"), 0),
    ("+34612000007", Script::Human(None), 6),
    ("+34612000008", Script::Busy, 5),
];

async fn import_patients(app: &ringback::app::App) {
    let patients: Vec<_> = PATIENTS
        .iter()
        .enumerate()
        .map(|(i, (phone, ..))| (phone.to_string(), format!("Pat{i}"), String::new()))
        .collect();
    let summary = import_csv(app, &appointments_csv(&patients)).await;
    assert_eq!(summary.created, 8, "{summary:?}");
}

both_backends!(
    each_patient_ends_with_the_outcome_their_answer_gives,
    |env: TestEnv| async move {
        use_test_campaign(&env, test_campaign(daytime_zone(), 50.0), false);
        let fake = FakeTwilio::start("test-auth-token").await;
        for (phone, script, _) in &PATIENTS {
            fake.script(phone, script.clone());
        }
        let running = start(&env, &fake).await;
        import_patients(&running.app).await;

        let expected_webhooks: usize = PATIENTS.iter().map(|p| p.2).sum();
        wait_for(
            "every call to play out",
            Duration::from_secs(30),
            || async { fake.log().webhooks.len() >= expected_webhooks },
        )
        .await;
        wait_for(
            "every attempt to settle",
            Duration::from_secs(10),
            || async {
                env.scalar("SELECT COUNT(*) FROM attempts WHERE status IN ('dialing', 'live')")
                    .await
                    == 0
            },
        )
        .await;
        running.stop().await;

        let outcome = |phone: &'static str| {
            let env = &env;
            async move {
                env.rows(&format!(
                    "SELECT state, outcome FROM outreach WHERE phone = '{phone}'"
                ))
                .await
                .remove(0)
            }
        };
        let finished = |o: &str| vec![Some("finished".to_string()), Some(o.to_string())];
        assert_eq!(outcome("+34612000001").await, finished("confirmed"));
        assert_eq!(outcome("+34612000002").await, finished("cancel_requested"));
        assert_eq!(outcome("+34612000003").await, finished("opted_out"));
        assert_eq!(outcome("+34612000004").await, finished("voicemail_left"));
        assert_eq!(outcome("+34612000006").await, finished("invalid_number"));
        assert_eq!(outcome("+34612000007").await, finished("reached"));
        // Nobody answered: the next call is planned, on another day (one call a day at most).
        for phone in ["+34612000005", "+34612000008"] {
            assert_eq!(
                outcome(phone).await,
                vec![Some("active".into()), None],
                "{phone}"
            );
            let next = env
                .rows(&format!(
                    "SELECT status FROM attempts WHERE phone = '{phone}' AND seq = 2"
                ))
                .await;
            assert_eq!(next, vec![vec![Some("planned".to_string())]], "{phone}");
        }
        // Keypad 9 went to the opt-out ledger.
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM optouts WHERE phone = '+34612000003' AND source = 'keypad'"
            )
            .await,
            1
        );
        // Staff have exactly the follow-ups they must act on.
        let followups = env
            .rows("SELECT reason FROM followups ORDER BY reason")
            .await;
        assert_eq!(
            followups,
            vec![
                vec![Some("cancel_requested".into())],
                vec![Some("invalid_number".into())]
            ]
        );

        let log = fake.log();
        // One accepted provider call per attempt, never two.
        let mut accepted = log.accepted.clone();
        accepted.sort();
        accepted.dedup();
        assert_eq!(
            accepted.len(),
            log.accepted.len(),
            "an attempt was dialled twice"
        );
        assert_eq!(log.accepted.len(), 7);
        assert_eq!(log.requests.len(), 8);
        // Replays and late deliveries were taken without a server error.
        assert!(
            log.webhooks
                .iter()
                .all(|(_, status, _)| *status < 500 && *status != 0),
            "{:?}",
            log.webhooks
        );
        // A person heard the reminder with its keys; a machine got the voicemail without them.
        let answers: Vec<&String> = log
            .webhooks
            .iter()
            .filter(|w| w.0 == "twilio/voice/answer")
            .map(|w| &w.2)
            .collect();
        assert!(
            answers
                .iter()
                .any(|t| t.contains("<Gather numDigits=\"1\"") && t.contains("Hello Pat0"))
        );
        assert!(
            answers
                .iter()
                .any(|t| !t.contains("Gather") && t.contains("calling about a visit"))
        );
        // Statuses moved only forward: completed stays completed after the late ringing.
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM attempts WHERE call_status = 'ringing' AND status = 'done'"
            )
            .await,
            0
        );
    }
);

both_backends!(
    two_workers_on_one_database_never_dial_an_attempt_twice,
    |env: TestEnv| async move {
        use_test_campaign(&env, test_campaign(daytime_zone(), 200.0), true);
        let fake = FakeTwilio::start("test-auth-token").await;
        let first = start(&env, &fake).await;
        let second = start(&env, &fake).await;
        let patients = numbered("+346120001", 40);
        for (phone, ..) in &patients {
            fake.script(phone, Script::Machine);
        }
        assert_eq!(
            import_csv(&first.app, &appointments_csv(&patients))
                .await
                .created,
            40
        );
        wait_for("all 40 calls to end", Duration::from_secs(60), || async {
            env.scalar("SELECT COUNT(*) FROM outreach WHERE outcome = 'voicemail_left'")
                .await
                == 40
        })
        .await;
        first.stop().await;
        second.stop().await;
        let log = fake.log();
        let mut accepted = log.accepted.clone();
        accepted.sort();
        accepted.dedup();
        assert_eq!(accepted.len(), 40);
        assert_eq!(log.accepted.len(), 40, "an attempt was dialled twice");
        assert_eq!(log.requests.len(), 40);
    }
);

#[tokio::test]
async fn two_workers_on_postgresql_share_one_pace() {
    let env = TestEnv::new(Backend::Postgres).await;
    use_test_campaign(&env, test_campaign(daytime_zone(), 5.0), true);
    let fake = FakeTwilio::start("test-auth-token").await;
    let first = start(&env, &fake).await;
    let second = start(&env, &fake).await;
    let patients = numbered("+346120002", 20);
    for (phone, ..) in &patients {
        fake.script(phone, Script::Machine);
    }
    import_csv(&first.app, &appointments_csv(&patients)).await;
    wait_for("all 20 calls", Duration::from_secs(60), || async {
        fake.log().accepted.len() == 20
    })
    .await;
    first.stop().await;
    second.stop().await;
    // Each worker alone would allow 5 a second; together they must still keep 5 (burst 1).
    let mut at = fake.log().accepted_at;
    at.sort();
    let busiest = at
        .iter()
        .map(|t| {
            at.iter()
                .filter(|u| **u >= *t && u.duration_since(*t) < Duration::from_secs(1))
                .count()
        })
        .max();
    assert!(
        busiest.unwrap() <= 6,
        "{busiest:?} calls in one second at 5/s"
    );
    assert!(
        at[19].duration_since(at[0]) >= Duration::from_millis(3_400),
        "20 calls at 5/s take at least 3.8 s"
    );
}

both_backends!(
    a_call_whose_callbacks_never_come_is_settled_by_asking_the_provider,
    |env: TestEnv| async move {
        use_test_campaign(&env, test_campaign(daytime_zone(), 50.0), false);
        let fake = FakeTwilio::start("test-auth-token").await;
        fake.script("+34612000301", Script::Silent);
        let running = start(&env, &fake).await;
        import_csv(
            &running.app,
            &appointments_csv(&numbered("+346120003", 2)[1..]),
        )
        .await;
        wait_for("the call to be placed", Duration::from_secs(30), || async {
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'live'")
                .await
                == 1
        })
        .await;
        // The line stays taken until someone asks the provider: the reconcile loop does.
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let reconcile = tokio::spawn(ringback::runtime::reconcile(
            running.app.clone(),
            stop_rx,
            Duration::from_millis(200),
            TimeDelta::zero(),
        ));
        wait_for("the reconcile to settle the call", Duration::from_secs(30), || async {
        env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'done' AND call_status = 'no-answer'").await == 1
    })
    .await;
        let _ = stop.send(true);
        let _ = reconcile.await;
        running.stop().await;
        assert_eq!(fake.log().fetched.len(), 1);
        // No answer: the outreach goes on, with the next call planned on another day.
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE seq = 2 AND status = 'planned'")
                .await,
            1
        );
        assert_eq!(
            fake.log().accepted.len(),
            1,
            "settled by asking, never by dialing again"
        );
    }
);
