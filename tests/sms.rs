//! SMS end to end on SQLite and PostgreSQL: the fallback after unanswered calls and after a
//! voicemail, delivery reports, replies in each language, STOP and START, provider errors that
//! are final for a number and channel, and the opt-out ledger's list import and API.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use chrono_tz::Tz;
use common::app::{daytime_zone, night_zone, start, use_test_campaign, wait_for};
use common::fake_twilio::{FakeTwilio, Script};
use common::*;
use serde_json::Value;

/// A reminder campaign open every day in `zone` with an `[sms]` fallback and messages in five
/// languages.
fn sms_campaign(zone: Tz, sms: &str) -> String {
    format!(
        r#"name = "Test reminders"
clinic = "CAP Test"
kind = "reminder"
timezone = "{zone}"
country = "ES"
caller_id = "+34930000000"
clinic_phone = "+34930000001"
default_language = "en"
[window]
mon-sun = "08:00-21:00"
[reminder]
start = "48h"
stop = "10m"
[retry]
max_calls = 3
gaps = ["1h"]
max_calls_per_day = 1
max_calls_per_week = 3
[pacing]
calls_per_second = 50
burst = 1
max_concurrent_calls = 20
[sms]
{sms}
[messages.en]
voice = "Hello {{first_name}}, {{clinic}} reminds you of your visit on {{date}} at {{time}}. Press 1 to confirm."
voicemail = "Hello, {{clinic}} calling about a visit. Call us on {{clinic_phone}}."
sms = "{{clinic}}: visit on {{date}} at {{time}}. Reply 1 to confirm, 2 to cancel, 3 to change it. STOP to opt out."
[messages.ca]
voice = "Hola {{first_name}}, us recordem la visita del {{date}} a les {{time}}."
voicemail = "Hola, us truquem de {{clinic}}. Truqueu al {{clinic_phone}}."
sms = "{{clinic}}: visita el {{date}} a les {{time}}. Responeu 1 per confirmar, 2 per anul·lar, 3 per canviar-la."
[messages.es]
voice = "Hola {{first_name}}, le recordamos la visita del {{date}} a las {{time}}."
voicemail = "Hola, le llamamos de {{clinic}}. Llame al {{clinic_phone}}."
sms = "{{clinic}}: visita el {{date}} a las {{time}}. Responda 1 para confirmar, 2 para anular, 3 para cambiarla."
[messages.ru]
voice = "Здравствуйте, {{first_name}}, напоминаем о визите {{date}} в {{time}}."
voicemail = "Здравствуйте, это {{clinic}}. Позвоните {{clinic_phone}}."
sms = "{{clinic}}: визит {{date}} в {{time}}. 1 — да, 2 — отмена."
[messages.zh]
voice = "您好{{first_name}}，提醒您{{date}}{{time}}的预约。"
voicemail = "您好，这里是{{clinic}}。请致电{{clinic_phone}}。"
sms = "{{clinic}}：预约{{date}}{{time}}。回复1确认，2取消。"
"#
    )
}

/// An appointment list: (phone, first name, language) per patient, visits 30 h ahead.
fn list(patients: &[(&str, &str, &str)]) -> String {
    let when = (Utc::now() + TimeDelta::hours(30)).to_rfc3339();
    let mut csv =
        String::from("appointment_id,patient_id,first_name,phone,starts_at,language,provider\n");
    for (i, (phone, name, lang)) in patients.iter().enumerate() {
        csv.push_str(&format!(
            "A{i},P{i},{name},{phone},{when},{lang},Dr. Oncology\n"
        ));
    }
    csv
}

async fn import(app: &ringback::app::App, csv: &str) {
    let summary = common::app::import_csv(app, csv).await;
    assert!(summary.rejected.is_empty(), "{summary:?}");
}

