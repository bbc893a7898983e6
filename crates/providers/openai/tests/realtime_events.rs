//! The Realtime event parser and builders on the spec's example messages
//! (`providers.md` §5.3).

use serde_json::{Value, json};
use voxline_audio::AudioFormat;
use voxline_openai::realtime::events::{
    self, ApiError, FunctionCall, ServerEvent, TokenUsage, TranscriptionUsage, WireFormat,
};

#[test]
fn error_event_keeps_type_code_message_param_and_event_id() {
    let e = ServerEvent::parse(
        r#"{"type":"error","event_id":"event_1","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"Unknown parameter: 'session.temperature'.","param":"session.temperature","event_id":"evt_client_7"}}"#,
    )
    .expect("parse");
    assert_eq!(
        e,
        ServerEvent::Error(ApiError {
            kind: "invalid_request_error".into(),
            code: Some("unknown_parameter".into()),
            message: "Unknown parameter: 'session.temperature'.".into(),
            param: Some("session.temperature".into()),
            event_id: Some("evt_client_7".into()),
        })
    );
    // The truncation error has no code.
    let e = ServerEvent::parse(
        r#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":null,"message":"Audio content of 9250ms is already shorter than 57340ms","param":null,"event_id":null}}"#,
    )
    .expect("parse");
    let ServerEvent::Error(e) = e else {
        panic!("not an error")
    };
    assert_eq!(e.code, None);
}

#[test]
fn response_done_gives_status_reason_calls_and_usage() {
    let e = ServerEvent::parse(
        &json!({"type": "response.done", "event_id": "e", "response": {
            "id": "resp_1", "object": "realtime.response", "status": "completed",
            "status_details": null,
            "output": [
                {"id": "item_1", "type": "function_call", "call_id": "call_abc",
                 "name": "lookup_order", "arguments": "{\"order_id\":\"A1\"}"},
                {"id": "item_2", "type": "message", "role": "assistant", "content": []}],
            "usage": {"total_tokens": 180, "input_tokens": 150, "output_tokens": 30,
                "input_token_details": {"text_tokens": 50, "audio_tokens": 100, "image_tokens": 0,
                    "cached_tokens": 20, "cached_tokens_details": {"text_tokens": 20, "audio_tokens": 0, "image_tokens": 0}},
                "output_token_details": {"text_tokens": 5, "audio_tokens": 25}}}})
        .to_string(),
    )
    .expect("parse");
    let ServerEvent::ResponseDone(done) = e else {
        panic!("not response.done: {e:?}")
    };
    assert_eq!(done.id, "resp_1");
    assert_eq!(done.status, "completed");
    assert_eq!(
        done.function_calls,
        vec![FunctionCall {
            call_id: "call_abc".into(),
            name: "lookup_order".into(),
            arguments: r#"{"order_id":"A1"}"#.into(),
        }]
    );
    assert_eq!(
        done.usage,
        Some(TokenUsage {
            input: 150,
            output: 30,
            input_audio: 100,
            output_audio: 25,
        })
    );

    let cancelled = ServerEvent::parse(
        r#"{"type":"response.done","response":{"id":"resp_2","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"},"output":[]}}"#,
    )
    .expect("parse");
    let ServerEvent::ResponseDone(done) = cancelled else {
        panic!()
    };
    assert_eq!(done.reason.as_deref(), Some("turn_detected"));
    assert_eq!(done.usage, None);
}

