//! Voxline's own protocol for browser and app clients (`docs/protocols.md`, "Voxline"):
//! every client message decodes to its event, every command encodes to the exact JSON,
//! and what the server sends decodes back as the client would read it.

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_telephony::{
    BotCommand, CallEvent, DecodeError, Decoded, Dialect, Dtmf, EncodeError, ModeChange, Modes,
    Session, SessionConfig, Stop, TextRole, WsFrame,
};

const START: &str = r#"{"event":"start","call_id":"web-1","sample_rate":16000,"encoding":"pcm16",
    "modes":{"voice_input":true,"text_input":true,"voice_output":false,"text_output":true},
    "custom":{"tenant":"abc","lead":{"id":7}}}"#;

fn voxline() -> Session {
    Session::new(SessionConfig::new(Dialect::Voxline, "conn-42"))
}

fn started() -> Session {
    let mut s = voxline();
    start(&mut s, START);
    s
}

fn before_start(e: &DecodeError, name: &str) -> bool {
    matches!(e, DecodeError::BeforeStart { dialect: Dialect::Voxline, event } if event == name)
}

#[test]
fn start_gives_the_call_its_format_modes_and_custom() {
    let mut s = Session::new(
        SessionConfig::new(Dialect::Voxline, "conn-42")
            .with_url_query(Some("voice_input=false&tenant=url&who=J%C3%BCrgen+M&flag")),
    );
    assert_eq!(s.format(), AudioFormat::PCM16_16K);
    let info = start(&mut s, START);
    assert_eq!(info.dialect, Dialect::Voxline);
    assert_eq!(info.call_id, "web-1");
    assert_eq!(info.stream_id, None);
    assert_eq!(
        (info.from, info.to, info.account, info.direction),
        (None, None, None, None)
    );
    assert_eq!(info.format, AudioFormat::PCM16_16K);
    // The URL's pairs (strings), the start's `custom` on top, then the modes.
    assert_eq!(
        json!(info.custom),
        json!({
            "voice_input": true, "text_input": true, "voice_output": false,
            "text_output": true, "tenant": "abc", "lead": {"id": 7},
            "who": "Jürgen M", "flag": ""
        })
    );
    assert_eq!(s.info().map(|i| i.call_id.as_str()), Some("web-1"));
}

