//! Callbacks end to end: web forms and other systems (`POST /v1/callbacks`), the clinic number's
//! missed-call webhook, merging, withdrawal, agent-first and patient-first calls against the
//! Twilio-compatible fake, and the timing rules at the window's edges — on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use chrono_tz::Tz;
use common::app::{daytime_zone, night_zone, start, use_test_campaign, wait_for};
use common::fake_twilio::{FakeTwilio, Script};
use common::*;
use ringback::callbacks::{CallbackRequest, Source};
use serde_json::{Value, json};

const CLINIC: &str = "+34930000001";

/// A callback campaign open every day in `zone`.
fn callback_campaign(zone: Tz, connect: &str) -> String {
    format!(
        r#"name = "Test callbacks"
clinic = "CAP Test"
kind = "callback"
timezone = "{zone}"
country = "ES"
caller_id = "+34930000000"
clinic_phone = "{CLINIC}"
default_language = "en"
[window]
mon-sun = "08:00-21:00"
[callback]
connect = "{connect}"
agents = 4
expire_after = "3d"
[retry]
max_calls = 3
gaps = ["1h"]
max_calls_per_day = 3
max_calls_per_week = 6
[pacing]
calls_per_second = 50
burst = 1
max_concurrent_calls = 20
[messages.en]
voice = "Hello {{first_name}}, {{clinic}} returning your call. Connecting you now."
voicemail = "Hello, {{clinic}} returning your call. Please call us on {{clinic_phone}}."
agent = "Callback for {{first_name}}. Connecting."
"#
    )
}

/// The test campaign alone (the shipped callback campaign would make the choice ambiguous).
fn use_campaign(env: &TestEnv, toml: String) {
    use_test_campaign(env, toml, true);
}