#[test]
fn audio_deltas_decode_base64_and_reject_garbage() {
    let e = ServerEvent::parse(
        r#"{"type":"response.output_audio.delta","response_id":"resp_1","item_id":"item_9","output_index":0,"content_index":0,"delta":"/38A"}"#,
    )
    .expect("parse");
    assert_eq!(
        e,
        ServerEvent::AudioDelta {
            response_id: "resp_1".into(),
            item_id: "item_9".into(),
            audio: vec![0xFF, 0x7F, 0x00],
        }
    );
    assert!(
        ServerEvent::parse(
            r#"{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"not base64!"}"#
        )
        .is_err()
    );
    assert!(
        ServerEvent::parse(r#"{"type":"response.output_audio.delta","item_id":"i"}"#).is_err(),
        "missing fields"
    );
    assert!(ServerEvent::parse("not json").is_err());
}

#[test]
fn vad_transcription_and_function_call_events_parse() {
    assert_eq!(
        ServerEvent::parse(r#"{"type":"input_audio_buffer.speech_started","audio_start_ms":1012,"item_id":"item_1"}"#).expect("parse"),
        ServerEvent::SpeechStarted { item_id: "item_1".into(), audio_start_ms: 1012 }
    );
    assert_eq!(
        ServerEvent::parse(
            r#"{"type":"input_audio_buffer.speech_stopped","audio_end_ms":2080,"item_id":"item_1"}"#
        )
        .expect("parse"),
        ServerEvent::SpeechStopped { audio_end_ms: 2080 }
    );
    assert_eq!(
        ServerEvent::parse(r#"{"type":"conversation.item.input_audio_transcription.completed","item_id":"item_1","content_index":0,"transcript":"Where is A1?","usage":{"type":"duration","seconds":1.5}}"#).expect("parse"),
        ServerEvent::InputTranscriptDone {
            item_id: "item_1".into(),
            transcript: "Where is A1?".into(),
            usage: Some(TranscriptionUsage::Duration(1.5)),
        }
    );
    assert_eq!(
        ServerEvent::parse(r#"{"type":"response.function_call_arguments.done","call_id":"call_abc","name":"lookup_order","arguments":"{}","item_id":"item_2","response_id":"resp_1","output_index":0}"#).expect("parse"),
        ServerEvent::FunctionCallDone {
            response_id: "resp_1".into(),
            call: FunctionCall { call_id: "call_abc".into(), name: "lookup_order".into(), arguments: "{}".into() },
        }
    );
    assert_eq!(
        ServerEvent::parse(r#"{"type":"response.audio.delta","delta":""}"#).expect("parse"),
        ServerEvent::Beta("response.audio.delta".into()),
        "beta names are recognised as such, not silently dropped"
    );
    assert_eq!(
        ServerEvent::parse(r#"{"type":"rate_limits.updated","rate_limits":[]}"#).expect("parse"),
        ServerEvent::Other("rate_limits.updated".into())
    );
}

#[test]
fn wire_formats_and_their_millisecond_math() {
    assert_eq!(
        WireFormat::for_call(AudioFormat::MULAW_8K),
        WireFormat::Pcmu
    );
    assert_eq!(WireFormat::for_call(AudioFormat::ALAW_8K), WireFormat::Pcma);
    assert_eq!(
        WireFormat::for_call(AudioFormat::PCM16_8K),
        WireFormat::Pcm24k
    );
    assert_eq!(WireFormat::Pcmu.to_json(), json!({"type": "audio/pcmu"}));
    assert_eq!(
        WireFormat::Pcm24k.to_json(),
        json!({"type": "audio/pcm", "rate": 24000})
    );
    // 1 s of audio: 8000 bytes of G.711, 48000 bytes of 24 kHz PCM16.
    assert_eq!(WireFormat::Pcmu.millis(8000), 1000);
    assert_eq!(WireFormat::Pcm24k.millis(48_000), 1000);
    assert_eq!(WireFormat::Pcm24k.millis(8000), 166);
}

#[test]
fn client_events_have_the_spec_shapes() {
    let v = |s: String| serde_json::from_str::<Value>(&s).expect("json");
    assert_eq!(
        v(events::append(&[0xFF, 0x7F, 0x00])),
        json!({"type": "input_audio_buffer.append", "audio": "/38A"})
    );
    assert_eq!(
        v(events::truncate("item_1", 1830)),
        json!({"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 1830})
    );
    assert_eq!(
        v(events::function_output_item(
            "call_abc",
            "{\"status\":\"shipped\"}"
        )),
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output",
               "call_id": "call_abc", "output": "{\"status\":\"shipped\"}"}})
    );
    assert_eq!(
        v(events::message_item("assistant", "Hi")),
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "assistant",
               "content": [{"type": "output_text", "text": "Hi"}]}})
    );
    assert_eq!(
        v(events::response_cancel(Some("resp_1"))),
        json!({"type": "response.cancel", "response_id": "resp_1"})
    );
}
