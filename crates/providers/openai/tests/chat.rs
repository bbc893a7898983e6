//! The chat adapter against the emulator: wire shape, streaming, tool calls,
//! cancellation, errors and retries, usage.

mod common;

use std::time::Duration;

use serde_json::json;
use voxline_core::{
    ChatMessage, ChatRequest, ErrorKind, FinishReason, LanguageModel, LlmEvent, ToolCall,
    ToolDefinition, UsageKind,
};
use voxline_openai::{ChatConfig, OpenAiChat, TokenLimitField};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::openai::{
    ChatScript, ChatStep, Config, ScriptedToolCall, StreamEnd,
};

const PATH: &str = "/v1/chat/completions";

fn chat(api: voxline_openai::ApiConfig) -> OpenAiChat {
    OpenAiChat::new(ChatConfig::with_api(api, "gpt-4.1-mini")).expect("client")
}

fn order_tool() -> ToolDefinition {
    ToolDefinition {
        name: "lookup_order".into(),
        description: "Finds an order".into(),
        parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"]}),
    }
}

async fn events(chat: &OpenAiChat, request: ChatRequest) -> Vec<LlmEvent> {
    let mut stream = chat.stream(request).await.expect("stream starts");
    let mut out = Vec::new();
    while let Some(event) = stream.recv().await {
        out.push(event);
    }
    out
}

#[tokio::test]
async fn streams_text_with_ttfb_finish_and_usage_and_sends_the_documented_request() {
    let emulator = common::emulator(Config {
        chat: vec![ChatScript::text(["Hel", "lo", " there"]).usage(120, 18)],
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    let request = ChatRequest::new(vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user("Hi"),
    ])
    .temperature(0.7)
    .max_tokens(256);
    let events = events(&chat, request).await;

    assert!(
        matches!(events.first(), Some(LlmEvent::Ttfb(t)) if t.provider == "openai"),
        "{events:?}"
    );
    let text: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, ["Hel", "lo", " there"]);
    let tail: Vec<&LlmEvent> = events.iter().rev().take(2).collect();
    assert_eq!(tail[1], &LlmEvent::Finished(FinishReason::Stop));
    match tail[0] {
        LlmEvent::Usage(u) => {
            assert_eq!(
                u.kind,
                UsageKind::Tokens {
                    prompt: 120,
                    completion: 18
                }
            );
            assert!(u.reported);
        }
        other => panic!("usage expected last, got {other:?}"),
    }

    let requests = emulator.requests_to(PATH);
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.status, 200);
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {}", voxline_testkit::emulators::openai::API_KEY).as_str())
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "model": "gpt-4.1-mini",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hi"}],
            "temperature": 0.7,
            "max_completion_tokens": 256,
        })
    );
    let streams = emulator.streams.snapshot();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].end, StreamEnd::Completed);
}

#[tokio::test]
async fn two_parallel_tool_calls_are_accumulated_by_index_across_interleaved_deltas() {
    let emulator = common::emulator(Config {
        chat: vec![
            ChatScript::tool_calls(vec![
                ScriptedToolCall::new("call_a", "lookup_order", ["{\"order", "_id\":", "\"A1\"}"]),
                ScriptedToolCall::new("call_b", "get_weather", ["{\"city\"", ":\"Pune\"}"]),
            ])
            .preceded_by("Checking. "),
        ],
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    let weather = ToolDefinition {
        name: "get_weather".into(),
        description: "Weather now".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    };
    let request = ChatRequest::new(vec![ChatMessage::user("Order A1? Weather?")])
        .tools(vec![order_tool(), weather]);
    let completion = chat
        .stream(request)
        .await
        .expect("stream")
        .collect()
        .await
        .expect("completes");
    assert_eq!(completion.text, "Checking. ");
    assert_eq!(
        completion.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "lookup_order".into(),
                arguments: "{\"order_id\":\"A1\"}".into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Pune\"}".into(),
            },
        ]
    );
    assert_eq!(completion.finish, Some(FinishReason::ToolCalls));
    assert!(completion.usage.is_some());

    let body = &emulator.requests_to(PATH)[0].body;
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "function": {"name": "lookup_order",
            "description": "Finds an order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"]}}})
    );
    assert!(body.get("parallel_tool_calls").is_none());
}

