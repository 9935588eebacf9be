//! Every rule is checked again at the moment of dialing (DESIGN invariant 2), and logs carry no
//! PHI (invariant 8): the dial step driven directly, on both backends.

mod common;

use chrono::Utc;
use chrono_tz::Tz;
use common::app::{
    appointments_csv, daytime_zone, import_csv, start, test_campaign, use_test_campaign,
};
use common::fake_twilio::{FakeTwilio, Script};
use common::*;
use ringback::app::App;
use ringback::campaign::load_dir;
use ringback::config::Secret;
use ringback::dial::Dialed;
use ringback::outreach::{Channel, Outcome};
use ringback::plan::calendar;
use ringback::provider::Provider;
use ringback::provider::twilio::TwilioClient;

/// An app with no worker running: the test calls the dial step itself.
async fn app_without_worker(env: &TestEnv, fake: &FakeTwilio, zone: Tz) -> App {
    use_test_campaign(env, test_campaign(zone, 50.0), false);
    let db = env.db().await;
    db.migrate().await.unwrap();
    let client = TwilioClient::new(
        &fake.url,
        "ACtest",
        Secret::new(fake.token.clone()),
        std::time::Duration::from_secs(5),
    );
    App::new(
        db,
        load_dir(&env.campaigns()).unwrap(),
        Provider::Twilio(client),
        "http://127.0.0.1:9",
    )
}

/// Import one patient; returns the id of the planned first attempt.
async fn plan_one(env: &TestEnv, app: &App, phone: &str) -> String {
    let patient = (
        phone.to_string(),
        "Montserrat".to_string(),
        "Vilaseca".to_string(),
    );
    import_csv(app, &appointments_csv(&[patient])).await;
    env.rows("SELECT id FROM attempts")
        .await
        .remove(0)
        .remove(0)
        .unwrap()
}

both_backends!(
    an_opt_out_after_planning_means_the_attempt_is_never_placed,
    |env: TestEnv| async move {
        let fake = FakeTwilio::start("t").await;
        let app = app_without_worker(&env, &fake, daytime_zone()).await;
        let attempt = plan_one(&env, &app, "+34612000011").await;
        app.db
            .opt_out("+34612000011", "sms", Utc::now())
            .await
            .unwrap();
        assert_eq!(app.dial(&attempt).await.unwrap(), Dialed::Skipped);
        assert_eq!(fake.log().requests.len(), 0);
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'withdrawn'")
                .await,
            1
        );
        assert_eq!(
            env.rows("SELECT outcome FROM outreach").await[0][0].as_deref(),
            Some("opted_out")
        );
    }
);

both_backends!(
    a_job_that_wakes_after_the_deadline_ends_expired_with_a_followup,
    |env: TestEnv| async move {
        let fake = FakeTwilio::start("t").await;
        let app = app_without_worker(&env, &fake, daytime_zone()).await;
        let attempt = plan_one(&env, &app, "+34612000012").await;
        // Downtime: the worker comes back after the reminder's deadline.
        env.execute("UPDATE outreach SET deadline = 1000").await;
        assert_eq!(
            app.dial(&attempt).await.unwrap(),
            Dialed::Ended(Outcome::Expired)
        );
        assert_eq!(fake.log().requests.len(), 0);
        assert_eq!(
            env.rows("SELECT reason FROM followups").await,
            vec![vec![Some("expired".to_string())]]
        );
    }
);

both_backends!(
    a_job_that_wakes_outside_legal_hours_is_planned_again_not_placed,
    |env: TestEnv| async move {
        let fake = FakeTwilio::start("t").await;
        // A zone where it is night now: no call may be placed there at this moment.
        let night = [
            "Europe/Madrid",
            "America/New_York",
            "America/Los_Angeles",
            "Asia/Tokyo",
            "Asia/Kolkata",
            "Pacific/Auckland",
            "Europe/London",
            "Asia/Dubai",
            "Pacific/Honolulu",
            "Australia/Sydney",
        ]
        .iter()
        .map(|z| z.parse::<Tz>().unwrap())
        .find(|z| !(7 * 60..22 * 60).contains(&calendar::local_minute(*z, Utc::now())))
        .expect("some zone has night");
        let app = app_without_worker(&env, &fake, night).await;
        let attempt = plan_one(&env, &app, "+34612000013").await;
        // As if the queue woke it now (a backlog, a clock jump): it is due, but the patient sleeps.
        env.execute("UPDATE attempts SET due_at = 0").await;
        let Dialed::Replanned(at) = app.dial(&attempt).await.unwrap() else {
            panic!("placed at night")
        };
        let local = calendar::local_minute(night, at);
        assert!((8 * 60..21 * 60).contains(&local), "replanned to {at}");
        assert_eq!(fake.log().requests.len(), 0);
    }
);

