//! The Twilio-compatible client: every parameter it sends is one the official API description
//! defines, with an allowed value; and each kind of provider answer maps to what must happen next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use ringback::config::Secret;
use ringback::phone::Phone;
use ringback::provider::twilio::TwilioClient;
use ringback::provider::{CallRequest, ProviderError};
use serde_json::Value;

fn spec() -> Value {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let full = format!("{manifest}/../shared/twilio/twilio_api_v2010.json");
    let path = if std::path::Path::new(&full).exists() {
        full
    } else {
        format!("{manifest}/tests/fixtures/twilio_requests.json")
    };
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn request() -> CallRequest {
    CallRequest {
        attempt_id: "01ATTEMPT".into(),
        to: Phone::parse_e164("+34612345678").unwrap(),
        from: Phone::parse_e164("+34930000000").unwrap(),
        answer_url: "https://clinic.example/webhooks/twilio/voice/answer?attempt=01ATTEMPT".into(),
        status_url: "https://clinic.example/webhooks/twilio/voice/status?attempt=01ATTEMPT".into(),
        ring_timeout_s: 25,
        detect_machine: true,
    }
}

#[test]
fn every_calls_json_parameter_is_defined_by_the_api_with_an_allowed_value() {
    let spec = spec();
    let schema = &spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Calls.json"]["post"]["requestBody"]
        ["content"]["application/x-www-form-urlencoded"]["schema"];
    let properties = schema["properties"]
        .as_object()
        .expect("CreateCallRequest properties");
    let form = TwilioClient::call_form(&request());
    for (name, value) in &form {
        let property = properties
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is not a Calls.json parameter"));
        let kind = property["type"].as_str().unwrap_or_default();
        let allowed = match kind {
            "array" => &property["items"]["enum"],
            _ => &property["enum"],
        };
        if let Some(values) = allowed.as_array() {
            assert!(
                values.iter().any(|v| v == value),
                "{name}={value} is not one of {values:?}"
            );
        }
        if kind == "integer" {
            value
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("{name}={value} is not an integer"));
        }
    }
    for required in schema["required"].as_array().unwrap() {
        assert!(
            form.iter().any(|(n, _)| n == required),
            "required {required} missing"
        );
    }
    // The documented MachineDetection values (the schema leaves them open).
    let md = form.iter().find(|(n, _)| *n == "MachineDetection").unwrap();
    assert!(["Enable", "DetectMessageEnd"].contains(&md.1.as_str()));
    let events: Vec<_> = form
        .iter()
        .filter(|(n, _)| *n == "StatusCallbackEvent")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
}

#[test]
fn every_messages_json_parameter_is_defined_by_the_api_with_an_allowed_value() {
    let spec = spec();
    let schema = &spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]["requestBody"]
        ["content"]["application/x-www-form-urlencoded"]["schema"];
    let properties = schema["properties"]
        .as_object()
        .expect("CreateMessageRequest properties");
    let req = ringback::provider::SmsRequest {
        attempt_id: "01ATTEMPT".into(),
        to: Phone::parse_e164("+34612345678").unwrap(),
        from: Phone::parse_e164("+34930000000").unwrap(),
        body: "CAP Gràcia: visita el 3 de març a les 9:30. Responeu 1 per confirmar.".into(),
        status_url: "https://clinic.example/webhooks/twilio/sms/status?attempt=01ATTEMPT".into(),
    };
    let service = "MG0123456789abcdef0123456789abcdef";
    for form in [
        TwilioClient::sms_form(&req, None),
        TwilioClient::sms_form(&req, Some(service)),
    ] {
        for (name, value) in &form {
            let property = properties
                .get(*name)
                .unwrap_or_else(|| panic!("{name} is not a Messages.json parameter"));
            if let Some(pattern) = property["pattern"].as_str() {
                // The one pattern here: MessagingServiceSid's ^MG[0-9a-fA-F]{32}$.
                assert_eq!(pattern, "^MG[0-9a-fA-F]{32}$");
                assert!(
                    value.len() == 34
                        && value.starts_with("MG")
                        && value[2..].chars().all(|c| c.is_ascii_hexdigit())
                );
            }
            if property["format"] == "uri" {
                assert!(value.starts_with("https://"), "{name}={value}");
            }
        }
        for required in schema["required"].as_array().unwrap() {
            assert!(
                form.iter().any(|(n, _)| n == required),
                "required {required} missing"
            );
        }
        // A sender: From, or the Messaging Service that picks one.
        assert!(
            form.iter()
                .any(|(n, _)| *n == "From" || *n == "MessagingServiceSid")
        );
        assert!(form.iter().any(|(n, _)| *n == "Body"));
    }
}