async fn post_callback(url: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/callbacks"))
        .bearer_auth("api-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

both_backends!(
    an_agent_first_callback_rings_staff_then_bridges_the_patient,
    |env: TestEnv| async move {
        use_campaign(&env, callback_campaign(daytime_zone(), "agent_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        fake.script(CLINIC, Script::Human(None));
        fake.script("+34612000011", Script::Human(None));
        let running = start(&env, &fake).await;

        let (status, body) = post_callback(
            &running.url,
            json!({"phone": "612 00 00 11", "name": "Anna Puig", "source": "web_form", "note": "about my results"}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "scheduled");
        let first: chrono::DateTime<Utc> =
            body["first_attempt_at"].as_str().unwrap().parse().unwrap();
        assert!(first <= Utc::now(), "due at once while the clinic is open");
        let id = body["id"].as_str().unwrap().to_string();
        // The answer gives the instant stored (milliseconds), as every later read of it does.
        assert_eq!(first.timestamp_subsec_nanos() % 1_000_000, 0, "{first}");
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM attempts WHERE outreach_id = '{id}' AND due_at = {}",
                first.timestamp_millis()
            ))
            .await,
            1
        );

        wait_for(
            "the callback to connect",
            Duration::from_secs(20),
            || async { env.outreach_state("id", &id).await[0].as_deref() == Some("finished") },
        )
        .await;
        let url = running.url.clone();
        running.stop().await;
        assert_eq!(env.outreach_state("id", &id).await, finished("connected"));

        let log = fake.log();
        assert_eq!(log.requests.len(), 1, "one provider request");
        let call = &log.requests[0];
        assert_eq!(call["To"], CLINIC, "staff are rung first");
        assert!(
            !call.contains_key("MachineDetection"),
            "no machine detection on the clinic line"
        );
        let answer = &log
            .webhooks
            .iter()
            .find(|w| w.0 == "twilio/voice/answer")
            .unwrap()
            .2;
        assert!(answer.contains("Callback for Anna."), "{answer}");
        assert!(!answer.contains("Puig"), "first name only: {answer}");
        assert!(answer.contains("answerOnBridge=\"true\""), "{answer}");
        assert!(answer.contains("callerId=\"+34930000000\""), "{answer}");
        assert!(answer.contains("<Number>+34612000011</Number>"), "{answer}");
        assert_eq!(log.dialed, vec!["+34612000011".to_string()]);
        assert_eq!(
            env.scalar(&format!("SELECT COUNT(*) FROM outreach WHERE id = '{id}' AND source = 'web_form' AND note LIKE '%about my results%'")).await,
            1
        );
        // The worker stopped; the HTTP side still answers.
        let s: Value = reqwest::Client::new()
            .get(format!("{url}/v1/stats?campaign=test"))
            .bearer_auth("api-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(s["outcomes"]["connected"], 1, "{s}");
        assert_eq!(s["outreach"]["finished"], 1, "{s}");
        let to_contact = s["time_to_contact_s"]["max"].as_f64().unwrap();
        let to_first = s["time_to_first_attempt_s"]["max"].as_f64().unwrap();
        assert!(to_contact >= to_first, "{s}");
    }
);

both_backends!(
    a_patient_first_callback_greets_then_dials_the_clinic,
    |env: TestEnv| async move {
        use_campaign(&env, callback_campaign(daytime_zone(), "patient_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        fake.script(CLINIC, Script::Human(None));
        fake.script("+34612000021", Script::Human(None));
        fake.script("+34612000022", Script::Human(None));
        let running = start(&env, &fake).await;

        let (_, a) = post_callback(
            &running.url,
            json!({"phone": "+34612000021", "name": "Joan", "source": "api"}),
        )
        .await;
        let a = a["id"].as_str().unwrap().to_string();
        wait_for(
            "the first callback to connect",
            Duration::from_secs(20),
            || async { env.outreach_state("id", &a).await[0].as_deref() == Some("finished") },
        )
        .await;
        assert_eq!(env.outreach_state("id", &a).await, finished("connected"));
        let log = fake.log();
        assert_eq!(
            log.requests[0]["To"], "+34612000021",
            "the patient is rung first"
        );
        assert_eq!(log.requests[0]["MachineDetection"], "DetectMessageEnd");
        let answer = &log
            .webhooks
            .iter()
            .find(|w| w.0 == "twilio/voice/answer")
            .unwrap()
            .2;
        assert!(
            answer.contains("Hello Joan, CAP Test returning your call"),
            "{answer}"
        );
        assert!(
            answer.contains(&format!("<Number>{CLINIC}</Number>")),
            "{answer}"
        );

        // Now the clinic line does not answer: the patient was reached, staff must call them.
        fake.script(CLINIC, Script::NoAnswer);
        let (_, b) = post_callback(
            &running.url,
            json!({"phone": "+34612000022", "source": "api"}),
        )
        .await;
        let b = b["id"].as_str().unwrap().to_string();
        wait_for(
            "the second callback to end",
            Duration::from_secs(20),
            || async { env.outreach_state("id", &b).await[0].as_deref() == Some("finished") },
        )
        .await;
        running.stop().await;
        assert_eq!(env.outreach_state("id", &b).await, finished("reached"));
        assert_eq!(
            env.scalar(&format!("SELECT COUNT(*) FROM followups WHERE outreach_id = '{b}' AND reason = 'callback_not_connected' AND status = 'open'")).await,
            1
        );
    }
);

both_backends!(
    an_unanswered_clinic_line_is_no_patient_attempt,
    |env: TestEnv| async move {
        use_campaign(&env, callback_campaign(daytime_zone(), "agent_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        fake.script(CLINIC, Script::NoAnswer);
        let running = start(&env, &fake).await;
        let (status, body) = post_callback(
            &running.url,
            json!({"phone": "+34612000031", "source": "api"}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        wait_for("a second attempt to be planned", Duration::from_secs(20), || async {
            env.scalar(&format!("SELECT COUNT(*) FROM attempts WHERE outreach_id = '{id}' AND seq = 2 AND status = 'planned'")).await == 1
        })
        .await;
        running.stop().await;
        assert_eq!(
            env.outreach_state("id", &id).await[0].as_deref(),
            Some("active")
        );
        assert_eq!(
            env.scalar(&format!(
                "SELECT counted FROM attempts WHERE outreach_id = '{id}' AND seq = 1"
            ))
            .await,
            0,
            "the patient's phone never rang"
        );
        let gap = env
            .scalar(&format!(
                "SELECT b.due_at - a.placed_at FROM attempts a JOIN attempts b ON b.outreach_id = a.outreach_id
                 WHERE a.outreach_id = '{id}' AND a.seq = 1 AND b.seq = 2"
            ))
            .await;
        // The clinic is rung again after a few minutes, not after the patient's retry gap (1 h).
        assert!((170_000..=200_000).contains(&gap), "{gap} ms");
        assert_eq!(fake.log().dialed.len(), 0);
    }
);

both_backends!(
    requests_for_one_number_merge_and_an_answered_call_withdraws_them,
    |env: TestEnv| async move {
        use_campaign(&env, callback_campaign(night_zone(), "agent_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        let missed = format!("{}/webhooks/twilio/voice/missed", running.url);

        let (status, first) = post_callback(
            &running.url,
            json!({"phone": "+34 612 00 00 41", "source": "web_form"}),
        )
        .await;
        assert_eq!(status, 202);
        let id = first["id"].as_str().unwrap().to_string();
        let due: chrono::DateTime<Utc> =
            first["first_attempt_at"].as_str().unwrap().parse().unwrap();
        assert!(due > Utc::now(), "night: at the next opening");
        let (status, again) =
            post_callback(&running.url, json!({"phone": "612000041", "source": "api"})).await;
        assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
        assert_eq!(again["status"], "merged");
        // A missed call from the same number merges too.
        let (code, twiml) = fake
            .post(
                &missed,
                &[
                    ("CallSid", "CAin1"),
                    ("From", "+34612000041"),
                    ("To", CLINIC),
                    ("DialCallStatus", "no-answer"),
                ],
            )
            .await;
        assert_eq!(code, 200);
        assert!(
            twiml.contains("<Record"),
            "the caller may leave a message: {twiml}"
        );
        // The same call's status callback and a repeat of its report change nothing.
        fake.post(
            &missed,
            &[
                ("CallSid", "CAin1"),
                ("From", "+34612000041"),
                ("To", CLINIC),
                ("CallStatus", "completed"),
            ],
        )
        .await;
        fake.post(
            &missed,
            &[
                ("CallSid", "CAin1"),
                ("From", "+34612000041"),
                ("To", CLINIC),
                ("DialCallStatus", "no-answer"),
            ],
        )
        .await;
        // Its voicemail is kept for staff, without counting the call twice.
        fake.post(
            &missed,
            &[
                ("CallSid", "CAin1"),
                ("From", "+34612000041"),
                ("To", CLINIC),
                ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
            ],
        )
        .await;
        assert_eq!(
            env.rows(&format!("SELECT state, CAST(requests AS TEXT), recording_url FROM outreach WHERE id = '{id}'")).await[0],
            vec![Some("active".into()), Some("3".into()), Some("https://api.twilio.com/rec/RE1".into())]
        );
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach").await, 1);

        // The patient gets through to the clinic: the open callback is withdrawn.
        fake.post(
            &missed,
            &[
                ("CallSid", "CAin2"),
                ("From", "+34612000041"),
                ("To", CLINIC),
                ("DialCallStatus", "completed"),
            ],
        )
        .await;
        running.stop().await;
        assert_eq!(env.outreach_state("id", &id).await, finished("withdrawn"));
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM attempts WHERE outreach_id = '{id}' AND status = 'withdrawn'"
            ))
            .await,
            1
        );
        assert!(fake.log().requests.is_empty(), "nothing dialled at night");
    }
);

both_backends!(
    each_source_and_bad_input_at_the_missed_call_webhook_and_the_api,
    |env: TestEnv| async move {
        use_campaign(&env, callback_campaign(night_zone(), "agent_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        let missed = format!("{}/webhooks/twilio/voice/missed", running.url);

        // A voicemail alone becomes a voicemail callback with its recording.
        let (code, _) = fake
            .post(
                &missed,
                &[
                    ("CallSid", "CAv"),
                    ("From", "+34612000051"),
                    ("To", CLINIC),
                    ("CallStatus", "completed"),
                    ("RecordingUrl", "https://api.twilio.com/rec/RE2"),
                ],
            )
            .await;
        assert_eq!(code, 200);
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach WHERE phone = '+34612000051' AND source = 'voicemail' AND recording_url IS NOT NULL").await, 1);
        // A busy clinic line: a missed_call callback.
        fake.post(
            &missed,
            &[
                ("CallSid", "CAb"),
                ("From", "+34612000052"),
                ("To", CLINIC),
                ("DialCallStatus", "busy"),
            ],
        )
        .await;
        assert_eq!(env.scalar("SELECT COUNT(*) FROM outreach WHERE phone = '+34612000052' AND source = 'missed_call'").await, 1);
        // An answered call creates nothing.
        fake.post(
            &missed,
            &[
                ("CallSid", "CAa"),
                ("From", "+34612000053"),
                ("To", CLINIC),
                ("DialCallStatus", "completed"),
            ],
        )
        .await;
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM outreach WHERE phone = '+34612000053'")
                .await,
            0
        );
        // A withheld caller id: a follow-up, not a dial.
        fake.post(
            &missed,
            &[
                ("CallSid", "CAw"),
                ("From", "anonymous"),
                ("To", CLINIC),
                ("DialCallStatus", "no-answer"),
            ],
        )
        .await;
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM followups WHERE reason = 'invalid_number' AND phone IS NULL"
            )
            .await,
            1
        );
        // An opted-out number is never called back: a follow-up instead.
        running
            .app
            .db
            .opt_out("+34612000054", "api", Utc::now())
            .await
            .unwrap();
        let (status, body) = post_callback(
            &running.url,
            json!({"phone": "+34612000054", "source": "web_form"}),
        )
        .await;
        assert_eq!((status, body["status"].as_str()), (202, Some("opted_out")));
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE phone = '+34612000054'")
                .await,
            0
        );
        assert_eq!(env.scalar("SELECT COUNT(*) FROM followups WHERE phone = '+34612000054' AND reason = 'callback_not_connected'").await, 1);

        let before = env.scalar("SELECT COUNT(*) FROM outreach").await;
        let followups = env.scalar("SELECT COUNT(*) FROM followups").await;
        // No From, a SIP address: 400. A bad signature: 403.
        assert_eq!(
            fake.post(
                &missed,
                &[
                    ("CallSid", "CAx"),
                    ("To", CLINIC),
                    ("DialCallStatus", "no-answer")
                ]
            )
            .await
            .0,
            400
        );
        assert_eq!(
            fake.post(
                &missed,
                &[
                    ("CallSid", "CAy"),
                    ("From", "sip:anna@pbx.example"),
                    ("DialCallStatus", "no-answer")
                ]
            )
            .await
            .0,
            400
        );
        let r = reqwest::Client::new()
            .post(&missed)
            .header("X-Twilio-Signature", "bm9wZQ==")
            .form(&[("From", "+34612000055"), ("DialCallStatus", "no-answer")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // A malformed number, a 10 kB note, an unknown source, a reminder campaign: 4xx with the field.
        let (status, body) =
            post_callback(&running.url, json!({"phone": "12", "source": "web_form"})).await;
        assert_eq!((status, body["field"].as_str()), (422, Some("phone")));
        let (status, body) = post_callback(
            &running.url,
            json!({"phone": "+34612000056", "note": "x".repeat(10_240)}),
        )
        .await;
        assert_eq!((status, body["field"].as_str()), (422, Some("note")));
        let (status, body) = post_callback(
            &running.url,
            json!({"phone": "+34612000056", "source": "fax"}),
        )
        .await;
        assert_eq!((status, body["field"].as_str()), (422, Some("source")));
        let (status, body) = post_callback(
            &running.url,
            json!({"phone": "+34612000056", "campaign": "nope"}),
        )
        .await;
        assert_eq!((status, body["field"].as_str()), (422, Some("campaign")));
        let (status, _) = post_callback(
            &running.url,
            json!({"phone": "+34612000056", "colour": "red"}),
        )
        .await;
        assert_eq!(status, 400);
        running.stop().await;
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM outreach").await,
            before,
            "nothing created"
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM followups").await,
            followups
        );
    }
);

both_backends!(
    a_callback_waits_for_the_window_and_its_backlog_is_spread,
    |env: TestEnv| async move {
        use_campaign(
            &env,
            callback_campaign("Europe/Madrid".parse().unwrap(), "agent_first"),
        );
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        let app = running.app.clone();
        running.stop().await;
        let catalog = app.campaigns();
        let campaign = catalog.get("test").unwrap();
        let ask = |phone: &str| CallbackRequest {
            phone: phone.into(),
            name: None,
            source: Source::MissedCall,
            note: None,
            recording_url: None,
            same_call: false,
        };
        // 20:59 in Madrid (summer, UTC+2): placed at once.
        let at = utc("2027-06-09T18:59:00Z");
        let a = app
            .request_callback(campaign, &ask("+34612000061"), at)
            .await
            .unwrap();
        assert_eq!(a.first_attempt_at, Some(at));
        assert!(a.due_now.is_some());
        // 21:01: the next morning's opening, 08:00 local.
        let b = app
            .request_callback(campaign, &ask("+34612000062"), utc("2027-06-09T19:01:00Z"))
            .await
            .unwrap();
        assert_eq!(b.first_attempt_at, Some(utc("2027-06-10T06:00:00Z")));
        assert!(b.due_now.is_none());
        // The next one in the night's backlog waits one pace interval (50/s) behind it.
        let c = app
            .request_callback(campaign, &ask("+34612000063"), utc("2027-06-09T23:30:00Z"))
            .await
            .unwrap();
        assert_eq!(c.first_attempt_at, Some(utc("2027-06-10T06:00:00.020Z")));
        // The night clocks go forward (2027-03-28, 02:00 → 03:00): 01:30 local asks; 08:00 CEST answers.
        let d = app
            .request_callback(campaign, &ask("+34612000064"), utc("2027-03-28T00:30:00Z"))
            .await
            .unwrap();
        assert_eq!(d.first_attempt_at, Some(utc("2027-03-28T06:00:00Z")));
        // The night clocks go back (2027-10-31): 02:30 happens twice; the opening is 08:00 CET.
        let e = app
            .request_callback(campaign, &ask("+34612000065"), utc("2027-10-31T01:30:00Z"))
            .await
            .unwrap();
        assert_eq!(e.first_attempt_at, Some(utc("2027-10-31T07:00:00Z")));
        let deadline = env
            .scalar(&format!(
                "SELECT deadline - opens_at FROM outreach WHERE id = '{}'",
                e.id
            ))
            .await;
        assert_eq!(
            deadline,
            TimeDelta::days(3).num_milliseconds(),
            "expire_after"
        );
    }
);

both_backends!(
    callbacks_in_flight_never_exceed_the_staff_free_for_them,
    |env: TestEnv| async move {
        let toml =
            callback_campaign(daytime_zone(), "agent_first").replace("agents = 4", "agents = 1");
        use_campaign(&env, toml);
        let fake = FakeTwilio::start("test-auth-token").await;
        // Staff pick up and the call stays live: no status callback ever comes.
        fake.script(CLINIC, Script::Silent);
        let running = start(&env, &fake).await;
        let (_, a) = post_callback(&running.url, json!({"phone": "+34612000071"})).await;
        let (_, b) = post_callback(&running.url, json!({"phone": "+34612000072"})).await;
        assert_eq!(
            (a["status"].as_str(), b["status"].as_str()),
            (Some("scheduled"), Some("scheduled"))
        );
        let created = env.scalar("SELECT MAX(due_at) FROM attempts").await;
        // One is placed; the other waits for a free member of staff, then goes back to be
        // tried again later.
        wait_for(
            "one callback to be put back",
            Duration::from_secs(40),
            || async {
                env.scalar(&format!(
                    "SELECT COUNT(*) FROM attempts WHERE status = 'planned' AND due_at > {created}"
                ))
                .await
                    == 1
            },
        )
        .await;
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'live'")
                .await,
            1
        );
        running.stop().await;
        assert_eq!(
            fake.log().requests.len(),
            1,
            "one callback in flight at a time"
        );
    }
);

both_backends!(
    a_callback_past_its_expiry_ends_with_a_follow_up_for_staff,
    |env: TestEnv| async move {
        use_campaign(&env, callback_campaign(daytime_zone(), "agent_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        let app = running.app.clone();
        running.stop().await;
        let catalog = app.campaigns();
        let campaign = catalog.get("test").unwrap();
        let req = CallbackRequest {
            phone: "+34612000081".into(),
            name: None,
            source: Source::Voicemail,
            note: None,
            recording_url: None,
            same_call: false,
        };
        // Asked four days ago and never dialled (the server was down): it expired after 3 days.
        let asked = Utc::now() - TimeDelta::days(4);
        let accepted = app.request_callback(campaign, &req, asked).await.unwrap();
        let attempt = env
            .rows(&format!(
                "SELECT id FROM attempts WHERE outreach_id = '{}'",
                accepted.id
            ))
            .await
            .remove(0)
            .remove(0)
            .unwrap();
        let dialed = app.dial(&attempt).await.unwrap();
        assert_eq!(
            dialed,
            ringback::dial::Dialed::Ended(ringback::outreach::Outcome::Expired)
        );
        assert_eq!(
            env.outreach_state("id", &accepted.id).await,
            finished("expired")
        );
        assert_eq!(
            env.scalar(&format!("SELECT COUNT(*) FROM followups WHERE outreach_id = '{}' AND reason = 'callback_not_connected'", accepted.id)).await,
            1
        );
        assert!(fake.log().requests.is_empty());
    }
);

both_backends!(
    a_callback_leaves_one_voicemail_and_staff_can_say_they_only_reached_one,
    |env: TestEnv| async move {
        // Patient first: the machine gets the message once; the next attempt to a machine hangs up.
        use_campaign(&env, callback_campaign(daytime_zone(), "patient_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        fake.script("+34612000091", Script::Machine);
        let running = start(&env, &fake).await;
        let (_, body) = post_callback(&running.url, json!({"phone": "+34612000091"})).await;
        let id = body["id"].as_str().unwrap().to_string();
        wait_for("the retry to be planned", Duration::from_secs(20), || async {
            env.scalar(&format!("SELECT COUNT(*) FROM attempts WHERE outreach_id = '{id}' AND seq = 2 AND status = 'planned'")).await == 1
        })
        .await;
        let first = &fake
            .log()
            .webhooks
            .iter()
            .find(|w| w.0 == "twilio/voice/answer")
            .unwrap()
            .2
            .clone();
        assert!(
            first.contains("returning your call. Please call us on"),
            "{first}"
        );
        let second = env
            .rows(&format!(
                "SELECT id FROM attempts WHERE outreach_id = '{id}' AND seq = 2"
            ))
            .await
            .remove(0)
            .remove(0)
            .unwrap();
        let twiml = running
            .app
            .on_answer(&second, Some("machine_end_beep"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            !twiml.contains("<Say"),
            "a second message is never left: {twiml}"
        );
        running.stop().await;
        assert_eq!(
            env.outreach_state("id", &id).await[0].as_deref(),
            Some("active")
        );
    }
);

both_backends!(
    staff_who_only_reached_voicemail_press_2_and_the_callback_goes_on,
    |env: TestEnv| async move {
        use_campaign(&env, callback_campaign(daytime_zone(), "agent_first"));
        let fake = FakeTwilio::start("test-auth-token").await;
        // Staff answer, the patient's line picks up (a machine), and staff press 2 afterwards.
        fake.script(CLINIC, Script::Human(Some("2")));
        fake.script("+34612000092", Script::Machine);
        let running = start(&env, &fake).await;
        let (_, body) = post_callback(&running.url, json!({"phone": "+34612000092"})).await;
        let id = body["id"].as_str().unwrap().to_string();
        wait_for("the retry to be planned", Duration::from_secs(20), || async {
            env.scalar(&format!("SELECT COUNT(*) FROM attempts WHERE outreach_id = '{id}' AND seq = 2 AND status = 'planned'")).await == 1
        })
        .await;
        running.stop().await;
        assert_eq!(
            env.outreach_state("id", &id).await[0].as_deref(),
            Some("active"),
            "not connected"
        );
        assert_eq!(
            env.scalar(&format!("SELECT COUNT(*) FROM attempts WHERE outreach_id = '{id}' AND seq = 1 AND bridge_status = 'voicemail'")).await,
            1
        );
        let agent = fake
            .log()
            .webhooks
            .iter()
            .any(|w| w.0 == "twilio/voice/agent" && w.2.contains("try again later"));
        assert!(agent, "{:?}", fake.log().webhooks);
    }
);