/// Move every done attempt a day and a half back: the daily cap then lets the next one go now.
async fn yesterday(env: &TestEnv) {
    let shift = TimeDelta::hours(36).num_milliseconds();
    env.execute(&format!(
        "UPDATE attempts SET placed_at = placed_at - {shift}, due_at = due_at - {shift} WHERE status = 'done'"
    ))
    .await;
    env.execute(&format!(
        "UPDATE attempts SET due_at = {} WHERE status = 'planned'",
        Utc::now().timestamp_millis()
    ))
    .await;
}

both_backends!(
    sms_first_is_sent_delivered_and_counted,
    |env: TestEnv| async move {
        use_test_campaign(&env, sms_campaign(daytime_zone(), "after_calls = 0"), false);
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        import(
            &running.app,
            &list(&[("+34612000101", "Maximilianaaaaaaa", "ca")]),
        )
        .await;
        wait_for("the SMS to be delivered", Duration::from_secs(60), || async {
            env.scalar("SELECT COUNT(*) FROM attempts WHERE channel = 'sms' AND call_status = 'delivered'").await == 1
        })
        .await;
        let url = running.url.clone();
        running.stop().await;
        let log = fake.log();
        assert!(log.requests.is_empty(), "no call today: one contact a day");
        let message = &log.messages[0];
        assert_eq!(message["To"], "+34612000101");
        assert_eq!(message["From"], "+34930000000");
        assert!(message["StatusCallback"].contains("/webhooks/twilio/sms/status?attempt="));
        let body = &message["Body"];
        assert!(body.starts_with("CAP Test: visita el "), "{body}");
        assert!(body.contains("anul.lar"), "GSM-7 twin of ·: {body}");
        assert!(
            !body.contains("Oncology"),
            "no PHI beyond name, clinic, date, time, phone"
        );
        let (encoding, used) = ringback::campaign::sms::measure(body);
        assert!(used <= encoding.limit(), "one segment: {used} {encoding:?}");
        // The next step, a call, waits for tomorrow (one contact a day, every channel).
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM attempts WHERE channel = 'voice' AND status = 'planned'"
            )
            .await,
            1
        );
        let stats: Value = reqwest::Client::new()
            .get(format!("{url}/v1/stats?campaign=test"))
            .bearer_auth("api-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["sms"]["sent"], 1, "{stats}");
        assert_eq!(stats["sms"]["delivered"], 1, "{stats}");
    }
);

