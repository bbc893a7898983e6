//! Carrier frames are outside input: whatever arrives, decoding and detection return
//! (an event, `Ignored` or an error) and never panic, and a refused frame leaves the
//! session as it was.

use bytes::Bytes;
use proptest::prelude::*;
use voxline_telephony::detect::Detector;
use voxline_telephony::{BotCommand, Dialect, Modes, Session, SessionConfig, TextRole, WsFrame};

/// One valid message of each kind per dialect, to truncate and mutate.
const VALID: [&str; 19] = [
    r#"{"event":"start","call_id":"web-1","sample_rate":16000,"encoding":"pcm16","modes":{"voice_input":true,"text_input":true,"voice_output":false,"text_output":true},"custom":{"k":"v"}}"#,
    r#"{"event":"media","audio":"AAECAwQFBgc="}"#,
    r#"{"event":"text_message","text":"hello"}"#,
    r#"{"event":"mode_change","voice_input":false,"text_output":true}"#,
    r#"{"event":"mark","name":"n"}"#,
    r#"{"event":"connected"}"#,
    r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
    r#"{"event":"start","sequence_number":"1","stream_sid":"MZ1","start":{"stream_sid":"MZ1","call_sid":"CA1","account_sid":"AC1","from":"+91","to":"+92","custom_parameters":{"k":"v"},"media_format":{"encoding":"audio/x-raw","sample_rate":"16000","bit_rate":"16"}}}"#,
    r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC","streamSid":"MZ","callSid":"CA","tracks":["inbound"],"customParameters":{"from_number":"+1"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ"}"#,
    r#"{"event":"start","sequenceNumber":1,"start":{"callId":"c","streamId":"s","accountId":"MA","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}},"extra_headers":"a=1;b=2"}"#,
    r#"{"event":"start","sequence_number":"1","start":{"user_id":"u","call_control_id":"v3:x","client_state":"YQ==","from":"+1","to":"+2","media_format":{"encoding":"L16","sample_rate":16000,"channels":1}},"stream_id":"sid"}"#,
    r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000","uuid":"u1","x":{"y":[1,2]}}"#,
    r#"{"event":"media","sequence_number":"3","stream_sid":"MZ1","media":{"chunk":"2","timestamp":"200","payload":"AAECAwQFBgc="}}"#,
    r#"{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"//////////8="},"streamSid":"MZ"}"#,
    r#"{"event":"media","sequenceNumber":42,"streamId":"s","media":{"track":"inbound","timestamp":"1705312200000","chunk":41,"payload":"AAAA"}}"#,
    r#"{"event":"dtmf","sequence_number":"7","stream_sid":"MZ","dtmf":{"digit":"5","duration":"100"}}"#,
    r#"{"event":"error","error":{"title":"t","code":"100005","detail":"d"}}"#,
    r#"{"event":"websocket:dtmf","digit":"5","duration":260}"#,
    r#"{"event":"playedStream","streamId":"s","name":"n"}"#,
];

fn sessions() -> Vec<Session> {
    let mut all: Vec<Session> = Dialect::ALL
        .into_iter()
        .flat_map(|dialect| {
            [None, Some(16000), Some(44100)].map(|rate| {
                Session::new(
                    SessionConfig::new(dialect, "fallback")
                        .with_url_sample_rate(rate)
                        .with_url_query(Some("voice_input=false&name=a%20b")),
                )
            })
        })
        .collect();
    // Voxline refuses everything but `start` until the call has started: also feed
    // sessions that have, in each format.
    for start in [
        r#"{"event":"start"}"#,
        r#"{"event":"start","encoding":"mulaw"}"#,
        r#"{"event":"start","sample_rate":48000}"#,
    ] {
        let mut session = Session::new(SessionConfig::new(Dialect::Voxline, "fallback"));
        session
            .decode(&WsFrame::Text(start.to_owned()))
            .expect("a valid start");
        all.push(session);
    }
    all
}

/// Decodes `frame` in every dialect, checks a refusal changes nothing, and exercises
/// the encoder on whatever state the frame left.
fn feed(sessions: &mut [Session], frame: &WsFrame) {
    for session in sessions.iter_mut() {
        let before = session.info().cloned();
        let format = session.format();
        if session.decode(frame).is_err() {
            assert_eq!(
                session.info().cloned(),
                before,
                "{:?} refused {frame:?}",
                session.dialect()
            );
            assert_eq!(session.format(), format);
        }
        let size = session.outbound_frame_size();
        assert!(size.unit() > 0 && size.frame() > 0 && size.frame().is_multiple_of(size.unit()));
        let mut out = Vec::new();
        for command in [
            BotCommand::Play(Bytes::from(vec![0u8; size.frame()])),
            BotCommand::Mark("m".into()),
            BotCommand::Clear,
            BotCommand::Text {
                role: TextRole::Caller,
                text: "t\u{0}\"".into(),
                is_final: false,
            },
            BotCommand::Modes(Modes::default()),
        ] {
            let _ = session.encode(&command, &mut out);
        }
    }
    let mut detector = Detector::new();
    for _ in 0..6 {
        let _ = detector.observe(frame);
    }
}

