//! `/webhook` takes carriers' callbacks (a Twilio status callback form-encoded, a JSON
//! body, an Exotel passthru query) and puts each on the event bus under the call id it
//! names, or under `webhook` when it names none.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Bridge, http};
use voxline_gemini::{Gemini, GeminiConfig};
use voxline_server::EventKind;

#[tokio::test]
async fn callbacks_reach_the_event_bus_with_their_call_id() {
    let model = Arc::new(Gemini::new(GeminiConfig::default().api_key("unused")));
    let bridge = Bridge::start(model).await;
    let mut bus = bridge.server.bus().subscribe();

    let requests = [
        (
            "POST",
            "/webhook",
            Some("application/x-www-form-urlencoded"),
            "CallSid=CA0123&CallStatus=completed&From=%2B15550001111&CallDuration=42",
        ),
        (
            "POST",
            "/webhook",
            Some("application/json"),
            r#"{"call_id": "sf-77", "event": "answered", "extra": {"a": 1}}"#,
        ),
        (
            "GET",
            "/webhook?CallSid=ex-9&Status=ringing&CustomField=a+b",
            None,
            "",
        ),
        (
            "POST",
            "/webhook",
            Some("application/json"),
            r#"{"hello": true}"#,
        ),
    ];
    for (method, path, content_type, body) in requests {
        let (status, text) = http(bridge.addr, method, path, content_type, body).await;
        assert_eq!(status, 200, "{method} {path}: {text}");
    }
    let (status, _) = http(
        bridge.addr,
        "POST",
        "/webhook",
        Some("application/json"),
        "{oops",
    )
    .await;
    assert_eq!(status, 400, "a body that claims JSON and is not");

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(Duration::from_secs(5), bus.recv())
            .await
            .expect("an event within 5 s")
            .expect("bus open");
        if let EventKind::Webhook { payload } = &event.kind {
            seen.push((event.call_id.to_string(), payload.clone()));
        }
    }
    assert_eq!(seen[0].0, "CA0123");
    assert_eq!(seen[0].1["CallStatus"], "completed");
    assert_eq!(seen[0].1["From"], "+15550001111");
    assert_eq!(seen[1].0, "sf-77");
    assert_eq!(seen[1].1["extra"]["a"], 1);
    assert_eq!(seen[2].0, "ex-9");
    assert_eq!(seen[2].1["CustomField"], "a b");
    assert_eq!(seen[3].0, "webhook");
    assert_eq!(seen[3].1["hello"], true);
}
