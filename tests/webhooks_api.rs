//! Webhooks with bad input, a provider that pushes back, and the `/v1` API, on both backends.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::app::{
    appointments_csv, daytime_zone, import_csv, start, test_campaign, use_test_campaign, wait_for,
};
use common::fake_twilio::{FakeTwilio, Script};
use common::*;
use serde_json::Value;

async fn setup(env: &TestEnv) -> (FakeTwilio, common::app::Running) {
    use_test_campaign(env, test_campaign(daytime_zone(), 50.0), false);
    let fake = FakeTwilio::start("test-auth-token").await;
    let running = start(env, &fake).await;
    (fake, running)
}

async fn import_one(app: &ringback::app::App, phone: &str) {
    let patient = (phone.to_string(), "Anna".to_string(), String::new());
    import_csv(app, &appointments_csv(&[patient])).await;
}

/// Tell the fake how each patient answers, and import them, `A0`/`P0`, `A1`/`P1` … in order,
/// each named Pat.
async fn import_scripted(fake: &FakeTwilio, app: &ringback::app::App, patients: &[(&str, Script)]) {
    for (phone, script) in patients {
        fake.script(phone, script.clone());
    }
    let list: Vec<_> = patients
        .iter()
        .map(|(phone, _)| (phone.to_string(), "Pat".to_string(), String::new()))
        .collect();
    import_csv(app, &appointments_csv(&list)).await;
}

/// Wait (up to `secs`) for one outreach to end confirmed.
async fn one_confirmed(env: &TestEnv, what: &str, secs: u64) {
    wait_for(what, Duration::from_secs(secs), || async {
        env.scalar("SELECT COUNT(*) FROM outreach WHERE outcome = 'confirmed'")
            .await
            == 1
    })
    .await;
}