both_backends!(
    the_sms_follows_unanswered_calls_and_a_voicemail,
    |env: TestEnv| async move {
        use_test_campaign(
            &env,
            sms_campaign(daytime_zone(), "after_calls = 1\non_voicemail = true"),
            false,
        );
        let fake = FakeTwilio::start("test-auth-token").await;
        fake.script("+34612000111", Script::NoAnswer);
        fake.script("+34612000112", Script::Machine);
        let running = start(&env, &fake).await;
        import(
            &running.app,
            &list(&[
                ("+34612000111", "Anna", "en"),
                ("+34612000112", "Joan", "es"),
            ]),
        )
        .await;
        let started = std::time::Instant::now();
        while env
            .scalar("SELECT COUNT(*) FROM attempts WHERE channel = 'voice' AND status = 'done'")
            .await
            < 2
        {
            if started.elapsed() > Duration::from_secs(60) {
                let rows = env.rows("SELECT seq, channel, status, CAST(due_at AS TEXT), task_id, call_status, error FROM attempts").await;
                panic!(
                    "calls did not end: {rows:?} now={} fake={:?} webhooks={:?}",
                    Utc::now().timestamp_millis(),
                    fake.log().requests.len(),
                    fake.log()
                        .webhooks
                        .iter()
                        .map(|w| (w.0.clone(), w.1))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Each has an SMS planned next, for tomorrow (one contact a day).
        wait_for("the SMS to be planned", Duration::from_secs(10), || async {
            env.scalar("SELECT COUNT(*) FROM attempts WHERE channel = 'sms' AND status = 'planned'")
                .await
                == 2
        })
        .await;
        assert_eq!(
            env.outreach_state("phone", "+34612000112").await[0].as_deref(),
            Some("active")
        );
        // A day and a half later.
        yesterday(&env).await;
        wait_for("both SMS to go out", Duration::from_secs(60), || async {
            fake.log().messages.len() == 2
        })
        .await;
        wait_for(
            "the voicemail outreach to end",
            Duration::from_secs(10),
            || async {
                env.outreach_state("phone", "+34612000112").await[0].as_deref() == Some("finished")
            },
        )
        .await;
        running.stop().await;
        assert_eq!(
            env.outreach_state("phone", "+34612000112").await,
            finished("voicemail_left")
        );
        assert_eq!(
            env.outreach_state("phone", "+34612000111").await[0].as_deref(),
            Some("active"),
            "calls go on after the SMS"
        );
        let bodies: Vec<String> = fake
            .log()
            .messages
            .iter()
            .map(|m| m["Body"].clone())
            .collect();
        assert!(
            bodies
                .iter()
                .any(|b| b.contains("Responda 1 para confirmar")),
            "{bodies:?}"
        );
    }
);

both_backends!(
    replies_in_each_language_decide_the_outreach,
    |env: TestEnv| async move {
        use_test_campaign(&env, sms_campaign(night_zone(), "after_calls = 1"), true);
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            // phone, language, reply, outcome, a word of the answer
            (
                "+34612000121",
                "ca",
                "Sí, gràcies",
                "confirmed",
                "confirmada",
            ),
            ("+34612000122", "es", "2", "cancel_requested", "anular"),
            ("+34612000123", "en", "R", "reschedule_requested", "change"),
            ("+34612000124", "ru", "да", "confirmed", "подтверждён"),
            ("+34612000125", "zh", "是，谢谢", "confirmed", "确认"),
            ("+34612000126", "ru", "нет", "cancel_requested", "отменить"),
            ("+34612000127", "zh", "改期", "reschedule_requested", "改期"),
            (
                "+34612000128",
                "en",
                "Stop. Thank you",
                "opted_out",
                "no more",
            ),
            ("+34612000129", "es", "¿Puedo ir a las 5?", "", "personal"),
        ];
        let patients: Vec<(&str, &str, &str)> = cases.iter().map(|c| (c.0, "Pat", c.1)).collect();
        import(&running.app, &list(&patients)).await;
        let inbound = format!("{}/webhooks/twilio/sms/inbound", running.url);
        for (i, (phone, _, reply, _, word)) in cases.iter().enumerate() {
            let sid = format!("SMin{i}");
            let (code, twiml) = fake
                .post(
                    &inbound,
                    &[
                        ("MessageSid", &sid),
                        ("From", phone),
                        ("To", "+34930000000"),
                        ("Body", reply),
                    ],
                )
                .await;
            assert_eq!(code, 200, "{reply}: {twiml}");
            assert!(
                twiml.contains("<Message>") && twiml.contains(word),
                "{reply}: {twiml}"
            );
        }
        running.stop().await;
        for (phone, _, reply, expected, _) in cases {
            let got = env.outreach_state("phone", phone).await;
            if expected.is_empty() {
                assert_eq!(got[0].as_deref(), Some("active"), "{reply}");
                assert_eq!(
                    env.scalar(&format!("SELECT COUNT(*) FROM followups WHERE phone = '{phone}' AND reason = 'patient_message' AND detail = '¿Puedo ir a las 5?'")).await,
                    1
                );
            } else {
                assert_eq!(got, finished(expected), "{reply}");
            }
        }
        // Decisions withdraw what was still planned; cancel and reschedule reach staff.
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            1
        );
        assert_eq!(env.scalar("SELECT COUNT(*) FROM followups WHERE reason IN ('cancel_requested', 'reschedule_requested')").await, 4);
        let stats = running_stats(&env).await;
        assert_eq!(stats.sms.replies, 9);
    }
);

async fn running_stats(env: &TestEnv) -> ringback::report::Stats {
    let facts = env.db().await.kpi_facts("test").await.unwrap();
    ringback::report::stats("test", &facts)
}

both_backends!(
    stop_withdraws_every_pending_attempt_and_start_undoes_it,
    |env: TestEnv| async move {
        use_test_campaign(&env, sms_campaign(night_zone(), "after_calls = 1"), true);
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        import(&running.app, &list(&[("+34612000131", "Anna", "en")])).await;
        let attempt = env
            .rows("SELECT id FROM attempts WHERE status = 'planned'")
            .await
            .remove(0)
            .remove(0)
            .unwrap();
        let inbound = format!("{}/webhooks/twilio/sms/inbound", running.url);
        let (code, twiml) = fake
            .post(
                &inbound,
                &[
                    ("MessageSid", "SMs1"),
                    ("From", "+34612000131"),
                    ("Body", "STOP"),
                ],
            )
            .await;
        assert_eq!(code, 200);
        assert!(twiml.contains("Reply START"), "{twiml}");
        assert_eq!(
            env.outreach_state("phone", "+34612000131").await,
            finished("opted_out")
        );
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM attempts WHERE id = '{attempt}' AND status = 'withdrawn'"
            ))
            .await,
            1
        );
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM optouts WHERE phone = '+34612000131' AND source = 'sms'"
            )
            .await,
            1
        );
        // Its job waking up now finds nothing to place.
        assert_eq!(
            running.app.dial(&attempt).await.unwrap(),
            ringback::dial::Dialed::Skipped
        );
        // START takes the number off the ledger.
        let (_, twiml) = fake
            .post(
                &inbound,
                &[
                    ("MessageSid", "SMs2"),
                    ("From", "+34612000131"),
                    ("Body", "start"),
                ],
            )
            .await;
        assert!(twiml.contains("reminders again"), "{twiml}");
        assert_eq!(env.scalar("SELECT COUNT(*) FROM optouts").await, 0);
        // Kept as the patient's own doing.
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM optout_removals WHERE phone = '+34612000131' AND source = 'sms' AND removed_by = 'patient' AND note = 'START'").await,
            1
        );
        // A clinic's do-not-call entry is not the patient's to undo.
        running
            .app
            .db
            .opt_out("+34612000132", "list", Utc::now())
            .await
            .unwrap();
        let (_, twiml) = fake
            .post(
                &inbound,
                &[
                    ("MessageSid", "SMs3"),
                    ("From", "+34612000132"),
                    ("Body", "START"),
                ],
            )
            .await;
        assert!(twiml.contains("call us on"), "{twiml}");
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM optouts WHERE phone = '+34612000132'")
                .await,
            1
        );
        running.stop().await;
        assert!(fake.log().requests.is_empty() && fake.log().messages.is_empty());
    }
);