#[tokio::test]
async fn a_tool_round_trip_is_accepted_by_the_strict_emulator() {
    let emulator = common::emulator(Config::default()).await;
    let chat = chat(common::api(&emulator));
    let mut assistant = ChatMessage::assistant("");
    assistant.tool_calls = vec![ToolCall {
        id: "call_abc".into(),
        name: "lookup_order".into(),
        arguments: "{\"order_id\":\"A1\"}".into(),
    }];
    let request = ChatRequest::new(vec![
        ChatMessage::user("Where is order A1?"),
        assistant,
        ChatMessage::tool_result("call_abc", "shipped"),
    ])
    .tools(vec![order_tool()]);
    let completion = chat
        .stream(request)
        .await
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    assert!(!completion.text.is_empty());
    let body = &emulator.requests_to(PATH)[0].body;
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc",
            "type": "function", "function": {"name": "lookup_order",
            "arguments": "{\"order_id\":\"A1\"}"}}]})
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "shipped"})
    );

    // A tool result without its call id is refused before anything is sent.
    let mut orphan = ChatMessage::tool_result("x", "y");
    orphan.tool_call_id = None;
    let e = chat
        .stream(ChatRequest::new(vec![orphan]))
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert_eq!(emulator.requests_to(PATH).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_stream_mid_reply_closes_the_connection_at_once() {
    let words: Vec<String> = (0..50).map(|i| format!("w{i} ")).collect();
    let emulator = common::emulator(Config {
        chat: vec![ChatScript::text(words)],
        // Long pauses between chunks: the adapter must not wait for the next chunk to
        // notice that its consumer is gone.
        chunk_interval: Duration::from_secs(10),
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    let mut stream = chat
        .stream(ChatRequest::new(vec![ChatMessage::user("Talk")]))
        .await
        .expect("stream");
    let mut deltas = 0;
    while deltas < 3 {
        match stream.recv().await.expect("more") {
            LlmEvent::TextDelta(_) => deltas += 1,
            LlmEvent::Ttfb(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let dropped = tokio::time::Instant::now();
    drop(stream); // barge-in
    while emulator.streams.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let streams = emulator.streams.snapshot();
    assert_eq!(streams[0].end, StreamEnd::ClientClosed);
    // keepalive, role chunk and three words: nothing after the drop.
    assert_eq!(streams[0].chunks_sent, 5, "{streams:?}");
    assert!(
        dropped.elapsed() < Duration::from_secs(10),
        "closed before the next chunk was due, not {:?} later",
        dropped.elapsed()
    );
}

#[tokio::test]
async fn wrong_key_is_a_permanent_auth_error_without_retries() {
    let emulator = common::emulator(Config::default()).await;
    let chat = chat(common::api(&emulator).api_key("sk-wrong-key-123456"));
    let e = chat
        .stream(ChatRequest::new(vec![ChatMessage::user("Hi")]))
        .await
        .expect_err("401");
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.status, Some(401));
    assert!(e.message.contains("Incorrect API key provided"), "{e}");
    assert!(e.message.contains("invalid_api_key"), "{e}");
    assert_eq!(
        emulator.requests_to(PATH).len(),
        1,
        "401 must not be retried"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limits_are_retried_after_the_servers_retry_after() {
    let emulator = common::emulator(Config {
        faults: Faults::fail(429, 2),
        retry_after: Some(Duration::from_secs(2)),
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    let started = tokio::time::Instant::now();
    let completion = chat
        .stream(ChatRequest::new(vec![ChatMessage::user("Hi")]))
        .await
        .expect("third try succeeds")
        .collect()
        .await
        .expect("completes");
    assert!(!completion.text.is_empty());
    let statuses: Vec<u16> = emulator
        .requests_to(PATH)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200]);
    // Two pauses of the server's 2 s, not the policy's 100 + 200 ms. (No upper bound:
    // with the clock paused, tokio jumps to the next timer, such as the HTTP pool's
    // idle timeout, whenever the runtime waits on the loopback socket.)
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_bounded_backoff_then_reported() {
    let emulator = common::emulator(Config {
        faults: Faults::fail(500, 10),
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    let started = tokio::time::Instant::now();
    let e = chat
        .stream(ChatRequest::new(vec![ChatMessage::user("Hi")]))
        .await
        .expect_err("keeps failing");
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(e.is_retryable());
    assert!(e.message.contains("The server had an error"), "{e}");
    assert_eq!(emulator.requests_to(PATH).len(), 3, "three attempts in all");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "100 + 200 ms of backoff, got {elapsed:?}"
    );
}

#[tokio::test]
async fn a_cut_stream_ends_with_a_connection_error_and_no_finish() {
    let emulator = common::emulator(Config {
        chat: vec![ChatScript::text(["a", "b", "c", "d", "e"])],
        faults: Faults::disconnect_after(3),
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    let events = events(&chat, ChatRequest::new(vec![ChatMessage::user("Hi")])).await;
    match events.last() {
        Some(LlmEvent::Error(e)) => assert_eq!(e.kind, ErrorKind::Connection, "{e}"),
        other => panic!("error expected last, got {other:?} in {events:?}"),
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, LlmEvent::Finished(_) | LlmEvent::Usage(_)))
    );
    // keepalive comment, role chunk, "a": then cut.
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "a");
    assert_eq!(emulator.streams.snapshot()[0].end, StreamEnd::Cut);

    // The fault hits only the first stream.
    let again = events_ok(&chat).await;
    assert_eq!(again, "abcde");
}

async fn events_ok(chat: &OpenAiChat) -> String {
    chat.stream(ChatRequest::new(vec![ChatMessage::user("Hi")]))
        .await
        .expect("stream")
        .collect()
        .await
        .expect("completes")
        .text
}

#[tokio::test]
async fn an_error_object_mid_stream_becomes_an_error_event() {
    let emulator = common::emulator(Config {
        chat: vec![ChatScript {
            steps: vec![
                ChatStep::Text("Sure".into()),
                ChatStep::Error {
                    message: "The server had an error while processing your request.".into(),
                    kind: "server_error".into(),
                },
            ],
            ..ChatScript::text(["x"])
        }],
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    let events = events(&chat, ChatRequest::new(vec![ChatMessage::user("Hi")])).await;
    assert!(events.contains(&LlmEvent::TextDelta("Sure".into())));
    match events.last() {
        Some(LlmEvent::Error(e)) => {
            assert_eq!(e.kind, ErrorKind::Server);
            assert!(e.message.contains("processing your request"), "{e}");
        }
        other => panic!("error expected, got {other:?}"),
    }
}

#[tokio::test]
async fn local_servers_get_no_key_and_the_configured_token_limit_field() {
    let emulator = common::emulator(Config {
        api_key: None,
        ..Config::default()
    })
    .await;
    let api = voxline_openai::ApiConfig::new(emulator.base_url()).without_key();
    let chat = OpenAiChat::new(
        ChatConfig::with_api(api, "llama3.1").token_limit_field(TokenLimitField::MaxTokens),
    )
    .expect("client");
    let request = ChatRequest::new(vec![ChatMessage::user("Hi")]).max_tokens(64);
    let text = chat
        .stream(request)
        .await
        .expect("stream")
        .collect()
        .await
        .expect("completes")
        .text;
    assert!(!text.is_empty());
    let sent = &emulator.requests_to(PATH)[0];
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["max_tokens"], json!(64));
    assert!(sent.body.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn the_emulator_rejects_misspelled_fields_and_the_adapter_reports_its_message() {
    // The adapter never misspells; check the mapping of a 400 with a raw request
    // through a config whose model the emulator accepts but whose body is wrong.
    let emulator = common::emulator(Config::default()).await;
    voxline_core::install_tls();
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", emulator.base_url()))
        .bearer_auth(voxline_testkit::emulators::openai::API_KEY)
        .json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_completion_token": 5}),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        body["error"]["message"],
        "Unrecognized request argument supplied: max_completion_token"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn a_finished_reply_leaves_its_connection_for_the_next_request() {
    let emulator = common::emulator(Config {
        chat: vec![ChatScript::text(["One", " two"])],
        // The body's end comes after `[DONE]`, not in the same read.
        chunk_interval: Duration::from_millis(5),
        ..Config::default()
    })
    .await;
    let chat = chat(common::api(&emulator));
    for turn in 0..3 {
        if turn > 0 {
            // The stream ends for the consumer at `[DONE]`; the body's end is read
            // after it. A caller's next turn is seconds away; this stands in for it.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let events = events(&chat, ChatRequest::new(vec![ChatMessage::user("Hi")])).await;
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LlmEvent::Finished(FinishReason::Stop))),
            "{events:?}"
        );
    }
    assert_eq!(emulator.requests_to(PATH).len(), 3);
    assert_eq!(
        emulator.connections(),
        1,
        "each reply's body is read to its end, so one kept-alive connection serves all"
    );
}