both_backends!(
    malformed_unsigned_and_replayed_webhooks_get_4xx_never_5xx,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        let http = reqwest::Client::new();
        let status_url = format!(
            "{}/webhooks/twilio/voice/status?attempt=01UNKNOWN",
            running.url
        );
        // No signature, and a wrong one: 403.
        let r = http
            .post(&status_url)
            .form(&[("CallStatus", "completed")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = http
            .post(&status_url)
            .header("X-Twilio-Signature", "bm9wZQ==")
            .form(&[("CallStatus", "completed")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // Signed but missing fields: 400.
        assert_eq!(fake.post(&status_url, &[("CallSid", "CA1")]).await.0, 400);
        assert_eq!(
            fake.post(
                &format!("{}/webhooks/twilio/voice/status", running.url),
                &[("CallStatus", "completed")]
            )
            .await
            .0,
            400
        );
        assert_eq!(
            fake.post(&status_url, &[("CallStatus", "exploded")])
                .await
                .0,
            400
        );
        // Signed, for an attempt that does not exist: acknowledged, changes nothing.
        assert_eq!(
            fake.post(
                &status_url,
                &[("CallStatus", "completed"), ("CallSid", "CA1")]
            )
            .await
            .0,
            204
        );
        let answer = fake
            .post(
                &format!(
                    "{}/webhooks/twilio/voice/answer?attempt=01UNKNOWN",
                    running.url
                ),
                &[("CallSid", "CA1")],
            )
            .await;
        assert_eq!(answer.0, 200);
        assert!(answer.1.contains("<Hangup/>"));
        // Not a form at all.
        let r = http
            .post(&status_url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        running.stop().await;
    }
);

both_backends!(
    a_provider_that_pushes_back_gets_the_same_attempt_again_later,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        fake.failures.lock().unwrap().push((
            429,
            r#"{"code":20429,"message":"Too Many Requests"}"#.into(),
        ));
        fake.script("+34612000001", Script::Human(Some("1")));
        import_one(&running.app, "+34612000001").await;
        wait_for("the refused attempt to go back to planned", Duration::from_secs(45), || async {
        env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned' AND error LIKE '%rate limited%'").await == 1
    })
    .await;
        // Planned again for later, not dialled again at once; the same attempt, nothing new.
        assert_eq!(env.scalar("SELECT COUNT(*) FROM attempts").await, 1);
        assert_eq!(fake.log().requests.len(), 1);
        // Make it due now, as if its backoff had passed (and its wake-up, queued for the end of
        // the backoff, were lost): it is placed once, and the patient confirms. The queued
        // wake-up that still comes later finds it taken.
        env.execute("UPDATE attempts SET due_at = 0, task_id = NULL")
            .await;
        one_confirmed(&env, "the retried call to confirm", 45).await;
        let log = fake.log();
        assert_eq!(log.requests.len(), 2);
        assert_eq!(log.accepted.len(), 1);
        running.stop().await;
    }
);

both_backends!(
    the_api_shows_outreach_followups_and_stats_to_token_holders,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        fake.script("+34612000002", Script::Human(Some("2")));
        import_one(&running.app, "+34612000002").await;
        wait_for("the cancel request", Duration::from_secs(45), || async {
            env.scalar("SELECT COUNT(*) FROM followups").await == 1
        })
        .await;
        let http = reqwest::Client::new();
        let get = |path: &str| {
            http.get(format!("{}{path}", running.url))
                .bearer_auth("api-token")
                .send()
        };
        assert_eq!(
            http.get(format!("{}/v1/stats", running.url))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        assert_eq!(
            http.get(format!("{}/v1/stats", running.url))
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
                .status(),
            401
        );

        let stats: Value = get("/v1/stats?campaign=test")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["outcomes"]["cancel_requested"], 1);
        assert_eq!(stats["calls"]["placed"], 1);
        assert_eq!(stats["calls"]["human"], 1);

        let list: Value = get("/v1/followups?campaign=test")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let followup = &list["followups"][0];
        assert_eq!(followup["reason"], "cancel_requested");
        let outreach_id = followup["outreach_id"].as_str().unwrap().to_string();
        let csv = get("/v1/followups?format=csv").await.unwrap();
        // The worklist names patients: no browser or proxy keeps a copy of the download.
        assert_eq!(csv.headers()["cache-control"], "no-store");
        let csv = csv.text().await.unwrap();
        assert!(csv.starts_with("id,campaign,created_at,reason"));
        assert!(csv.contains("cancel_requested"));

        let view: Value = get(&format!("/v1/outreach/{outreach_id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["outcome"], "cancel_requested");
        assert_eq!(view["attempts"][0]["digits"], "2");
        assert_eq!(view["attempts"][0]["answered_by"], "human");
        assert!(
            view["attempts"][0]["provider_id"]
                .as_str()
                .unwrap()
                .starts_with("CA")
        );
        assert_eq!(get("/v1/outreach/nope").await.unwrap().status(), 404);

        let id = followup["id"].as_str().unwrap();
        let resolve = |body: &'static str| {
            http.post(format!("{}/v1/followups/{id}/resolve", running.url))
                .bearer_auth("api-token")
                .body(body)
                .send()
        };
        assert_eq!(resolve("{}").await.unwrap().status(), 400);
        assert_eq!(
            resolve(r#"{"by":"Marta","note":"cancelled in the EHR"}"#)
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(resolve(r#"{"by":"Marta"}"#).await.unwrap().status(), 409);
        let open: Value = get("/v1/followups").await.unwrap().json().await.unwrap();
        assert_eq!(open["followups"].as_array().unwrap().len(), 0);

        // Import over HTTP answers the summary of SPEC §5.
        let when = (Utc::now() + TimeDelta::hours(40)).to_rfc3339();
        let body = format!(
            "appointment_id,patient_id,first_name,phone,starts_at\nB1,P9,Joan,612000009,{when}\nB2,P8,Laia,12,{when}\n"
        );
        let import = |content_type: &'static str, body: String| {
            http.post(format!("{}/v1/campaigns/test/appointments", running.url))
                .bearer_auth("api-token")
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let summary: Value = import("text/csv", body)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(summary["created"], 1);
        assert_eq!(summary["rejected"][0]["field"], "phone");
        // A dry run answers what the import would do, and writes nothing.
        let appointments = env.scalar("SELECT COUNT(*) FROM appointments").await;
        let dry_run = |flag: &str| {
            http.post(format!(
                "{}/v1/campaigns/test/appointments?dry_run={flag}",
                running.url
            ))
            .bearer_auth("api-token")
            .header("content-type", "text/csv")
            .body(format!(
                "appointment_id,patient_id,first_name,phone,starts_at\nB1,P9,Joan,612000009,{when}\nB4,P6,Rita,612000006,{when}\n"
            ))
            .send()
        };
        let summary: Value = dry_run("true").await.unwrap().json().await.unwrap();
        assert_eq!(
            (summary["created"].as_u64(), summary["unchanged"].as_u64()),
            (Some(1), Some(1)),
            "{summary}"
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM appointments").await,
            appointments
        );
        let refused = dry_run("maybe").await.unwrap();
        assert_eq!(refused.status(), 400);
        let refused: Value = refused.json().await.unwrap();
        assert_eq!(refused["field"], "dry_run", "{refused}");
        // The import log has the HTTP import, and not the dry run.
        let log: Value = get("/v1/imports?campaign=test")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = log["imports"].as_array().unwrap();
        assert_eq!(
            entries.len(),
            2,
            "the test's own import, then the API's: {log}"
        );
        assert_eq!(entries[0]["source"], "api", "{log}");
        assert_eq!(entries[0]["created"], 1, "{log}");
        assert_eq!(entries[0]["rejected"], 1, "{log}");
        assert_eq!(get("/v1/imports?limit=0").await.unwrap().status(), 400);
        // A list of one appointment, `id`, posted as `content_type`: created.
        let imported_one = |content_type: &'static str, body: String, id: &'static str| {
            let posted = import(content_type, body);
            let env = &env;
            async move {
                let summary: Value = posted.await.unwrap().json().await.unwrap();
                assert_eq!(summary["created"], 1, "{content_type}: {summary}");
                let sql = format!("SELECT COUNT(*) FROM appointments WHERE external_id = '{id}'");
                assert_eq!(env.scalar(&sql).await, 1, "{content_type}");
            }
        };
        // An EHR's FHIR API posts its Bundle as it answers it.
        let bundle = format!(
            r#"{{"resourceType": "Bundle", "type": "collection", "entry": [
                {{"resource": {{"resourceType": "Appointment", "id": "F1", "status": "booked",
                  "start": "{when}", "participant": [{{"actor": {{"reference": "urn:uuid:7"}}}}]}}}},
                {{"fullUrl": "urn:uuid:7", "resource": {{"resourceType": "Patient", "id": "P7",
                  "name": [{{"given": ["Pau"]}}], "telecom": [{{"system": "phone", "value": "612000007"}}]}}}}
            ]}}"#
        );
        imported_one("application/fhir+json", bundle, "F1").await;
        // And a Bulk Data export's lines, the patient's first.
        let ndjson = format!(
            "{}\n{}\n",
            r#"{"resourceType": "Patient", "id": "P8", "name": [{"given": ["Aina"]}], "telecom": [{"system": "phone", "value": "612000008"}]}"#,
            format_args!(
                r#"{{"resourceType": "Appointment", "id": "F2", "status": "booked", "start": "{when}", "participant": [{{"actor": {{"reference": "Patient/P8"}}}}]}}"#
            ),
        );
        imported_one("application/fhir+ndjson", ndjson, "F2").await;
        let missing = http
            .post(format!("{}/v1/campaigns/nope/appointments", running.url))
            .bearer_auth("api-token")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let callbacks = format!("{}/v1/campaigns/callbacks/appointments", running.url);
        let refused = http
            .post(callbacks)
            .bearer_auth("api-token")
            .header("content-type", "text/csv")
            .body(format!(
                "appointment_id,patient_id,first_name,phone,starts_at\nB3,P7,Pau,612000007,{when}\n"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 422);
        let refused: Value = refused.json().await.unwrap();
        assert_eq!(refused["field"], "campaign", "{refused}");
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM outreach WHERE campaign = 'callbacks'")
                .await,
            0
        );
        assert_eq!(
            http.get(format!("{}/healthz", running.url))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        running.stop().await;
    }
);

/// A free-text SMS from `phone` on the test campaign's worklist; its follow-up id.
async fn patient_message(db: &ringback::store::Db, phone: &str, text: &str) -> String {
    db.add_followup(
        "test",
        Some(phone),
        ringback::outreach::machine::FollowupReason::PatientMessage,
        text,
        Utc::now(),
    )
    .await
    .unwrap()
}

/// The dashboard as staff see it, logged in with the API token.
/// `GET {url}{path}` with the tests' token is refused with `status`, naming `field`.
async fn assert_refused(url: &str, path: &str, status: u16, field: &str) {
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth("api-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), status, "{path}");
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["field"], field, "{path}: {error}");
}

async fn dashboard(http: &reqwest::Client, url: &str) -> String {
    let r = http
        .get(format!("{url}/"))
        .basic_auth("staff", Some("api-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Patients' names and numbers stay out of every cache.
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.text().await.unwrap()
}

both_backends!(
    the_dashboard_shows_campaigns_and_the_worklist_to_staff_only,
    |env: TestEnv| async move {
        let (_fake, running) = setup(&env).await;
        patient_message(&running.app.db, "+34612000991", "<b>call me</b>").await;
        let http = reqwest::Client::new();
        let r = http.get(format!("{}/", running.url)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let r = http
            .get(format!("{}/", running.url))
            .basic_auth("staff", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let page = dashboard(&http, &running.url).await;
        running.stop().await;
        assert!(page.contains("Test reminders"), "{page}");
        assert!(page.contains("Follow-ups (1)"), "{page}");
        assert!(page.contains("Latest imports"), "{page}");
        assert!(
            page.contains("&lt;b&gt;call me&lt;/b&gt;"),
            "escaped: {page}"
        );
    }
);

both_backends!(
    staff_mark_a_follow_up_done_from_the_dashboard,
    |env: TestEnv| async move {
        let (_fake, running) = setup(&env).await;
        let id = patient_message(&running.app.db, "+34612000992", "please call").await;
        // Redirects are followed by hand: the answer to the form is what is checked.
        let http = no_redirect();
        let page = dashboard(&http, &running.url).await;
        assert!(page.contains("<th>detail</th><th>done</th>"), "{page}");
        let action = format!("/followups/{id}/resolve");
        let token = form_token(&page, &action);
        let url = format!("{}{action}", running.url);
        let post = |fields: Vec<(&'static str, String)>, password: &'static str| {
            http.post(&url)
                .basic_auth("staff", Some(password))
                .form(&fields)
                .send()
        };
        let open = || async {
            env.scalar(&format!(
                "SELECT COUNT(*) FROM followups WHERE id = '{id}' AND status = 'open'"
            ))
            .await
        };
        // Without the login, with a forged or another follow-up's token, or without a name:
        // refused, and the follow-up stays open.
        let r = post(
            vec![("token", token.clone()), ("by", "Marta".into())],
            "wrong",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 401);
        for forged in ["", "AAAA", "x".repeat(27).as_str()] {
            let r = post(
                vec![("token", forged.into()), ("by", "Marta".into())],
                "api-token",
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 403, "{forged:?}");
        }
        let r = post(
            vec![("token", token.clone()), ("by", "  ".into())],
            "api-token",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(open().await, 1);

        let r = post(
            vec![
                ("token", token.clone()),
                ("by", "Marta".into()),
                ("note", "called back, new date".into()),
            ],
            "api-token",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/");
        assert_eq!(
            env.rows(&format!(
                "SELECT status, resolved_by, resolution_note FROM followups WHERE id = '{id}'"
            ))
            .await,
            [[
                Some("resolved".to_string()),
                Some("Marta".to_string()),
                Some("called back, new date".to_string())
            ]]
        );
        // A second click: back to the dashboard, which no longer lists it.
        let r = post(vec![("token", token), ("by", "Marta".into())], "api-token")
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let page = dashboard(&http, &running.url).await;
        running.stop().await;
        assert!(!page.contains(&action), "{page}");
        assert!(page.contains("Follow-ups (0)"), "{page}");
    }
);

both_backends!(
    the_dashboard_refreshes_itself_but_not_under_someone_typing,
    |env: TestEnv| async move {
        let (_fake, running) = setup(&env).await;
        let page = dashboard(&reqwest::Client::new(), &running.url).await;
        running.stop().await;
        assert!(
            !page.contains("http-equiv=\"refresh\""),
            "a meta refresh wipes a half-typed form"
        );
        let script = page
            .split("<script>")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .unwrap_or_else(|| panic!("no script: {page}"));
        // The page's script in Node, with a browser's few parts it uses played by hand: each tick
        // is one 30-second interval.
        let harness = r#"
            let tick, every, reloads = 0;
            const inputs = [{ value: "" }, { value: "" }];
            globalThis.setInterval = (f, ms) => { tick = f; every = ms; };
            globalThis.location = { reload: () => reloads++ };
            globalThis.document = {
                activeElement: null,
                querySelectorAll: (selector) => {
                    if (selector !== "form input[name=by], form input[name=note]") throw new Error(selector);
                    return inputs;
                },
            };
            eval(require("fs").readFileSync(0, "utf8"));
            const seen = [];
            tick(); seen.push(reloads);                     // nobody typing: reloads
            inputs[0].value = "Mar"; tick(); seen.push(reloads); // a name half typed: waits
            inputs[0].value = ""; document.activeElement = inputs[1]; tick(); seen.push(reloads); // in the note: waits
            document.activeElement = null; tick(); seen.push(reloads); // done: reloads again
            console.log(every + " " + seen.join(","));
        "#;
        let mut node = std::process::Command::new("node")
            .arg("-e")
            .arg(harness)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("node (Node.js) runs the dashboard's script in this test");
        {
            use std::io::Write;
            node.stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
        }
        let out = node.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "30000 1,1,1,2");
    }
);

both_backends!(
    a_done_form_from_one_server_is_taken_by_another_behind_the_same_load_balancer,
    |env: TestEnv| async move {
        use tower::ServiceExt;
        use_test_campaign(&env, test_campaign(daytime_zone(), 50.0), false);
        // Two `serve` processes on one database: each its own app, the same API token.
        let unused = "http://127.0.0.1:9";
        let one = common::app::http_state(&env, unused, "t", unused).await;
        let other = common::app::http_state(&env, unused, "t", unused).await;
        assert_ne!(one.app.form_key, other.app.form_key);
        let id = patient_message(&one.app.db, "+34612000993", "please call").await;
        let login = "Basic c3RhZmY6YXBpLXRva2Vu"; // staff:api-token
        let page = ringback::http::router(one)
            .oneshot(
                axum::http::Request::get("/")
                    .header("authorization", login)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let page = axum::body::to_bytes(page.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = String::from_utf8_lossy(&page);
        let token = form_token(&page, &format!("/followups/{id}/resolve"));
        let done = ringback::http::router(other)
            .oneshot(
                axum::http::Request::post(format!("/followups/{id}/resolve"))
                    .header("authorization", login)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(axum::body::Body::from(format!("token={token}&by=Marta")))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(done.status(), 303);
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM followups WHERE id = '{id}' AND status = 'resolved'"
            ))
            .await,
            1
        );
    }
);

/// The HTTP surface on `env`'s database, driven without a listener and with no dialer running.
async fn router_only(env: &TestEnv) -> axum::Router {
    use_test_campaign(env, test_campaign(daytime_zone(), 50.0), false);
    // The provider is never called: nothing dials here.
    let unused = "http://127.0.0.1:9";
    ringback::http::router(common::app::http_state(env, unused, "t", unused).await)
}

async fn post_list(router: &axum::Router, body: Vec<u8>) -> (u16, Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::post("/v1/campaigns/test/appointments")
        .header("authorization", "Bearer api-token")
        .header("content-type", "text/csv")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

both_backends!(
    a_list_of_many_megabytes_imports_over_http_and_one_too_large_gets_413_and_changes_nothing,
    |env: TestEnv| async move {
        let router = router_only(&env).await;
        let when = (Utc::now() + TimeDelta::hours(40)).to_rfc3339();
        let header = "appointment_id,patient_id,first_name,last_name,phone,starts_at,provider\n";
        // 4,000 rows of some 650 bytes: past the 2 MiB a web framework takes by default.
        let long = "x".repeat(200);
        let mut list = String::from(header);
        for i in 0..4000 {
            list.push_str(&format!(
                "L{i},Q{i},{long},{long},6120{i:05},{when},{long}\n"
            ));
        }
        assert!(list.len() > 2 * 1024 * 1024, "{}", list.len());
        let (status, summary) = post_list(&router, list.into_bytes()).await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["created"], 4000, "{summary}");

        // One byte past the limit: the API's error body, and not one of its rows imported.
        let mut list = String::from(header);
        let mut i = 0;
        while list.len() <= ringback::http::IMPORT_MAX_BYTES {
            list.push_str(&format!(
                "Z{i},R{i},Anna,Puig,6130{:05},{when},\n",
                i % 100_000
            ));
            i += 1;
        }
        let (status, error) = post_list(&router, list.into_bytes()).await;
        assert_eq!(status, 413, "{error}");
        assert_eq!(error["field"], "body", "{error}");
        assert!(
            error["error"].as_str().unwrap().contains("ringback import"),
            "{error}"
        );
        let first = format!("{header}Z0,R0,Anna,Puig,613000000,{when},\n");
        let (status, summary) = post_list(&router, first.into_bytes()).await;
        assert_eq!(
            (status, &summary["created"]),
            (200, &Value::from(1)),
            "{summary}"
        );
    }
);

/// `/metrics` parsed as Prometheus reads it: each family's `# HELP` and `# TYPE` first, then all
/// of its samples together; no series twice. Returns each series (`name{labels}`) and its value.
fn parse_metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut series = std::collections::BTreeMap::new();
    let mut typed: Vec<String> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(!helped.contains(&name), "second HELP for {name}");
            helped.push(name);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(!typed.iter().any(|t| t == name), "second TYPE for {name}");
            assert_eq!(helped.last().map(String::as_str), Some(name), "{line}");
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            typed.push(name.to_string());
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap();
        let name = key.split('{').next().unwrap();
        assert_eq!(
            typed.last().map(String::as_str),
            Some(name),
            "{name}'s samples are not together under its TYPE"
        );
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(
            series.insert(key.to_string(), value).is_none(),
            "{key} twice"
        );
    }
    series
}

both_backends!(
    metrics_report_calls_backlog_and_worklist_as_prometheus_reads_them,
    |env: TestEnv| async move {
        let (fake, mut running) = setup(&env).await;
        let patients = [
            ("+34612000001", Script::Human(Some("1"))),
            ("+34612000005", Script::NoAnswer),
            ("+34612000008", Script::Busy),
        ];
        import_scripted(&fake, &running.app, &patients).await;
        wait_for("three calls to end", Duration::from_secs(30), || async {
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'done'")
                .await
                == 3
        })
        .await;
        // No worker from here: the retry for the unanswered call falls ten minutes overdue.
        running.stop_worker().await;
        let overdue = Utc::now() - TimeDelta::minutes(10);
        env.execute(&format!(
            "UPDATE attempts SET due_at = {} WHERE status = 'planned' AND phone = '+34612000005'",
            overdue.timestamp_millis()
        ))
        .await;
        patient_message(&running.app.db, "+34612000991", "call me").await;
        let http = reqwest::Client::new();
        let optout = http
            .post(format!("{}/v1/optouts", running.url))
            .bearer_auth("api-token")
            .json(&serde_json::json!({"phone": "+34612000777", "source": "api"}))
            .send()
            .await
            .unwrap();
        assert_eq!(optout.status(), 201);

        let scrape = || async {
            let r = http
                .get(format!("{}/metrics", running.url))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let kind = r.headers()["content-type"].to_str().unwrap().to_string();
            assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
            parse_metrics(&r.text().await.unwrap())
        };
        let before = scrape().await;
        // Two webhooks without a valid signature and one signed but malformed.
        let status_url = format!("{}/webhooks/twilio/voice/status?attempt=01X", running.url);
        for signature in ["", "bm9wZQ=="] {
            let r = http
                .post(&status_url)
                .header("X-Twilio-Signature", signature)
                .form(&[("CallStatus", "completed")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403);
        }
        assert_eq!(fake.post(&status_url, &[("CallSid", "CA1")]).await.0, 400);
        let m = scrape().await;

        let get = |key: &str| {
            *m.get(key)
                .unwrap_or_else(|| panic!("no {key} in {:#?}", m.keys()))
        };
        let test = |name: &str, label: &str, value: &str| {
            get(&format!("{name}{{campaign=\"test\",{label}=\"{value}\"}}"))
        };
        assert_eq!(get("ringback_live_calls"), 0.0);
        for (name, label, value, n) in [
            ("ringback_outreach", "state", "active", 2.0),
            ("ringback_outreach", "state", "finished", 1.0),
            ("ringback_outreach_outcomes", "outcome", "confirmed", 1.0),
            ("ringback_outreach_outcomes", "outcome", "unreachable", 0.0),
            ("ringback_call_results_total", "result", "human", 1.0),
            ("ringback_call_results_total", "result", "machine", 0.0),
            ("ringback_call_results_total", "result", "no_answer", 1.0),
            ("ringback_call_results_total", "result", "busy", 1.0),
            ("ringback_call_results_total", "result", "failed", 0.0),
            ("ringback_sms_total", "status", "sent", 0.0),
            ("ringback_attempts_due", "channel", "voice", 1.0),
            ("ringback_attempts_planned", "channel", "voice", 1.0),
            ("ringback_followups_open", "reason", "patient_message", 1.0),
            ("ringback_followups_open", "reason", "unreachable", 0.0),
        ] {
            assert_eq!(test(name, label, value), n, "{name} {label}={value}");
        }
        assert_eq!(get("ringback_calls_total{campaign=\"test\"}"), 3.0);
        let late = get("ringback_attempts_due_oldest_seconds{campaign=\"test\"}");
        let most = (Utc::now() - overdue).num_milliseconds() as f64 / 1000.0;
        assert!((600.0..=most).contains(&late), "{late} s late");
        assert_eq!(get("ringback_optouts{source=\"api\"}"), 1.0);
        let refused = |reason: &str, m: &std::collections::BTreeMap<String, f64>| {
            m[&format!("ringback_webhooks_refused_total{{reason=\"{reason}\"}}")]
        };
        assert_eq!(
            refused("signature", &m) - refused("signature", &before),
            2.0
        );
        assert_eq!(
            refused("malformed", &m) - refused("malformed", &before),
            1.0
        );
        // The shipped campaigns, with nothing in them yet, have their series at zero.
        assert_eq!(
            get("ringback_outreach{campaign=\"reminders\",state=\"active\"}"),
            0.0
        );
        assert_eq!(
            get("ringback_attempts_due_oldest_seconds{campaign=\"callbacks\"}"),
            0.0
        );
        // Nothing about a patient: no number, no name.
        assert!(!m.keys().any(|k| k.contains("+346") || k.contains("Pat")));
    }
);

both_backends!(
    the_front_desk_looks_a_number_up_in_any_spelling,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        fake.script("+34612000501", Script::Human(Some("1")));
        import_one(&running.app, "+34612000501").await;
        one_confirmed(&env, "the call to be answered", 30).await;
        running
            .app
            .db
            .opt_out("+34612000501", "staff", Utc::now())
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let get = |path: String, token: &'static str| {
            http.get(format!("{}{path}", running.url))
                .bearer_auth(token)
                .send()
        };

        // The API: the number written as the patient says it, national and spaced.
        let r = get("/v1/outreach?phone=612%20000%20501".into(), "api-token")
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let found: Value = r.json().await.unwrap();
        assert_eq!(found["phone"], "+34612000501", "{found}");
        assert_eq!(found["opted_out"], true, "{found}");
        assert_eq!(found["opt_out_source"], "staff", "{found}");
        let outreach = found["outreach"].as_array().unwrap();
        assert_eq!(outreach.len(), 1, "{found}");
        assert_eq!(outreach[0]["campaign"], "test");
        assert_eq!(outreach[0]["outcome"], "confirmed");
        assert_eq!(outreach[0]["patient"], "Anna");
        assert_eq!(outreach[0]["appointment"], "A0");
        assert_eq!(outreach[0]["attempts"][0]["digits"], "1", "{found}");

        // Another number: nothing, not an error; no number or a bad one: 400 naming the field;
        // without the token: 401.
        let r = get("/v1/outreach?phone=%2B34612000999".into(), "api-token")
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let none: Value = r.json().await.unwrap();
        assert_eq!(none["outreach"], serde_json::json!([]), "{none}");
        assert_eq!(none["opted_out"], false, "{none}");
        for bad in [
            "/v1/outreach",
            "/v1/outreach?phone=12",
            "/v1/outreach?phone=call%20me",
        ] {
            let r = get(bad.into(), "api-token").await.unwrap();
            assert_eq!(r.status(), 400, "{bad}");
            let error: Value = r.json().await.unwrap();
            assert_eq!(error["field"], "phone", "{bad}: {error}");
        }
        let r = get("/v1/outreach?phone=612000501".into(), "wrong")
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // The dashboard: a form to look up, and the page it leads to.
        let page = dashboard(&http, &running.url).await;
        assert!(page.contains("action=\"/lookup\""), "{page}");
        // A follow-up's number leads to the same page.
        patient_message(&running.app.db, "+34612000502", "call me").await;
        let page = dashboard(&http, &running.url).await;
        assert!(
            page.contains("<a href=\"/lookup?phone=%2B34612000502\">+34612000502</a>"),
            "{page}"
        );
        let lookup = |phone: &'static str| {
            http.get(format!(
                "{}/lookup?phone={}",
                running.url,
                phone.replace(' ', "%20")
            ))
            .basic_auth("staff", Some("api-token"))
            .send()
        };
        let r = lookup("612 000 501").await.unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        for shown in [
            "+34612000501",
            "do-not-call",
            "Anna",
            "A0",
            "confirmed",
            "pressed 1",
        ] {
            assert!(page.contains(shown), "{shown}: {page}");
        }
        let r = lookup("12").await.unwrap();
        assert_eq!(r.status(), 400);
        let r = http
            .get(format!("{}/lookup?phone=612000501", running.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "staff only");
        running.stop().await;
    }
);

both_backends!(
    a_lookup_gives_each_outreach_its_own_attempts,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        // No call result ever comes, so no retry is planned while the test compares.
        fake.script("+34612000601", Script::Silent);
        // Two visits for one number: two outreach, each with its own planned or placed call.
        let twice = appointments_csv(&[
            ("+34612000601".into(), "Anna".into(), String::new()),
            ("+34612000601".into(), "Pere".into(), String::new()),
        ]);
        import_csv(&running.app, &twice).await;
        let r = reqwest::Client::new()
            .get(format!("{}/v1/outreach?phone=612000601", running.url))
            .bearer_auth("api-token")
            .send()
            .await
            .unwrap();
        let found: Value = r.json().await.unwrap();
        let outreach = found["outreach"].as_array().unwrap();
        assert_eq!(outreach.len(), 2, "{found}");
        for o in outreach {
            let id = o["id"].as_str().unwrap();
            let mut shown: Vec<String> = o["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect();
            let mut stored: Vec<String> = env
                .rows(&format!(
                    "SELECT id FROM attempts WHERE outreach_id = '{id}'"
                ))
                .await
                .into_iter()
                .map(|r| r[0].clone().unwrap())
                .collect();
            shown.sort();
            stored.sort();
            assert!(!stored.is_empty());
            assert_eq!(shown, stored, "{id}: {found}");
        }
        running.stop().await;
    }
);

both_backends!(
    staff_stop_the_calls_to_a_patient_they_reached_another_way,
    |env: TestEnv| async move {
        let (_fake, running) = setup(&env).await;
        // The worker stops, so the calls stay planned; the HTTP side keeps answering.
        let (url, app) = (running.url.clone(), running.app.clone());
        running.stop().await;
        let patients = [
            (
                "+34612000601".to_string(),
                "Anna".to_string(),
                String::new(),
            ),
            (
                "+34612000602".to_string(),
                "Joan".to_string(),
                String::new(),
            ),
        ];
        import_csv(&app, &appointments_csv(&patients)).await;
        let http = reqwest::Client::new();
        let id_of = |phone: &'static str| {
            let path = format!("/v1/outreach?phone={}", phone.replace('+', "%2B"));
            let url = url.clone();
            async move {
                let found = api_get(&url, &path).await;
                found["outreach"][0]["id"].as_str().unwrap().to_string()
            }
        };
        let withdraw = |id: &str, body: &'static str, token: &'static str| {
            http.post(format!("{url}/v1/outreach/{id}/withdraw"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };

        // The API.
        let first = id_of("+34612000601").await;
        let body = r#"{"by":"Marta","note":"rang her back herself"}"#;
        assert_eq!(withdraw(&first, body, "wrong").await.unwrap().status(), 401);
        for (bad, status, field) in [("by=Marta", 400, "by"), (r#"{"by":" "}"#, 422, "by")] {
            let r = withdraw(&first, bad, "api-token").await.unwrap();
            assert_eq!(r.status(), status, "{bad}");
            let error: Value = r.json().await.unwrap();
            assert_eq!(error["field"], field, "{bad}: {error}");
        }
        let r = withdraw(&first, body, "api-token").await.unwrap();
        assert_eq!(r.status(), 200);
        let view: Value = r.json().await.unwrap();
        assert_eq!(
            (view["state"].as_str(), view["outcome"].as_str()),
            (Some("finished"), Some("withdrawn")),
            "{view}"
        );
        assert_eq!(view["withdrawn_by"], "Marta", "{view}");
        assert_eq!(view["withdrawn_note"], "rang her back herself", "{view}");
        assert_eq!(view["attempts"][0]["status"], "withdrawn", "{view}");
        let r = withdraw(&first, body, "api-token").await.unwrap();
        assert_eq!(r.status(), 409);
        let error: Value = r.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("withdrawn"),
            "{error}"
        );
        let r = withdraw("01NOSUCHOUTREACH0000000000", body, "api-token")
            .await
            .unwrap();
        assert_eq!(r.status(), 404);

        // The dashboard: the number's page offers the form for what is still calling.
        let second = id_of("+34612000602").await;
        let page = |phone: &'static str| {
            http.get(format!("{url}/lookup?phone={phone}"))
                .basic_auth("staff", Some("api-token"))
                .send()
        };
        let lookup = page("612000602").await.unwrap().text().await.unwrap();
        let token = form_token(&lookup, &format!("/outreach/{second}/withdraw"));
        let no_redirect = no_redirect();
        let post = |id: &str, token: &str, by: &str| {
            no_redirect
                .post(format!("{url}/outreach/{id}/withdraw"))
                .basic_auth("staff", Some("api-token"))
                .form(&[("token", token), ("by", by), ("note", "")])
                .send()
        };
        // A token is for its own outreach only.
        assert_eq!(post(&first, &token, "Pere").await.unwrap().status(), 403);
        assert_eq!(post(&second, "forged", "Pere").await.unwrap().status(), 403);
        assert_eq!(post(&second, &token, "").await.unwrap().status(), 422);
        assert_eq!(
            env.outreach_state("id", &second).await[0].as_deref(),
            Some("active")
        );
        let r = post(&second, &token, "Pere").await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/lookup?phone=%2B34612000602");
        assert_eq!(
            env.outreach_state("id", &second).await,
            finished("withdrawn")
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                .await,
            0
        );
        let lookup = page("612000602").await.unwrap().text().await.unwrap();
        assert!(lookup.contains("withdrawn by Pere"), "{lookup}");
        assert!(!lookup.contains("Stop calling"), "{lookup}");
        // The form again (a second click): the same page.
        assert_eq!(post(&second, &token, "Pere").await.unwrap().status(), 303);
    }
);

both_backends!(
    a_paused_campaign_places_nothing_until_it_is_resumed,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        // The worker stops: the test feeds the queue and dials by hand, so that nothing races it.
        let (url, app) = (running.url.clone(), running.app.clone());
        running.stop().await;
        let queue = ringback::jobs::Queue::new(&app.db);
        let http = reqwest::Client::new();
        let post = |path: &str, body: &'static str, token: &'static str| {
            http.post(format!("{url}{path}"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let pause = r#"{"by":"Marta","note":"phone lines down"}"#;
        assert_eq!(
            post("/v1/campaigns/test/pause", pause, "wrong")
                .await
                .unwrap()
                .status(),
            401
        );
        for (path, body, status, field) in [
            ("/v1/campaigns/nope/pause", pause, 404, "campaign"),
            ("/v1/campaigns/test/pause", "{}", 400, "by"),
            ("/v1/campaigns/test/pause", r#"{"by":""}"#, 422, "by"),
        ] {
            let r = post(path, body, "api-token").await.unwrap();
            assert_eq!(r.status(), status, "{path} {body}");
            let error: Value = r.json().await.unwrap();
            assert_eq!(error["field"], field, "{path} {body}: {error}");
        }
        let r = post("/v1/campaigns/test/pause", pause, "api-token")
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let paused: Value = r.json().await.unwrap();
        assert_eq!(paused["paused"]["paused_by"], "Marta", "{paused}");
        // Paused again by someone else: the pause in force stays as it began.
        let again: Value = post("/v1/campaigns/test/pause", r#"{"by":"Joan"}"#, "api-token")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["paused"], paused["paused"], "{again}");

        // A visit due now: neither queued nor dialled while the campaign is paused.
        import_one(&app, "+34612000701").await;
        let attempt = env
            .rows("SELECT id FROM attempts WHERE status = 'planned'")
            .await
            .remove(0)
            .remove(0)
            .unwrap();
        assert_eq!(ringback::jobs::feed_once(&app, &queue).await.unwrap(), 0);
        // A wake-up queued before the pause (or a callback dialled at once) is given back.
        assert!(app.db.take_for_queue(&attempt, "job-1").await.unwrap());
        assert_eq!(
            app.dial(&attempt).await.unwrap(),
            ringback::dial::Dialed::Skipped
        );
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM attempts WHERE id = '{attempt}' AND status = 'planned' AND task_id IS NULL"
            ))
            .await,
            1
        );
        assert_eq!(ringback::jobs::feed_once(&app, &queue).await.unwrap(), 0);
        assert!(fake.log().requests.is_empty());
        // Seen in the campaigns' list, /metrics and the dashboard.
        let listed = api_get(&url, "/v1/campaigns").await;
        for c in listed["campaigns"].as_array().unwrap() {
            let note = c["paused"]["note"].as_str();
            let expected = (c["id"] == "test").then_some("phone lines down");
            assert_eq!(note, expected, "{listed}");
        }
        let metrics = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("ringback_campaign_paused{campaign=\"test\"} 1"),
            "{metrics}"
        );
        let page = dashboard(&http, &url).await;
        assert!(page.contains("<b>paused</b> since"), "{page}");
        assert!(page.contains("by Marta: phone lines down"), "{page}");

        // The CLI resumes it: the visit is queued and called.
        let run = env.ringback(&["campaigns", "resume", "test", "--by", "Joan"]);
        run.assert_code(0);
        assert!(run.stderr().contains("test resumed"), "{}", run.stderr());
        assert_eq!(ringback::jobs::feed_once(&app, &queue).await.unwrap(), 1);
        assert_eq!(
            app.dial(&attempt).await.unwrap(),
            ringback::dial::Dialed::Placed
        );
        assert_eq!(fake.log().requests[0]["To"], "+34612000701");

        // The dashboard pauses and resumes it too, each form for its own action.
        let page = dashboard(&http, &url).await;
        let token = form_token(&page, "/campaigns/test/pause");
        let form = |path: &str, token: &str| {
            no_redirect()
                .post(format!("{url}{path}"))
                .basic_auth("staff", Some("api-token"))
                .form(&[("token", token), ("by", "Pere"), ("note", "")])
                .send()
        };
        assert_eq!(
            form("/campaigns/test/resume", &token)
                .await
                .unwrap()
                .status(),
            403
        );
        let r = form("/campaigns/test/pause", &token).await.unwrap();
        assert_eq!(
            (
                r.status().as_u16(),
                r.headers()["location"].to_str().unwrap()
            ),
            (303, "/")
        );
        assert_eq!(
            app.db
                .campaign_pause("test")
                .await
                .unwrap()
                .unwrap()
                .paused_by,
            "Pere"
        );
        let page = dashboard(&http, &url).await;
        let token = form_token(&page, "/campaigns/test/resume");
        assert_eq!(
            form("/campaigns/test/resume", &token)
                .await
                .unwrap()
                .status(),
            303
        );
        assert_eq!(app.db.campaign_pause("test").await.unwrap(), None);

        // The CLI refuses a campaign that does not exist, and a pause without a name.
        for (args, says) in [
            (&["campaigns", "pause", "nope", "--by", "Joan"][..], "nope"),
            (&["campaigns", "pause", "test", "--by", " "][..], "--by: "),
        ] {
            let run = env.ringback(args);
            run.assert_code(1);
            assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
        }
        let run = env.ringback(&[
            "campaigns",
            "pause",
            "test",
            "--by",
            "Joan",
            "--note",
            "storm",
        ]);
        run.assert_code(0);
        assert_eq!(run.json()["paused"]["note"], "storm");
        // Every pause is kept, with who resumed it.
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM campaign_pauses WHERE resumed_by IS NOT NULL")
                .await,
            2
        );
    }
);

both_backends!(
    the_outcome_feed_gives_each_ended_outreach_by_the_clinics_own_ids,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        let patients = [
            ("+34612000701", Script::Human(Some("1"))),
            ("+34612000702", Script::Machine),
            ("+34612000703", Script::Human(Some("2"))),
            ("+34612000704", Script::NoAnswer),
        ];
        import_scripted(&fake, &running.app, &patients).await;
        wait_for(
            "three outcomes and a call unanswered",
            Duration::from_secs(60),
            || async {
                env.scalar("SELECT COUNT(*) FROM outreach WHERE state = 'finished'")
                    .await
                    == 3
                    && env
                        .scalar("SELECT COUNT(*) FROM attempts WHERE status = 'done'")
                        .await
                        == 4
            },
        )
        .await;
        let url = running.url.clone();
        let get = |path: String| {
            let url = url.clone();
            async move {
                reqwest::Client::new()
                    .get(format!("{url}{path}"))
                    .bearer_auth("api-token")
                    .send()
                    .await
                    .unwrap()
            }
        };

        // Each ended outreach once, oldest first, by the clinic's appointment and patient ids.
        let feed = api_get(&url, "/v1/outcomes?campaign=test").await;
        let rows = feed["outcomes"].as_array().unwrap().clone();
        assert_eq!(feed["more"], false, "{feed}");
        // All of it ended within the minute an outcome may take to be written: the next poll
        // from `next` reads it again rather than risk passing one still on its way.
        let next = feed["next"].as_str().expect("where to go on from");
        let again = api_get(&url, &format!("/v1/outcomes?campaign=test&after={next}")).await;
        assert_eq!(again["outcomes"].as_array().unwrap(), &rows, "{again}");
        assert_eq!(again["next"], next, "{again}");
        let by_appointment = |id: &str| {
            rows.iter()
                .find(|r| r["appointment_id"] == id)
                .unwrap_or_else(|| panic!("{id}: {feed}"))
                .clone()
        };
        for (appointment, patient, phone, outcome, followup) in [
            ("A0", "P0", "+34612000701", "confirmed", Value::Null),
            ("A1", "P1", "+34612000702", "voicemail_left", Value::Null),
            (
                "A2",
                "P2",
                "+34612000703",
                "cancel_requested",
                "open".into(),
            ),
        ] {
            let row = by_appointment(appointment);
            assert_eq!(row["patient_id"], patient, "{row}");
            assert_eq!(row["phone"], phone, "{row}");
            assert_eq!(row["outcome"], outcome, "{row}");
            assert_eq!(row["followup"], followup, "{row}");
            assert_eq!(
                (row["calls"].as_i64(), row["sms"].as_i64()),
                (Some(1), Some(0)),
                "{row}"
            );
            assert_eq!(row["kind"], "reminder", "{row}");
            // The visit in the clinic's own wall-clock time, with its offset.
            let visit =
                chrono::DateTime::parse_from_rfc3339(row["appointment_at"].as_str().unwrap())
                    .unwrap();
            let expected = (Utc::now() + TimeDelta::hours(30)).with_timezone(&daytime_zone());
            assert_eq!(
                visit.offset().local_minus_utc(),
                chrono::Offset::fix(expected.offset()).local_minus_utc(),
                "{row}"
            );
            assert!(
                (visit.to_utc() - expected.to_utc()).num_minutes().abs() < 5,
                "{row}"
            );
        }
        assert!(
            rows.iter().all(|r| r["appointment_id"] != "A3"),
            "still calling: {feed}"
        );
        let times: Vec<&str> = rows
            .iter()
            .map(|r| r["outcome_at"].as_str().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{feed}");

        // Pages: two, then the rest; the cursor goes on where the page ended.
        let page = api_get(&url, "/v1/outcomes?campaign=test&limit=2").await;
        assert_eq!(page["outcomes"].as_array().unwrap().len(), 2, "{page}");
        assert_eq!(page["more"], true, "{page}");
        let next = page["next"]
            .as_str()
            .expect("a full page says where to go on")
            .to_string();
        let rest = api_get(
            &url,
            &format!("/v1/outcomes?campaign=test&limit=2&after={next}"),
        )
        .await;
        assert_eq!(rest["more"], false, "{rest}");
        let paged: Vec<Value> = page["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .chain(rest["outcomes"].as_array().unwrap())
            .cloned()
            .collect();
        assert_eq!(paged, rows);

        // CSV, for a spreadsheet or the EHR: a header and a line per outcome.
        let r = get("/v1/outcomes?campaign=test&format=csv".into()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = r.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "outreach_id,campaign,kind,appointment_id,patient_id,appointment_at,phone,outcome,outcome_at,calls,sms,followup"
        );
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(",A0,P0,") && l.contains(",confirmed,")),
            "{csv}"
        );

        // A span before any of it: nothing.
        let old = api_get(&url, "/v1/outcomes?since=3d&until=2d").await;
        assert_eq!(old["outcomes"], serde_json::json!([]), "{old}");

        // What is wrong with a question is said, by field.
        for (query, status, field) in [
            ("since=soon", 400, "since"),
            ("since=today&until=yesterday", 400, "until"),
            ("limit=0", 400, "limit"),
            ("limit=many", 400, "limit"),
            ("after=somewhere", 400, "after"),
            ("format=xml", 400, "format"),
            ("campaign=nope", 404, "campaign"),
        ] {
            assert_refused(&url, &format!("/v1/outcomes?{query}"), status, field).await;
        }
        let r = reqwest::Client::new()
            .get(format!("{url}/v1/outcomes"))
            .send()
            .await
            .unwrap();
        assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());

        // A reader that goes on from its last cursor sees what ended since, and an outcome a
        // patient's later reply replaced, again, with the new one.
        let last = rows.last().unwrap();
        let cursor = format!(
            "{}-{}",
            chrono::DateTime::parse_from_rfc3339(last["outcome_at"].as_str().unwrap())
                .unwrap()
                .timestamp_millis(),
            last["outreach_id"].as_str().unwrap()
        );
        let still_calling = api_get(&url, "/v1/outreach?phone=%2B34612000704").await["outreach"][0]
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = reqwest::Client::new()
            .post(format!("{url}/v1/outreach/{still_calling}/withdraw"))
            .bearer_auth("api-token")
            .header("content-type", "application/json")
            .body(r#"{"by":"Marta"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (code, _) = fake
            .post(
                &format!("{url}/webhooks/twilio/sms/inbound"),
                &[
                    ("MessageSid", "SMfeed"),
                    ("From", "+34612000702"),
                    ("To", "+34930000000"),
                    ("Body", "1"),
                ],
            )
            .await;
        assert_eq!(code, 200);
        let since = api_get(&url, &format!("/v1/outcomes?campaign=test&after={cursor}")).await;
        let got: Vec<(&str, &str)> = since["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["appointment_id"].as_str().unwrap(),
                    r["outcome"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, [("A3", "withdrawn"), ("A1", "confirmed")], "{since}");

        // Two days on: a reader back from its last cursor of three days ago gets all of it,
        // though the feed reads one day back when not asked; once a minute old, `next` passes
        // it, and the poll after that is empty.
        let shift = |by: i64| {
            format!(
                "UPDATE outreach SET outcome_at = outcome_at + {by} WHERE outcome_at IS NOT NULL"
            )
        };
        env.execute(&shift(-2 * 86_400_000)).await;
        let away = (Utc::now() - TimeDelta::days(3)).timestamp_millis();
        let back = api_get(&url, &format!("/v1/outcomes?campaign=test&after={away}-0")).await;
        let got = back["outcomes"].as_array().unwrap();
        assert_eq!(got.len(), 4, "{back}");
        let last = got.last().unwrap();
        let next = back["next"].as_str().unwrap();
        assert!(
            next.ends_with(last["outreach_id"].as_str().unwrap()),
            "{back}"
        );
        let after = api_get(&url, &format!("/v1/outcomes?campaign=test&after={next}")).await;
        assert_eq!(after["outcomes"], serde_json::json!([]), "{after}");
        assert_eq!(after["next"], next, "{after}");
        let lately = api_get(&url, "/v1/outcomes?campaign=test").await;
        assert_eq!(lately["outcomes"], serde_json::json!([]), "{lately}");
        env.execute(&shift(2 * 86_400_000)).await;

        // The dashboard links each campaign's last week, and the link works with its login.
        let page = dashboard(&reqwest::Client::new(), &url).await;
        let link = "/v1/outcomes?campaign=test&amp;since=7d&amp;format=csv";
        assert!(page.contains(link), "{page}");
        let r = reqwest::Client::new()
            .get(format!("{url}{}", link.replace("&amp;", "&")))
            .basic_auth("staff", Some("api-token"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap().lines().count(), 5);

        // The command line: the same feed, for a cron job or a person.
        running.stop().await;
        let run = env.ringback(&["outcomes", "--campaign", "test", "--format", "csv"]);
        run.assert_code(0);
        let cli = run.stdout();
        assert_eq!(cli.lines().count(), 5, "{cli}");
        assert_eq!(cli.lines().next(), lines.first().copied());
        assert!(cli.contains(",A1,P1,") && cli.contains(",A3,P3,"), "{cli}");
        let json = env.ringback(&["outcomes", "--since", "today", "--format", "json"]);
        json.assert_code(0);
        assert_eq!(
            json.json().as_array().unwrap().len(),
            4,
            "{}",
            json.stdout()
        );
        let table = env.ringback(&["outcomes", "--campaign", "test"]);
        table.assert_code(0);
        assert!(
            table.stdout().contains("cancel_requested"),
            "{}",
            table.stdout()
        );
        let none = env.ringback(&["outcomes", "--since", "3d", "--until", "2d"]);
        none.assert_code(0);
        assert!(none.stdout().contains("no outcomes"), "{}", none.stdout());
        for (args, says) in [
            (&["outcomes", "--since", "soon"][..], "--since"),
            (
                &["outcomes", "--since", "today", "--until", "yesterday"][..],
                "--until",
            ),
            (&["outcomes", "--campaign", "nope"][..], "nope"),
        ] {
            let run = env.ringback(args);
            run.assert_code(1);
            assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
        }
    }
);

both_backends!(
    a_days_visits_show_where_each_reminder_stands,
    |env: TestEnv| async move {
        let (fake, running) = setup(&env).await;
        fake.script("+34612000801", Script::Human(Some("1")));
        fake.script("+34612000802", Script::NoAnswer);
        // Noon on the day 30 hours from now, in the campaign's zone: the first calls are due now.
        let zone = daytime_zone();
        let day = (Utc::now() + TimeDelta::hours(30))
            .with_timezone(&zone)
            .date_naive();
        let noon = |day: chrono::NaiveDate, minute: u32| {
            day.and_hms_opt(12, minute, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M")
                .to_string()
        };
        let after = day.succ_opt().unwrap();
        let list = |a1_minute: u32| {
            format!(
                "appointment_id,patient_id,first_name,last_name,phone,starts_at,timezone,language,status\n\
                 A0,P0,Anna,Puig,+34612000801,{},{zone},en,booked\n\
                 A1,P1,Joan,Vidal,+34612000802,{},{zone},en,booked\n\
                 A2,P2,Mia,Soler,+34612000803,{},{zone},en,cancelled\n\
                 A3,P3,Pere,Font,+34612000804,{},{zone},en,cancelled\n",
                noon(day, 0),
                noon(day, a1_minute),
                noon(day, 30),
                noon(after, 0),
            )
        };
        import_csv(&running.app, &list(15)).await;
        wait_for(
            "a confirmation and a call unanswered",
            Duration::from_secs(60),
            || async {
                env.scalar("SELECT COUNT(*) FROM outreach WHERE outcome = 'confirmed'")
                    .await
                    == 1
                    && env
                        .scalar("SELECT COUNT(*) FROM attempts WHERE status = 'done'")
                        .await
                        == 2
                    && env
                        .scalar("SELECT COUNT(*) FROM attempts WHERE status = 'planned'")
                        .await
                        == 1
            },
        )
        .await;
        // A1 moves a quarter of an hour: its new outreach is the one shown, once.
        import_csv(&running.app, &list(30)).await;
        let url = running.url.clone();
        let path = format!("/v1/visits?campaign=test&on={day}");

        let found = api_get(&url, &path).await;
        assert_eq!(found["day"], day.to_string(), "{found}");
        assert_eq!(found["timezone"], zone.name(), "{found}");
        let visits = found["visits"].as_array().unwrap();
        let got: Vec<(&str, &str, &str, &str)> = visits
            .iter()
            .map(|v| {
                (
                    v["appointment_id"].as_str().unwrap(),
                    v["status"].as_str().unwrap(),
                    v["reminder"].as_str().unwrap(),
                    v["outcome"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("A0", "booked", "ended", "confirmed"),
                ("A1", "booked", "calling", "-"),
                ("A2", "cancelled", "none", "-"),
            ],
            "{found}"
        );
        assert_eq!(visits[0]["patient"], "Anna Puig", "{found}");
        assert_eq!(visits[0]["calls"], 1, "{found}");
        assert!(
            visits[0]["appointment_at"]
                .as_str()
                .unwrap()
                .contains("T12:00:00"),
            "{found}"
        );
        // The moved visit: its new time, no call yet, the next one planned.
        assert!(
            visits[1]["appointment_at"]
                .as_str()
                .unwrap()
                .contains("T12:30:00"),
            "{found}"
        );
        assert_eq!(visits[1]["calls"], 0, "{found}");
        assert!(visits[1]["next_attempt_at"].is_string(), "{found}");
        assert_eq!(visits[1]["next_channel"], "voice", "{found}");

        let r = reqwest::Client::new()
            .get(format!("{url}{path}&format=csv"))
            .bearer_auth("api-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = r.text().await.unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert!(
            csv.starts_with("campaign,appointment_id,patient_id,patient,appointment_at,"),
            "{csv}"
        );
        let next_day = api_get(&url, &format!("/v1/visits?campaign=test&on={after}")).await;
        assert_eq!(
            next_day["visits"].as_array().unwrap().len(),
            1,
            "{next_day}"
        );

        for (query, status, field) in [
            ("on=someday", 400, "on"),
            ("on=2026-02-30", 400, "on"),
            ("format=pdf", 400, "format"),
            ("campaign=nope", 404, "campaign"),
        ] {
            assert_refused(&url, &format!("/v1/visits?{query}"), status, field).await;
        }

        // The dashboard links today's and tomorrow's, for reminder campaigns only, to a page of
        // their own for staff, with the day before and after and the CSV.
        let page = dashboard(&reqwest::Client::new(), &url).await;
        assert!(
            page.contains("/visits?campaign=test&amp;on=tomorrow"),
            "{page}"
        );
        assert!(!page.contains("/visits?campaign=callbacks"), "{page}");
        let http = reqwest::Client::new();
        let visits_page = |query: String| {
            http.get(format!("{url}/visits?{query}"))
                .basic_auth("staff", Some("api-token"))
                .send()
        };
        let r = visits_page(format!("campaign=test&on={day}"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["cache-control"],
            "no-store",
            "a day's patients stay out of every cache"
        );
        let html = r.text().await.unwrap();
        for shown in [
            "Anna Puig",
            "confirmed",
            "still calling",
            "not reminded",
            "12:30",
            &format!("/v1/visits?on={day}&amp;format=csv&amp;campaign=test"),
            &format!("/visits?on={after}&amp;campaign=test"),
            "/lookup?phone=%2B34612000802",
        ] {
            assert!(html.contains(shown), "{shown}: {html}");
        }
        assert!(!html.contains("Pere Font"), "another day's visit: {html}");
        assert_eq!(
            visits_page("campaign=nope".into()).await.unwrap().status(),
            404
        );
        assert_eq!(
            visits_page("on=someday".into()).await.unwrap().status(),
            400
        );
        let r = reqwest::Client::new()
            .get(format!("{url}/visits"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // The command line.
        running.stop().await;
        let on = day.to_string();
        let run = env.ringback(&[
            "visits",
            "--campaign",
            "test",
            "--on",
            &on,
            "--format",
            "json",
        ]);
        run.assert_code(0);
        assert_eq!(run.json().as_array().unwrap().len(), 3, "{}", run.stdout());
        let table = env.ringback(&["visits", "--campaign", "test", "--on", &on]);
        table.assert_code(0);
        for word in ["confirmed", "calling", "none", "Anna Puig"] {
            assert!(table.stdout().contains(word), "{word}: {}", table.stdout());
        }
        let csv_cli = env.ringback(&[
            "visits",
            "--campaign",
            "test",
            "--on",
            &on,
            "--format",
            "csv",
        ]);
        assert_eq!(csv_cli.stdout().lines().count(), 4);
        let bad = env.ringback(&["visits", "--on", "someday"]);
        bad.assert_code(1);
        assert!(bad.stderr().contains("--on"), "{}", bad.stderr());
    }
);