both_backends!(
    bad_inbound_sms_get_clear_answers_and_lose_nothing,
    |env: TestEnv| async move {
        use_test_campaign(&env, sms_campaign(night_zone(), "after_calls = 1"), false);
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        let inbound = format!("{}/webhooks/twilio/sms/inbound", running.url);
        assert_eq!(
            fake.post(&inbound, &[("Body", "1")]).await.0,
            400,
            "no From"
        );
        let r = reqwest::Client::new()
            .post(&inbound)
            .header("X-Twilio-Signature", "bm9wZQ==")
            .form(&[("From", "+34612000141"), ("Body", "STOP")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM optouts").await,
            0,
            "a forged STOP changes nothing"
        );
        let long = "é".repeat(1600);
        let too_long = "a".repeat(1601);
        for (sid, body) in [("SMb1", ""), ("SMb2", long.as_str()), ("SMb3", "🙂🙂")] {
            let (code, twiml) = fake
                .post(
                    &inbound,
                    &[
                        ("MessageSid", sid),
                        ("From", "+34612000142"),
                        ("Body", body),
                    ],
                )
                .await;
            assert_eq!(code, 200, "{twiml}");
        }
        assert_eq!(
            fake.post(
                &inbound,
                &[
                    ("MessageSid", "SMb4"),
                    ("From", "+34612000142"),
                    ("Body", &too_long)
                ]
            )
            .await
            .0,
            400
        );
        // A repeated delivery is applied once.
        fake.post(
            &inbound,
            &[
                ("MessageSid", "SMb3"),
                ("From", "+34612000142"),
                ("Body", "🙂🙂"),
            ],
        )
        .await;
        running.stop().await;
        let details: Vec<String> = env
            .rows("SELECT detail FROM followups WHERE reason = 'patient_message' ORDER BY created_at, id")
            .await
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        assert_eq!(
            details,
            vec!["(an empty message)".to_string(), long, "🙂🙂".to_string()]
        );
    }
);

both_backends!(
    provider_errors_are_final_for_the_number_and_the_channel,
    |env: TestEnv| async move {
        use_test_campaign(&env, sms_campaign(daytime_zone(), "after_calls = 0"), false);
        let fake = FakeTwilio::start("test-auth-token").await;
        // A landline: the SMS is refused (21614), and the call goes at once instead.
        fake.script("+34930000151", Script::Landline);
        // A mobile that unsubscribed with the carrier: the message fails with 21610.
        fake.script("+34612000152", Script::SmsFails("21610"));
        let running = start(&env, &fake).await;
        import(
            &running.app,
            &list(&[
                ("+34930000151", "Anna", "en"),
                ("+34612000152", "Joan", "en"),
            ]),
        )
        .await;
        wait_for(
            "the landline to be called",
            Duration::from_secs(60),
            || async {
                fake.log()
                    .requests
                    .iter()
                    .any(|r| r["To"] == "+34930000151")
            },
        )
        .await;
        wait_for("the unsubscribed number on the ledger", Duration::from_secs(60), || async {
            env.scalar("SELECT COUNT(*) FROM optouts WHERE phone = '+34612000152' AND source = 'provider'").await == 1
        })
        .await;
        running.stop().await;
        // One call, rung and unanswered; the next waits for the retry gap (an hour).
        let calls = fake
            .log()
            .requests
            .iter()
            .filter(|r| r["To"] == "+34930000151")
            .count();
        assert_eq!(calls, 1);
        assert_eq!(env.scalar("SELECT COUNT(*) FROM channel_blocks WHERE phone = '+34930000151' AND channel = 'sms' AND code = '21614'").await, 1);
        assert_eq!(
            env.outreach_state("phone", "+34612000152").await,
            finished("opted_out")
        );
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM attempts WHERE phone = '+34612000152' AND status = 'planned'"
            )
            .await,
            0
        );
    }
);