/// HTTP status, body, and how to send it (`json`, `html`, or `hang` past the client's timeout).
type Response = (u16, String, &'static str);

/// A provider that answers each request with the next canned response, and keeps what it got.
#[derive(Clone, Default)]
struct Canned {
    responses: Arc<Mutex<Vec<Response>>>,
    received: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn calls(
    State(canned): State<Canned>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    canned.received.lock().unwrap().push(form);
    let (status, body, kind) = canned.responses.lock().unwrap().remove(0);
    if kind == "hang" {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let content_type = if kind == "html" {
        "text/html"
    } else {
        "application/json"
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", content_type)],
        body,
    )
}

async fn serve(canned: Canned) -> String {
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(calls))
        .with_state(canned);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn provider_answers_map_to_what_happens_next() {
    let canned = Canned::default();
    *canned.responses.lock().unwrap() = vec![
        (201, r#"{"sid":"CA0123456789abcdef0123456789abcdef","status":"queued"}"#.into(), "json"),
        (400, r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#.into(), "json"),
        (400, r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#.into(), "json"),
        (400, r#"{"code":21614,"message":"'To' number is not a valid mobile number","status":400}"#.into(), "json"),
        (429, r#"{"code":20429,"message":"Too Many Requests","status":429}"#.into(), "json"),
        (503, "<html><body>Service Unavailable</body></html>".into(), "html"),
        (200, "<html>hello</html>".into(), "html"),
        (201, "{}".into(), "hang"),
    ];
    let base = serve(canned.clone()).await;
    let client = TwilioClient::new(
        &base,
        "AC123",
        Secret::new("token"),
        Duration::from_millis(800),
    );
    let req = request();
    assert_eq!(
        client.place_call(&req).await.unwrap().provider_id,
        "CA0123456789abcdef0123456789abcdef"
    );
    assert!(
        matches!(client.place_call(&req).await, Err(ProviderError::InvalidNumber { code }) if code == "21211")
    );
    assert!(matches!(
        client.place_call(&req).await,
        Err(ProviderError::OptedOut { .. })
    ));
    // Not a mobile: an SMS's answer, which says nothing of a call; the call is tried again later.
    assert!(matches!(
        client.place_call(&req).await,
        Err(ProviderError::Retry { .. })
    ));
    assert!(matches!(
        client.place_call(&req).await,
        Err(ProviderError::Retry { .. })
    ));
    assert!(matches!(
        client.place_call(&req).await,
        Err(ProviderError::Retry { .. })
    ));
    assert!(matches!(
        client.place_call(&req).await,
        Err(ProviderError::Unclear { .. })
    ));
    assert!(matches!(
        client.place_call(&req).await,
        Err(ProviderError::Unclear { .. })
    ));
    let received = canned.received.lock().unwrap();
    assert_eq!(received.len(), 8);
    assert_eq!(received[0]["To"], "+34612345678");
    assert_eq!(received[0]["MachineDetection"], "DetectMessageEnd");
}

#[tokio::test]
async fn a_refused_connection_is_safe_to_retry() {
    let client = TwilioClient::new(
        "http://127.0.0.1:1",
        "AC123",
        Secret::new("token"),
        Duration::from_millis(500),
    );
    assert!(matches!(
        client.place_call(&request()).await,
        Err(ProviderError::Retry { .. })
    ));
}
