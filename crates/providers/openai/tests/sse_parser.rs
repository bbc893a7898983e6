//! The SSE decoder and chunk parser on the example stream from the spec
//! (providers.md §5.2), fed in every possible two-piece split and byte by byte.

use voxline_core::{ErrorKind, FinishReason, LlmEvent, ToolCall, Usage, UsageKind};
use voxline_openai::ChunkParser;
use voxline_openai::Step;
use voxline_openai::sse::SseDecoder;

/// The spec's example, with its elided fields filled in as the service sends them.
const SPEC_STREAM: &str = concat!(
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{"content":"Let me"},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"lookup_order","arguments":""}}]},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"order_"}}]},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"id\":\"A1\"}"}}]},"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-mini","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":18,"total_tokens":138,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

fn expected() -> Vec<LlmEvent> {
    vec![
        LlmEvent::TextDelta("Let me".into()),
        LlmEvent::ToolCall(ToolCall {
            id: "call_abc".into(),
            name: "lookup_order".into(),
            arguments: r#"{"order_id":"A1"}"#.into(),
        }),
        LlmEvent::Finished(FinishReason::ToolCalls),
        LlmEvent::Usage(Usage {
            provider: "openai",
            kind: UsageKind::Tokens {
                prompt: 120,
                completion: 18,
            },
            reported: true,
        }),
    ]
}

/// Decodes and parses `pieces`; the events, and whether `[DONE]` was seen.
fn run(pieces: &[&[u8]]) -> (Vec<LlmEvent>, bool) {
    let mut decoder = SseDecoder::new();
    let mut parser = ChunkParser::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut done = false;
    for piece in pieces {
        decoder.push(piece, &mut events).expect("within limits");
        for event in events.drain(..) {
            assert!(!done, "nothing after [DONE]");
            if parser.feed(&event, &mut out).expect("valid") == Step::Done {
                done = true;
            }
        }
    }
    (out, done)
}

#[test]
fn the_spec_example_parses_at_every_split_point() {
    let bytes = SPEC_STREAM.as_bytes();
    for split in 0..=bytes.len() {
        let (events, done) = run(&[&bytes[..split], &bytes[split..]]);
        assert!(done, "split at {split}");
        assert_eq!(events, expected(), "split at {split}");
    }
}

#[test]
fn the_spec_example_parses_byte_by_byte_with_crlf_and_keepalives() {
    let crlf = format!(": keepalive\r\n\r\n{}", SPEC_STREAM.replace('\n', "\r\n"));
    let pieces: Vec<&[u8]> = crlf.as_bytes().chunks(1).collect();
    let (events, done) = run(&pieces);
    assert!(done);
    assert_eq!(events, expected());
}

#[test]
fn multi_line_data_is_joined_before_parsing() {
    // A JSON payload spread over two data: lines is one event joined by LF.
    let fixed = b"data: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"hi\"}}]}\n\n";
    let (events, done) = run(&[fixed]);
    assert!(!done);
    assert_eq!(events, [LlmEvent::TextDelta("hi".into())]);
}

#[test]
fn the_first_token_is_flagged_for_ttfb_but_the_role_chunk_is_not_a_token() {
    let mut parser = ChunkParser::new();
    let mut out = Vec::new();
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    decoder
        .push(
            SPEC_STREAM.split("\n\n").next().expect("first").as_bytes(),
            &mut events,
        )
        .expect("ok");
    decoder.push(b"\n\n", &mut events).expect("ok");
    parser.feed(&events[0], &mut out).expect("ok");
    assert!(!parser.started());
    assert!(out.is_empty());
}

#[test]
fn an_error_payload_fails_the_stream_with_its_message() {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    decoder
        .push(
            br#"data: {"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}

"#,
            &mut events,
        )
        .expect("ok");
    let e = ChunkParser::new()
        .feed(&events[0], &mut Vec::new())
        .expect_err("error");
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert!(e.message.starts_with("Rate limit reached"), "{e}");
}

#[test]
fn cumulative_usage_keeps_the_latest_and_a_missing_done_after_finish_is_tolerated() {
    let stream = concat!(
        r#"data: {"choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
        "\n\n",
    );
    let (mut events, done) = run(&[stream.as_bytes()]);
    assert!(!done);
    let mut parser = ChunkParser::new();
    let mut decoder = SseDecoder::new();
    let mut sse = Vec::new();
    decoder.push(stream.as_bytes(), &mut sse).expect("ok");
    events.clear();
    for e in &sse {
        parser.feed(e, &mut events).expect("ok");
    }
    parser
        .end_of_stream(&mut events)
        .expect("finished before the end");
    assert_eq!(
        events.last(),
        Some(&LlmEvent::Usage(Usage {
            provider: "openai",
            kind: UsageKind::Tokens {
                prompt: 5,
                completion: 2
            },
            reported: true
        }))
    );

    // Without a finish reason the end of the body is a cut.
    let mut parser = ChunkParser::new();
    parser.feed(&sse[0], &mut Vec::new()).expect("ok");
    let e = parser.end_of_stream(&mut Vec::new()).expect_err("cut");
    assert_eq!(e.kind, ErrorKind::Connection);
}

#[test]
fn garbage_payloads_are_protocol_errors_not_panics() {
    for data in ["{not json", "[1,2]", "{\"choices\":\"x\"}", "\u{0}"] {
        let event = voxline_openai::sse::SseEvent {
            event: None,
            data: data.into(),
        };
        let e = ChunkParser::new()
            .feed(&event, &mut Vec::new())
            .expect_err(data);
        assert_eq!(e.kind, ErrorKind::Protocol, "{data}");
    }
}