both_backends!(
    a_do_not_call_list_and_the_ledger_api,
    |env: TestEnv| async move {
        use_test_campaign(&env, sms_campaign(night_zone(), "after_calls = 1"), false);
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        import(
            &running.app,
            &list(&[
                ("+34612000161", "Anna", "en"),
                ("+34612000162", "Joan", "en"),
            ]),
        )
        .await;
        let file = env.write(
            "dnc.csv",
            "name,phone\nAnna,612 000 161\nBad,12345\nNobody,+34 699 000 000\nAgain,+34612000161\n",
        );
        // The worker stops; the HTTP side keeps answering below.
        let url = running.url.clone();
        running.stop().await;
        let run = env.ringback(&["optout", "import", file.to_str().unwrap()]);
        run.assert_code(1);
        let summary = run.json();
        assert_eq!(summary["added"], 2, "{summary}");
        assert_eq!(summary["withdrawn_attempts"], 1, "{summary}");
        assert_eq!(summary["rejected"][0]["line"], 3, "{summary}");
        assert!(
            run.stderr().contains("dnc.csv:3: phone: "),
            "{}",
            run.stderr()
        );
        assert_eq!(
            env.outreach_state("phone", "+34612000161").await,
            finished("opted_out")
        );

        let http = reqwest::Client::new();
        let post = |body: Value| {
            let http = http.clone();
            let url = format!("{url}/v1/optouts");
            async move {
                let r = http
                    .post(url)
                    .bearer_auth("api-token")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (code, body) = post(serde_json::json!({"phone": "612000162", "source": "staff"})).await;
        assert_eq!(
            (code, body["withdrawn_attempts"].as_u64()),
            (201, Some(1)),
            "{body}"
        );
        assert_eq!(
            post(serde_json::json!({"phone": "+34612000162"})).await.0,
            200
        );
        let (code, body) = post(serde_json::json!({"phone": "nope"})).await;
        assert_eq!((code, body["field"].as_str()), (422, Some("phone")));
        let list: Value = http
            .get(format!("{url}/v1/optouts"))
            .bearer_auth("api-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let phones: Vec<&str> = list["optouts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["phone"].as_str().unwrap())
            .collect();
        assert_eq!(phones.len(), 3, "{list}");
        assert!(phones.contains(&"+34612000162"));
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            0
        );

        // A list piped in: one number a line, no header.
        let run = env.ringback_with_stdin(
            &["optout", "import", "-", "--source", "staff"],
            Some(b"+34 612 000 163\n"),
        );
        run.assert_code(0);
        assert_eq!(run.json()["added"], 1, "{}", run.stdout());
        let ledger = env.ringback(&["optout", "list"]);
        assert!(
            ledger.stdout().contains("+34612000163,staff"),
            "{}",
            ledger.stdout()
        );
    }
);

both_backends!(
    staff_take_a_number_off_the_ledger_at_the_patients_request,
    |env: TestEnv| async move {
        use_test_campaign(&env, sms_campaign(daytime_zone(), "after_calls = 1"), false);
        let fake = FakeTwilio::start("test-auth-token").await;
        let running = start(&env, &fake).await;
        let db = running.app.db.clone();
        db.opt_out("+34612000171", "keypad", Utc::now())
            .await
            .unwrap();
        db.opt_out("+34612000172", "sms", Utc::now()).await.unwrap();
        db.opt_out("+34612000173", "list", Utc::now())
            .await
            .unwrap();

        // The API: by the number as the patient spells it, with the name of whoever does it.
        let http = reqwest::Client::new();
        let remove = |phone: &str, body: &str, token: &'static str| {
            http.post(format!(
                "{}/v1/optouts/{}/remove",
                running.url,
                phone.replace(' ', "%20")
            ))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
        };
        let body = r#"{"by":"Marta (front desk)","note":"pressed 9 by mistake"}"#;
        let r = remove("612 000 171", body, "wrong").await.unwrap();
        assert_eq!(r.status(), 401);
        let r = remove("612 000 171", body, "api-token").await.unwrap();
        assert_eq!(r.status(), 200);
        let removal: Value = r.json().await.unwrap();
        assert_eq!(removal["phone"], "+34612000171", "{removal}");
        assert_eq!(removal["source"], "keypad", "{removal}");
        assert_eq!(removal["removed_by"], "Marta (front desk)", "{removal}");
        assert_eq!(removal["note"], "pressed 9 by mistake", "{removal}");
        assert_eq!(db.optout_of("+34612000171").await.unwrap(), None);
        // Its next visit is called again.
        let visit = format!(
            "appointment_id,patient_id,first_name,phone,starts_at\nB1,P-B1,Anna,+34612000171,{}\n",
            (Utc::now() + TimeDelta::hours(30)).to_rfc3339()
        );
        import(&running.app, &visit).await;
        wait_for("the visit's call", Duration::from_secs(20), || async {
            fake.log()
                .requests
                .iter()
                .any(|call| call["To"] == "+34612000171")
        })
        .await;
        for (phone, body, status, field) in [
            ("+34612000171", r#"{"by":"Joan"}"#, 404, Some("phone")),
            ("12", r#"{"by":"Joan"}"#, 422, Some("phone")),
            ("+34612000172", r#"{"by":" "}"#, 422, Some("by")),
            ("+34612000172", r#"{"note":"no name"}"#, 400, Some("by")),
            (
                "+34612000172",
                r#"{"by":"Joan","why":"?"}"#,
                400,
                Some("by"),
            ),
            ("+34612000172", "by=Joan", 400, Some("by")),
        ] {
            let r = remove(phone, body, "api-token").await.unwrap();
            assert_eq!(r.status(), status, "{phone} {body}");
            let error: Value = r.json().await.unwrap();
            assert_eq!(error["field"].as_str(), field, "{phone} {body}: {error}");
        }
        assert!(db.optout_of("+34612000172").await.unwrap().is_some());

        // The dashboard: the number's page offers the form; it takes the number off and comes back.
        let lookup = http
            .get(format!("{}/lookup?phone=612000172", running.url))
            .basic_auth("staff", Some("api-token"))
            .send()
            .await
            .unwrap();
        assert_eq!(lookup.headers()["cache-control"], "no-store");
        let lookup = lookup.text().await.unwrap();
        let token = form_token(&lookup, "/optouts/+34612000172/remove");
        let no_redirect = no_redirect();
        let post = |token: &str, by: &str| {
            no_redirect
                .post(format!("{}/optouts/+34612000172/remove", running.url))
                .basic_auth("staff", Some("api-token"))
                .form(&[("token", token), ("by", by), ("note", "")])
                .send()
        };
        assert_eq!(post("forged", "Pere").await.unwrap().status(), 403);
        assert_eq!(post(&token, " ").await.unwrap().status(), 422);
        assert!(db.optout_of("+34612000172").await.unwrap().is_some());
        let r = post(&token, "Pere").await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/lookup?phone=%2B34612000172");
        assert_eq!(db.optout_of("+34612000172").await.unwrap(), None);
        // The same form again (a second click): back to the page, nothing else changes.
        assert_eq!(post(&token, "Pere").await.unwrap().status(), 303);

        // The CLI (the worker stopped first: the command runs while this test waits for it),
        // for a clinic's own list entry too.
        let url = running.url.clone();
        running.stop().await;
        let run = env.ringback(&["optout", "remove", "612 000 173", "--by", "Joan, IT"]);
        run.assert_code(0);
        let removal = run.json();
        assert_eq!(
            (removal["source"].as_str(), removal["removed_by"].as_str()),
            (Some("list"), Some("Joan, IT")),
            "{removal}"
        );
        assert!(
            run.stderr().contains("off the opt-out ledger"),
            "{}",
            run.stderr()
        );
        db.opt_out("+34612000174", "list", Utc::now())
            .await
            .unwrap();
        // Not on the ledger (any more), a bad number, no name: exit 1, saying which.
        for (args, says) in [
            (
                ["+34612000173", "--by", "Joan"],
                "not on the opt-out ledger",
            ),
            (["12", "--by", "Joan"], "phone: "),
            (["+34612000174", "--by", "  "], "--by: "),
        ] {
            let run = env.ringback(&[["optout", "remove"].as_slice(), args.as_slice()].concat());
            run.assert_code(1);
            assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
        }
        assert!(db.optout_of("+34612000174").await.unwrap().is_some());

        // Every removal is kept: who, when, what the number was on the ledger for.
        let r = api_get(&url, "/v1/optouts/removals").await;
        let kept: Vec<(&str, &str, &str)> = r["removals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["phone"].as_str().unwrap(),
                    x["source"].as_str().unwrap(),
                    x["removed_by"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kept,
            vec![
                ("+34612000173", "list", "Joan, IT"),
                ("+34612000172", "sms", "Pere"),
                ("+34612000171", "keypad", "Marta (front desk)"),
            ]
        );
        let csv = env.ringback(&["optout", "removals"]);
        csv.assert_code(0);
        let out = csv.stdout();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "phone,source,opted_out_at,removed_at,removed_by,note"
        );
        assert!(lines[1].ends_with(",\"Joan, IT\","), "{lines:?}");
        assert!(
            lines[3].starts_with("+34612000171,keypad,")
                && lines[3].ends_with(",Marta (front desk),pressed 9 by mistake"),
            "{lines:?}"
        );
    }
);