both_backends!(
    a_number_that_takes_no_calls_is_never_called_and_staff_get_a_followup,
    |env: TestEnv| async move {
        let fake = FakeTwilio::start("t").await;
        let app = app_without_worker(&env, &fake, daytime_zone()).await;
        let attempt = plan_one(&env, &app, "+34612000014").await;
        // A provider refused an earlier call to the number as the wrong channel.
        app.db
            .block_channel("+34612000014", Channel::Voice, "test", Utc::now())
            .await
            .unwrap();
        assert_eq!(
            app.dial(&attempt).await.unwrap(),
            Dialed::Ended(Outcome::Unreachable)
        );
        assert_eq!(fake.log().requests.len(), 0);
        assert_eq!(
            env.rows("SELECT reason FROM followups").await,
            vec![vec![Some("unreachable".to_string())]]
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            0
        );
    }
);

both_backends!(
    an_attempt_planned_while_its_outreach_ended_is_withdrawn_not_placed,
    |env: TestEnv| async move {
        let fake = FakeTwilio::start("t").await;
        let app = app_without_worker(&env, &fake, daytime_zone()).await;
        let attempt = plan_one(&env, &app, "+34612000015").await;
        // The end committed after the attempt was planned (two workers, side by side).
        env.execute("UPDATE outreach SET state = 'finished', outcome = 'confirmed'")
            .await;
        assert_eq!(app.dial(&attempt).await.unwrap(), Dialed::Skipped);
        assert_eq!(fake.log().requests.len(), 0);
        assert_eq!(
            env.rows("SELECT status FROM attempts").await,
            vec![vec![Some("withdrawn".to_string())]]
        );
    }
);

#[tokio::test]
async fn logs_carry_ids_and_masked_numbers_never_names_or_full_numbers() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("ringback=trace")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = TestEnv::new(Backend::Sqlite).await;
    use_test_campaign(&env, test_campaign(daytime_zone(), 50.0), false);
    let fake = FakeTwilio::start("t").await;
    fake.script("+34612000014", Script::Human(Some("2")));
    let running = start(&env, &fake).await;
    plan_one(&env, &running.app, "+34612000014").await;
    common::app::wait_for(
        "the call to end",
        std::time::Duration::from_secs(45),
        || async { env.scalar("SELECT COUNT(*) FROM followups").await == 1 },
    )
    .await;
    running.stop().await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("…0014"),
        "the masked number is how logs name a patient:\n{logs}"
    );
    for secret in ["612000014", "Montserrat", "Vilaseca"] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
    }
}

both_backends!(
    a_job_that_wakes_while_shutting_down_leaves_its_attempt_to_be_queued_again,
    |env: TestEnv| async move {
        let fake = FakeTwilio::start("t").await;
        let app = app_without_worker(&env, &fake, daytime_zone()).await;
        let id = plan_one(&env, &app, "+34612000401").await;
        // The feeder queued it; then the process is told to stop before the job runs.
        assert!(app.db.take_for_queue(&id, "01TASK").await.unwrap());
        app.stop_dialing();
        assert_eq!(app.dial(&id).await.unwrap(), Dialed::Skipped);
        assert!(fake.log().requests.is_empty());
        assert_eq!(
            env.scalar(&format!("SELECT COUNT(*) FROM attempts WHERE id = '{id}' AND status = 'planned' AND task_id IS NULL")).await,
            1,
            "planned, and free for the next start to queue"
        );
    }
);