#[test]
fn every_start_field_is_optional() {
    let mut s = Session::new(
        SessionConfig::new(Dialect::Voxline, "conn-42").with_url_query(Some("text_input=true")),
    );
    let info = start(&mut s, r#"{"event":"start"}"#);
    assert_eq!(info.call_id, "conn-42");
    assert_eq!(info.format, AudioFormat::PCM16_16K);
    assert_eq!(json!(info.custom), json!({"text_input": "true"}));
    // Explicit nulls are absent too.
    let info = start(
        &mut voxline(),
        r#"{"event":"start","call_id":null,"sample_rate":null,"encoding":null,"modes":null,"custom":null}"#,
    );
    assert_eq!(info.call_id, "conn-42");
    assert!(info.custom.is_empty());
    // Some modes only.
    let info = start(
        &mut voxline(),
        r#"{"event":"start","modes":{"text_output":false}}"#,
    );
    assert_eq!(json!(info.custom), json!({"text_output": false}));
}

#[test]
fn start_formats() {
    for (fields, format) in [
        (r#""sample_rate":8000"#, AudioFormat::PCM16_8K),
        (r#""sample_rate":"24000""#, AudioFormat::PCM16_24K),
        (
            r#""sample_rate":48000,"encoding":"pcm16""#,
            AudioFormat::new(voxline_audio::Encoding::Pcm16, 48000),
        ),
        (r#""encoding":"mulaw""#, AudioFormat::MULAW_8K),
        (
            r#""encoding":"MULAW","sample_rate":8000"#,
            AudioFormat::MULAW_8K,
        ),
        (r#""encoding":"alaw""#, AudioFormat::ALAW_8K),
    ] {
        let mut s = voxline();
        let info = start(&mut s, &format!(r#"{{"event":"start",{fields}}}"#));
        assert_eq!(info.format, format, "{fields}");
        let frame = s.outbound_frame_size();
        assert_eq!(
            (frame.unit(), frame.frame()),
            (format.bytes_per_sample(), format.frame_bytes(20)),
            "{fields}"
        );
    }
    let mut s = voxline();
    for (fields, path) in [
        (r#""sample_rate":44100"#, "sample_rate"),
        (r#""sample_rate":-1"#, "sample_rate"),
        (r#""sample_rate":"fast""#, "sample_rate"),
        (r#""encoding":"mulaw","sample_rate":16000"#, "sample_rate"),
        (r#""encoding":"alaw","sample_rate":48000"#, "sample_rate"),
        (r#""encoding":"opus""#, "encoding"),
        (r#""encoding":16"#, "encoding"),
        (r#""call_id":"""#, "call_id"),
        (r#""call_id":5"#, "call_id"),
        (r#""modes":[true]"#, "modes"),
        (r#""modes":{"voice_input":"yes"}"#, "modes.voice_input"),
        (r#""modes":{"text_output":1}"#, "modes.text_output"),
        (r#""custom":"a=b""#, "custom"),
    ] {
        let e = refuse(&mut s, &format!(r#"{{"event":"start",{fields}}}"#));
        assert!(is_invalid(&e, path), "{fields}: {e}");
    }
    assert!(s.info().is_none(), "a refused start changes nothing");
    assert_eq!(
        refuse(&mut s, r#"{"event":"start","sample_rate":44100}"#).to_string(),
        "voxline: `start` message has a bad `sample_rate`: 44100 Hz: pcm16 streams at 8000, 16000, 24000, 48000 Hz"
    );
}

#[test]
fn client_messages_after_start() {
    let mut s = started();
    let pcm = audio(640);
    let chunk = media(
        &mut s,
        &format!(r#"{{"event":"media","audio":"{}"}}"#, b64(&pcm)),
    );
    assert_eq!(chunk.payload, pcm);
    assert_eq!(
        (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
        (None, None, None)
    );
    // Binary frames carry the raw bytes, without a copy.
    match s.decode(&WsFrame::Binary(pcm.clone())) {
        Ok(Decoded::Event(CallEvent::Media(chunk))) => assert_eq!(chunk.payload, pcm),
        other => panic!("{other:?}"),
    }
    // Odd byte counts pass as they are, as Exotel and Vonage media does.
    assert_eq!(
        media(&mut s, r#"{"event":"media","audio":"AAEC"}"#).payload,
        Bytes::from_static(&[0, 1, 2])
    );
    assert_eq!(
        event(
            &mut s,
            r#"{"event":"text_message","text":"What are your hours?"}"#
        ),
        CallEvent::Text {
            text: "What are your hours?".into()
        }
    );
    assert_eq!(
        event(
            &mut s,
            r#"{"event":"mode_change","voice_output":false,"text_output":true}"#
        ),
        CallEvent::ModeChange(ModeChange {
            voice_input: None,
            text_input: None,
            voice_output: Some(false),
            text_output: Some(true),
        })
    );
    assert_eq!(
        event(&mut s, r#"{"event":"mode_change"}"#),
        CallEvent::ModeChange(ModeChange::default())
    );
    assert_eq!(
        event(&mut s, r#"{"event":"dtmf","digit":"5"}"#),
        CallEvent::Dtmf(Dtmf {
            digit: '5',
            duration_ms: None
        })
    );
    assert_eq!(
        event(&mut s, r#"{"event":"mark","name":"turn-3-end"}"#),
        CallEvent::Mark {
            name: "turn-3-end".into()
        }
    );
    assert_eq!(
        event(&mut s, r#"{"event":"stop"}"#),
        CallEvent::Stop(Stop::default())
    );
    assert_eq!(
        decode(&mut s, r#"{"event":"typing","on":true}"#),
        Decoded::Ignored {
            event: "typing".into()
        }
    );
}

#[test]
fn malformed_client_messages_name_the_field() {
    let mut s = started();
    for (json, path, missing) in [
        (r#"{"event":"media"}"#, "audio", true),
        (r#"{"event":"media","audio":null}"#, "audio", true),
        (r#"{"event":"media","audio":"AAA"}"#, "audio", false),
        (r#"{"event":"media","audio":"AA-_"}"#, "audio", false),
        (r#"{"event":"media","audio":5}"#, "audio", false),
        (r#"{"event":"text_message"}"#, "text", true),
        (r#"{"event":"text_message","text":""}"#, "text", false),
        (r#"{"event":"text_message","text":["hi"]}"#, "text", false),
        (
            r#"{"event":"mode_change","voice_input":"off"}"#,
            "voice_input",
            false,
        ),
        (r#"{"event":"dtmf"}"#, "digit", true),
        (r#"{"event":"dtmf","digit":"x"}"#, "digit", false),
        (r#"{"event":"mark"}"#, "name", true),
        (r#"{"event":"mark","name":7}"#, "name", false),
        (r#"{"event":"stop","reason":1}"#, "reason", false),
    ] {
        let e = refuse(&mut s, json);
        let ok = if missing {
            is_missing(&e, path)
        } else {
            is_invalid(&e, path)
        };
        assert!(ok, "{json}: {e}");
    }
    assert!(is_missing(&refuse(&mut s, r#"{"audio":"AAAA"}"#), "event"));
    assert!(matches!(
        refuse(&mut s, "[1]"),
        DecodeError::Json {
            dialect: Dialect::Voxline,
            ..
        }
    ));
    assert_eq!(s.info().map(|i| i.call_id.as_str()), Some("web-1"));
}

#[test]
fn nothing_but_start_before_start() {
    let mut s = voxline();
    for (json, name) in [
        (r#"{"event":"media","audio":"AAAA"}"#, "media"),
        (r#"{"event":"text_message","text":"hi"}"#, "text_message"),
        (
            r#"{"event":"mode_change","voice_input":false}"#,
            "mode_change",
        ),
        (r#"{"event":"dtmf","digit":"1"}"#, "dtmf"),
        (r#"{"event":"mark","name":"m"}"#, "mark"),
        (r#"{"event":"stop"}"#, "stop"),
    ] {
        assert!(before_start(&refuse(&mut s, json), name), "{json}");
    }
    let e = s
        .decode(&WsFrame::Binary(audio(640)))
        .expect_err("binary before start");
    assert!(before_start(&e, "media"), "{e}");
    assert_eq!(e.to_string(), "voxline: `media` message before `start`");
    // Unknown events are ignored, before the start as after it.
    assert_eq!(
        decode(&mut s, r#"{"event":"hello"}"#),
        Decoded::Ignored {
            event: "hello".into()
        }
    );
    // A second start replaces the first.
    start(&mut s, r#"{"event":"start","call_id":"a"}"#);
    let info = start(
        &mut s,
        r#"{"event":"start","call_id":"b","encoding":"mulaw"}"#,
    );
    assert_eq!(s.info(), Some(&info));
    assert_eq!(s.format(), AudioFormat::MULAW_8K);
}

#[test]
fn commands_encode_to_the_exact_json() {
    let mut s = started();
    assert!(s.supports_text());
    let pcm = audio(640);
    assert_eq!(
        encode(&mut s, BotCommand::Play(pcm.clone())),
        [WsFrame::Text(format!(
            r#"{{"event":"media","audio":"{}"}}"#,
            b64(&pcm)
        ))]
    );
    // Any whole number of samples goes out as one message.
    assert_eq!(encode(&mut s, BotCommand::Play(audio(2))).len(), 1);
    for bad in [0, 1, 641] {
        assert_eq!(
            encode_err(&mut s, BotCommand::Play(audio(bad))),
            EncodeError::ChunkSize {
                dialect: Dialect::Voxline,
                len: bad,
                unit: 2
            }
        );
    }
    let golden: [(BotCommand, &str); 7] = [
        (
            BotCommand::Mark("turn \"3\" end".into()),
            r#"{"event":"mark","name":"turn \"3\" end"}"#,
        ),
        (BotCommand::Clear, r#"{"event":"clear"}"#),
        (
            BotCommand::Text {
                role: TextRole::Caller,
                text: "what are your\nhours".into(),
                is_final: false,
            },
            r#"{"event":"transcript","role":"user","text":"what are your\nhours","final":false}"#,
        ),
        (
            BotCommand::Text {
                role: TextRole::Bot,
                text: "We open at 9.".into(),
                is_final: true,
            },
            r#"{"event":"transcript","role":"bot","text":"We open at 9.","final":true}"#,
        ),
        (
            BotCommand::Modes(Modes::default()),
            r#"{"event":"modes","voice_input":true,"text_input":true,"voice_output":true,"text_output":true}"#,
        ),
        (
            BotCommand::Modes(Modes {
                voice_input: false,
                text_input: true,
                voice_output: false,
                text_output: true,
            }),
            r#"{"event":"modes","voice_input":false,"text_input":true,"voice_output":false,"text_output":true}"#,
        ),
        (
            BotCommand::Text {
                role: TextRole::Bot,
                text: String::new(),
                is_final: true,
            },
            r#"{"event":"transcript","role":"bot","text":"","final":true}"#,
        ),
    ];
    for (command, want) in golden {
        assert_eq!(
            encode(&mut s, command.clone()),
            [WsFrame::Text(want.to_owned())],
            "{command:?}"
        );
    }
    assert_eq!(
        encode(&mut s, BotCommand::Hangup),
        [
            WsFrame::Text(r#"{"event":"hangup"}"#.into()),
            WsFrame::Close {
                code: 1000,
                reason: "hangup".into()
            }
        ]
    );
    assert_eq!(
        encode_err(&mut s, BotCommand::Mark(String::new())),
        EncodeError::EmptyMarkName {
            dialect: Dialect::Voxline
        }
    );
    assert_eq!(
        encode_err(&mut s, BotCommand::Transfer { to: "+1".into() }),
        EncodeError::Unsupported {
            dialect: Dialect::Voxline,
            command: "transfer"
        }
    );
}

#[test]
fn commands_need_no_start() {
    let mut s = voxline();
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({"event":"clear"})
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Modes(Modes::default()))["event"],
        "modes"
    );
    // 20 ms of the default PCM16 16 kHz.
    assert_eq!(s.outbound_frame_size().frame(), 640);
}

#[test]
fn other_dialects_refuse_text_and_modes() {
    for dialect in Dialect::ALL {
        let mut s = session(dialect);
        assert_eq!(s.supports_text(), dialect == Dialect::Voxline, "{dialect}");
        if dialect == Dialect::Voxline {
            continue;
        }
        for (command, name) in [
            (
                BotCommand::Text {
                    role: TextRole::Bot,
                    text: "hi".into(),
                    is_final: true,
                },
                "text",
            ),
            (BotCommand::Modes(Modes::default()), "modes"),
        ] {
            assert_eq!(
                encode_err(&mut s, command),
                EncodeError::Unsupported {
                    dialect,
                    command: name
                }
            );
        }
    }
}

#[test]
fn modes_apply_a_change() {
    let modes = Modes::default().apply(ModeChange {
        voice_output: Some(false),
        ..ModeChange::default()
    });
    assert_eq!(
        modes,
        Modes {
            voice_input: true,
            text_input: true,
            voice_output: false,
            text_output: true,
        }
    );
    assert_eq!(modes.apply(ModeChange::default()), modes);
}

proptest! {
    /// What the server sends is what a client reads back: audio, mark names and text
    /// survive any content.
    #[test]
    fn sent_messages_decode_back(
        samples in 1usize..2000,
        seed in any::<u8>(),
        name in ".{1,30}",
        text in ".{0,60}",
        is_final in any::<bool>(),
        bot in any::<bool>(),
    ) {
        let mut s = started();
        let pcm: Vec<u8> = (0..samples * 2).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let mut out = Vec::new();
        s.encode(&BotCommand::Play(Bytes::from(pcm.clone())), &mut out).expect("play");
        s.encode(&BotCommand::Mark(name.clone()), &mut out).expect("mark");
        let role = if bot { TextRole::Bot } else { TextRole::Caller };
        s.encode(&BotCommand::Text { role, text: text.clone(), is_final }, &mut out).expect("text");
        prop_assert_eq!(out.len(), 3);
        // The client's media and mark messages have the same shape as ours.
        match s.decode(&out[0]) {
            Ok(Decoded::Event(CallEvent::Media(chunk))) => prop_assert_eq!(&chunk.payload[..], &pcm[..]),
            other => prop_assert!(false, "{:?}", other),
        }
        prop_assert_eq!(s.decode(&out[1]), Ok(Decoded::Event(CallEvent::Mark { name })));
        let v = json_of(&out[2]);
        prop_assert_eq!(
            v,
            json!({"event":"transcript","role": if bot { "bot" } else { "user" },"text":text,"final":is_final})
        );
    }

    /// Any client text message reaches the handler as it was typed.
    #[test]
    fn text_messages_decode_exactly(text in ".{1,80}") {
        let mut s = started();
        let frame = json!({"event":"text_message","text":text}).to_string();
        prop_assert_eq!(
            s.decode(&WsFrame::Text(frame)),
            Ok(Decoded::Event(CallEvent::Text { text }))
        );
    }

    /// Any subset of the four modes decodes to exactly that subset.
    #[test]
    fn mode_changes_decode_exactly(modes in proptest::collection::vec(proptest::option::of(any::<bool>()), 4)) {
        let mut s = started();
        let keys = ["voice_input", "text_input", "voice_output", "text_output"];
        let mut v = serde_json::Map::new();
        v.insert("event".into(), json!("mode_change"));
        for (key, value) in keys.iter().zip(&modes) {
            if let Some(on) = value {
                v.insert((*key).into(), json!(on));
            }
        }
        let want = ModeChange {
            voice_input: modes[0],
            text_input: modes[1],
            voice_output: modes[2],
            text_output: modes[3],
        };
        prop_assert_eq!(
            s.decode(&WsFrame::Text(serde_json::Value::Object(v).to_string())),
            Ok(Decoded::Event(CallEvent::ModeChange(want)))
        );
    }
}