fn feed_text(sessions: &mut [Session], text: String) {
    feed(sessions, &WsFrame::Text(text));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_as_text_and_binary(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut all = sessions();
        feed_text(&mut all, String::from_utf8_lossy(&bytes).into_owned());
        feed(&mut all, &WsFrame::Binary(Bytes::from(bytes)));
    }

    #[test]
    fn arbitrary_strings(text in ".{0,300}") {
        let mut all = sessions();
        feed_text(&mut all, text);
    }

    #[test]
    fn truncated_valid_messages(which in 0..VALID.len(), cut in 0usize..400) {
        let valid = VALID[which];
        let cut = cut.min(valid.len());
        // Cut on a character boundary.
        let cut = (0..=cut).rev().find(|&i| valid.is_char_boundary(i)).unwrap_or(0);
        let mut all = sessions();
        feed_text(&mut all, valid[..cut].to_owned());
    }

    #[test]
    fn mutated_valid_messages(which in 0..VALID.len(), at in 0usize..400, byte in any::<u8>()) {
        let mut bytes = VALID[which].as_bytes().to_vec();
        let at = at % bytes.len();
        bytes[at] = byte;
        let mut all = sessions();
        feed_text(&mut all, String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn any_json_value_in_any_field(
        event in prop_oneof![
            Just("start"), Just("media"), Just("dtmf"), Just("mark"), Just("stop"), Just("error"),
            Just("connected"), Just("playedStream"), Just("websocket:connected"), Just("websocket:dtmf"),
            Just("clear"), Just("clearedAudio"), Just("text_message"), Just("mode_change")
        ],
        key in prop_oneof![
            Just("start"), Just("media"), Just("dtmf"), Just("mark"), Just("stop"), Just("error"),
            Just("stream_sid"), Just("streamSid"), Just("stream_id"), Just("streamId"),
            Just("sequence_number"), Just("sequenceNumber"), Just("extra_headers"), Just("name"),
            Just("digit"), Just("duration"), Just("content-type"), Just("uuid"),
            Just("audio"), Just("text"), Just("modes"), Just("custom"), Just("sample_rate"),
            Just("encoding"), Just("call_id"), Just("voice_input")
        ],
        inner in prop_oneof![
            Just("payload"), Just("chunk"), Just("timestamp"), Just("track"), Just("digit"),
            Just("duration"), Just("name"), Just("reason"), Just("stream_sid"), Just("streamSid"),
            Just("call_sid"), Just("callSid"), Just("callId"), Just("streamId"),
            Just("call_control_id"), Just("custom_parameters"), Just("customParameters"),
            Just("media_format"), Just("mediaFormat"), Just("code"), Just("title"),
            Just("voice_input"), Just("text_output")
        ],
        value in json_value(),
    ) {
        let mut all = sessions();
        let flat = serde_json::json!({"event": event, key: value.clone()});
        feed_text(&mut all, flat.to_string());
        let nested = serde_json::json!({"event": event, key: {inner: value.clone()}});
        feed_text(&mut all, nested.to_string());
        let deep = serde_json::json!({"event": event, "stream_id": "s", key: {
            "stream_sid": "MZ", "streamSid": "MZ", "call_sid": "CA", "callSid": "CA",
            "callId": "c", "streamId": "s", "call_control_id": "v3",
            "media_format": {"encoding": "L16", "sample_rate": value.clone()},
            "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": value.clone()},
            inner: value,
        }});
        feed_text(&mut all, deep.to_string());
    }

    #[test]
    fn bad_base64_payloads(payload in "[A-Za-z0-9+/=_\\-$ ]{0,64}") {
        let mut all = sessions();
        for json in [
            format!(r#"{{"event":"media","media":{{"payload":"{payload}"}}}}"#),
            format!(r#"{{"event":"media","stream_id":"s","media":{{"payload":"{payload}"}}}}"#),
            format!(r#"{{"event":"media","audio":"{payload}"}}"#),
        ] {
            feed_text(&mut all, json);
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        Just(json!("99999999999999999999999999999")),
        Just(json!("-1")),
        ".{0,12}".prop_map(Value::String),
        "[0-9]{0,25}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn huge_numbers_in_raw_json() {
    let mut all = sessions();
    for number in [
        "1e400",
        "-0",
        "18446744073709551616",
        "123456789012345678901234567890",
        "1.5e3",
        "-1e-400",
    ] {
        for template in [
            r#"{"event":"media","sequence_number":N,"sequenceNumber":N,"media":{"chunk":N,"timestamp":N,"payload":""}}"#,
            r#"{"event":"start","start":{"stream_sid":"a","call_sid":"b","streamSid":"a","callSid":"b","callId":"c","streamId":"s","call_control_id":"v","media_format":{"encoding":"L16","sample_rate":N},"mediaFormat":{"encoding":"audio/x-l16","sampleRate":N}}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":N,"duration":N}}"#,
            r#"{"event":"websocket:dtmf","digit":N,"duration":N}"#,
        ] {
            feed_text(&mut all, template.replace('N', number));
        }
    }
}

#[test]
fn deep_nesting() {
    let mut all = sessions();
    let deep = format!(
        r#"{{"event":"media","media":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    feed_text(&mut all, deep);
    let deep = format!(
        r#"{{"event":"start","start":{}}}"#,
        "{\"a\":".repeat(5_000) + "1" + &"}".repeat(5_000)
    );
    feed_text(&mut all, deep);
}
