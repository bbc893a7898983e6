//! Exotel Voicebot: the spec's example messages (§1.1, §1.2), its tolerances and its
//! chunk rules.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_telephony::{
    BotCommand, CallEvent, DecodeError, Decoded, Dialect, Dtmf, EncodeError, Stop, WsFrame,
};

const START: &str = r#"{
  "event": "start",
  "sequence_number": "1",
  "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",
  "start": {
    "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",
    "call_sid": "CAxxxxxxxxxxxxxxxxxxxxxxxx",
    "account_sid": "ACxxxxxxxxxxxxxxxxxxxxxxxx",
    "from": "+919876543210",
    "to": "+918047491899",
    "custom_parameters": { "key1": "value1" },
    "media_format": { "encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16" }
  }
}"#;

const SID: &str = "MZxxxxxxxxxxxxxxxxxxxxxxxx";

fn started() -> voxline_telephony::Session {
    let mut s = session(Dialect::Exotel);
    start(&mut s, START);
    s
}

#[test]
fn connected() {
    let mut s = session(Dialect::Exotel);
    assert_eq!(
        event(&mut s, r#"{ "event": "connected" }"#),
        CallEvent::Connected
    );
    assert!(s.info().is_none());
}

#[test]
fn start_gives_every_field() {
    let mut s = session(Dialect::Exotel);
    let info = start(&mut s, START);
    assert_eq!(info.dialect, Dialect::Exotel);
    assert_eq!(info.call_id, "CAxxxxxxxxxxxxxxxxxxxxxxxx");
    assert_eq!(info.stream_id.as_deref(), Some(SID));
    assert_eq!(info.from.as_deref(), Some("+919876543210"));
    assert_eq!(info.to.as_deref(), Some("+918047491899"));
    assert_eq!(info.account.as_deref(), Some("ACxxxxxxxxxxxxxxxxxxxxxxxx"));
    assert_eq!(info.direction, None);
    assert_eq!(json!(info.custom), json!({"key1": "value1"}));
    assert_eq!(info.format, AudioFormat::PCM16_8K);
    assert_eq!(s.info(), Some(&info));
    assert_eq!(s.format(), AudioFormat::PCM16_8K);
}

#[test]
fn media_with_string_numbers() {
    let mut s = started();
    let pcm = audio(1600);
    let chunk = media(
        &mut s,
        &format!(
            r#"{{"event": "media", "sequence_number": "3", "stream_sid": "{SID}",
                "media": {{ "chunk": "2", "timestamp": "200", "payload": "{}" }} }}"#,
            b64(&pcm)
        ),
    );
    assert_eq!(chunk.payload, pcm);
    assert_eq!(chunk.sequence, Some(3));
    assert_eq!(chunk.chunk, Some(2));
    assert_eq!(chunk.timestamp_ms, Some(200));
}

#[test]
fn media_with_integer_numbers() {
    // stream-voicebot-applet.md shows integers.
    let mut s = started();
    let chunk = media(
        &mut s,
        &format!(
            r#"{{"event":"media","sequence_number":1,"stream_sid":"{SID}",
                "media":{{"chunk":2,"timestamp":200,"payload":"{}"}}}}"#,
            b64(&[1, 2, 3, 4])
        ),
    );
    assert_eq!(
        (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
        (Some(1), Some(2), Some(200))
    );
    assert_eq!(chunk.payload, Bytes::from_static(&[1, 2, 3, 4]));
}

#[test]
fn dtmf_mark_stop_clear() {
    let mut s = started();
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "dtmf", "sequence_number": "7", "stream_sid": "MZ…", "dtmf": { "digit": "5", "duration": "100" } }"#
        ),
        CallEvent::Dtmf(Dtmf {
            digit: '5',
            duration_ms: Some(100)
        })
    );
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "mark", "sequence_number": "15", "stream_sid": "MZ…", "mark": { "name": "my-label" } }"#
        ),
        CallEvent::Mark {
            name: "my-label".into()
        }
    );
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "stop", "sequence_number": "20", "stream_sid": "MZ…",
                 "stop": { "call_sid": "CA…", "account_sid": "AC…", "reason": "callended" } }"#
        ),
        CallEvent::Stop(Stop {
            reason: Some("callended".into())
        })
    );
    assert_eq!(
        event(&mut s, r#"{"event":"clear","stream_sid":"MZ…"}"#),
        CallEvent::Clear
    );
    assert_eq!(
        event(&mut s, r#"{"event":"stop","stream_sid":"MZ…"}"#),
        CallEvent::Stop(Stop { reason: None })
    );
}

#[test]
fn unknown_events_are_ignored_by_name() {
    let mut s = started();
    assert_eq!(
        decode(&mut s, r#"{"event":"heartbeat","n":1}"#),
        Decoded::Ignored {
            event: "heartbeat".into()
        }
    );
}

#[test]
fn outbound_messages() {
    let mut s = started();
    let pcm = audio(320);
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(pcm.clone())),
        json!({"event": "media", "stream_sid": SID, "media": {"payload": b64(&pcm)}})
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Mark("turn-3-end".into())),
        json!({"event": "mark", "stream_sid": SID, "mark": {"name": "turn-3-end"}})
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({"event": "clear", "stream_sid": SID})
    );
    assert_eq!(
        encode(&mut s, BotCommand::Hangup),
        [WsFrame::Close {
            code: 1000,
            reason: "hangup".into()
        }]
    );
    assert_eq!(
        encode_err(&mut s, BotCommand::Transfer { to: "+91".into() }),
        EncodeError::Unsupported {
            dialect: Dialect::Exotel,
            command: "transfer"
        }
    );
}

#[test]
fn mark_names_are_escaped() {
    let mut s = started();
    let name = "say \"hi\"\\\n";
    assert_eq!(
        encode_json(&mut s, BotCommand::Mark(name.into())),
        json!({"event": "mark", "stream_sid": SID, "mark": {"name": name}})
    );
}

#[test]
fn chunk_rules_follow_the_rate() {
    for (rate, unit) in [(8000, 320), (16000, 640), (24000, 960)] {
        let mut s = session_with_rate(Dialect::Exotel, Some(rate));
        start(&mut s, START);
        assert_eq!(
            s.format(),
            AudioFormat::new(voxline_audio::Encoding::Pcm16, rate)
        );
        let frame = s.outbound_frame_size();
        assert_eq!((frame.unit(), frame.frame()), (unit, unit * 5), "{rate} Hz");
        for bad in [0, unit / 2, unit + 2, unit * 3 - 1] {
            assert_eq!(
                encode_err(&mut s, BotCommand::Play(audio(bad))),
                EncodeError::ChunkSize {
                    dialect: Dialect::Exotel,
                    len: bad,
                    unit
                }
            );
        }
        assert_eq!(encode(&mut s, BotCommand::Play(audio(unit * 5))).len(), 1);
        assert_eq!(encode(&mut s, BotCommand::Play(audio(unit))).len(), 1);
    }
}

#[test]
fn plays_over_100_kb_are_split() {
    let mut s = started();
    let pcm = audio(320 * 700); // 224,000 bytes, 14 s
    let frames = encode(&mut s, BotCommand::Play(pcm.clone()));
    let mut joined = Vec::new();
    for frame in &frames {
        let v = json_of(frame);
        let payload = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            v["media"]["payload"].as_str().expect("payload"),
        )
        .expect("base64");
        assert!(payload.len() <= 100_000 && payload.len().is_multiple_of(320));
        joined.extend(payload);
    }
    assert_eq!(frames.len(), 3);
    assert_eq!(joined, pcm);
}

#[test]
fn format_sources_in_order() {
    let rate_start = |rate: &str, encoding: &str| {
        format!(
            r#"{{"event":"start","start":{{"stream_sid":"MZ1","call_sid":"CA1",
                "media_format":{{"encoding":"{encoding}","sample_rate":{rate}}}}}}}"#
        )
    };
    // Start's rate, as a string or a number.
    for rate in ["\"16000\"", "16000"] {
        let mut s = session(Dialect::Exotel);
        assert_eq!(
            start(&mut s, &rate_start(rate, "raw/slin")).format,
            AudioFormat::PCM16_16K
        );
    }
    // The URL's rate wins over start's.
    let mut s = session_with_rate(Dialect::Exotel, Some(24000));
    assert_eq!(s.format(), AudioFormat::PCM16_24K);
    assert_eq!(
        start(&mut s, &rate_start("16000", "audio/x-l16")).format,
        AudioFormat::PCM16_24K
    );
    // An invalid URL rate is ignored; an invalid start rate too.
    let mut s = session_with_rate(Dialect::Exotel, Some(44100));
    assert_eq!(s.format(), AudioFormat::PCM16_8K);
    assert_eq!(
        start(&mut s, &rate_start("\"fast\"", "raw")).format,
        AudioFormat::PCM16_8K
    );
    let mut s = session(Dialect::Exotel);
    assert_eq!(
        start(&mut s, &rate_start("11025", "raw")).format,
        AudioFormat::PCM16_8K
    );
    // No media_format at all.
    let mut s = session_with_rate(Dialect::Exotel, Some(16000));
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"stream_sid":"MZ1","call_sid":"CA1"}}"#,
    );
    assert_eq!(info.format, AudioFormat::PCM16_16K);
    // Mu-law (the ExoML / Legs API path) is 8 kHz whatever the rates say.
    let mut s = session_with_rate(Dialect::Exotel, Some(16000));
    let info = start(&mut s, &rate_start("8000", "audio/x-mulaw"));
    assert_eq!(info.format, AudioFormat::MULAW_8K);
    let frame = s.outbound_frame_size();
    assert_eq!((frame.unit(), frame.frame()), (160, 800));
}

#[test]
fn camel_case_ids_inside_start_and_at_top_level() {
    let mut s = session(Dialect::Exotel);
    let info = start(
        &mut s,
        r#"{"event":"start","sequenceNumber":1,"start":{"streamSid":"MZc","callSid":"CAc",
            "accountSid":"ACc","customParameters":{"a":"b"},
            "mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}}}"#,
    );
    assert_eq!(
        (
            info.call_id.as_str(),
            info.stream_id.as_deref(),
            info.account.as_deref()
        ),
        ("CAc", Some("MZc"), Some("ACc"))
    );
    assert_eq!(json!(info.custom), json!({"a": "b"}));
    assert_eq!(info.format, AudioFormat::PCM16_16K);

    let mut s = session(Dialect::Exotel);
    let info = start(
        &mut s,
        r#"{"event":"start","streamSid":"MZtop","callSid":"CAtop","start":{"from":"0731"}}"#,
    );
    assert_eq!(
        (info.call_id.as_str(), info.stream_id.as_deref()),
        ("CAtop", Some("MZtop"))
    );
    assert_eq!(info.from.as_deref(), Some("0731"));
    let chunk = media(
        &mut s,
        r#"{"event":"media","sequenceNumber":"9","streamSid":"MZtop","media":{"chunk":"1","payload":"AAA="}}"#,
    );
    assert_eq!((chunk.sequence, chunk.payload.len()), (Some(9), 2));
}

#[test]
fn custom_parameters_as_a_json_string() {
    let mut s = session(Dialect::Exotel);
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"stream_sid":"MZ1","call_sid":"CA1",
            "custom_parameters":"{\"lead\":\"42\",\"n\":3}"}}"#,
    );
    assert_eq!(json!(info.custom), json!({"lead": "42", "n": 3}));
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"stream_sid":"MZ1","call_sid":"CA1","custom_parameters":""}}"#,
    );
    assert!(info.custom.is_empty());
    // Not JSON: `k=v` pairs are read as such, anything else kept whole; the call starts.
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"stream_sid":"MZ1","call_sid":"CA1","custom_parameters":"k=v&lead=7"}}"#,
    );
    assert_eq!(json!(info.custom), json!({"k": "v", "lead": "7"}));
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"stream_sid":"MZ1","call_sid":"CA1","custom_parameters":"just text"}}"#,
    );
    assert_eq!(json!(info.custom), json!({"raw": "just text"}));
}

#[test]
fn nothing_is_sent_before_start() {
    let mut s = session(Dialect::Exotel);
    for (command, name) in [
        (BotCommand::Play(audio(320)), "play"),
        (BotCommand::Mark("m".into()), "mark"),
        (BotCommand::Clear, "clear"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::NoStreamId {
                dialect: Dialect::Exotel,
                command: name
            }
        );
    }
    assert_eq!(
        encode_err(&mut s, BotCommand::Mark(String::new())),
        EncodeError::EmptyMarkName {
            dialect: Dialect::Exotel
        }
    );
}

#[test]
fn strict_fields_name_their_paths() {
    let mut s = session(Dialect::Exotel);
    let cases = [
        (
            r#"{"event":"start","start":{"call_sid":"CA1"}}"#,
            "start.stream_sid",
            true,
        ),
        (
            r#"{"event":"start","start":{"stream_sid":"MZ1"}}"#,
            "start.call_sid",
            true,
        ),
        (
            r#"{"event":"start","start":{"stream_sid":"","call_sid":"CA"}}"#,
            "start.stream_sid",
            false,
        ),
        (
            r#"{"event":"start","start":{"stream_sid":7,"call_sid":"CA"}}"#,
            "start.stream_sid",
            false,
        ),
        (r#"{"event":"start"}"#, "start", true),
        (r#"{"event":"start","start":[]}"#, "start", false),
        (
            r#"{"event":"media","media":{"chunk":"1"}}"#,
            "media.payload",
            true,
        ),
        (r#"{"event":"media"}"#, "media", true),
        (r#"{"event":"media","media":"AAAA"}"#, "media", false),
        (
            r#"{"event":"media","media":{"payload":"AA=A"}}"#,
            "media.payload",
            false,
        ),
        (
            r#"{"event":"media","media":{"payload":"AAA"}}"#,
            "media.payload",
            false,
        ),
        (
            r#"{"event":"media","media":{"payload":"AA-_"}}"#,
            "media.payload",
            false,
        ),
        (
            r#"{"event":"media","media":{"payload":42}}"#,
            "media.payload",
            false,
        ),
        (
            r#"{"event":"media","sequence_number":"x","media":{"payload":""}}"#,
            "sequence_number",
            false,
        ),
        (
            r#"{"event":"media","sequence_number":-1,"media":{"payload":""}}"#,
            "sequence_number",
            false,
        ),
        (
            r#"{"event":"media","media":{"payload":"","chunk":1.5}}"#,
            "media.chunk",
            false,
        ),
        (
            r#"{"event":"media","media":{"payload":"","timestamp":"99999999999999999999999"}}"#,
            "media.timestamp",
            false,
        ),
        (
            r#"{"event":"dtmf","dtmf":{"digit":"x"}}"#,
            "dtmf.digit",
            false,
        ),
        (
            r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#,
            "dtmf.digit",
            false,
        ),
        (r#"{"event":"dtmf","dtmf":{}}"#, "dtmf.digit", true),
        (r#"{"event":"dtmf"}"#, "dtmf", true),
        (
            r#"{"event":"dtmf","dtmf":{"digit":"1","duration":"long"}}"#,
            "dtmf.duration",
            false,
        ),
        (r#"{"event":"mark","mark":{}}"#, "mark.name", true),
        (
            r#"{"event":"stop","stop":{"reason":5}}"#,
            "stop.reason",
            false,
        ),
        (r#"{"sequence_number":"1"}"#, "event", true),
        (r#"{"event":3}"#, "event", false),
    ];
    for (json, path, missing) in cases {
        let e = refuse(&mut s, json);
        assert_eq!(field(&e), path, "{json}: {e}");
        assert_eq!(
            matches!(e, DecodeError::MissingField { .. }),
            missing,
            "{json}: {e}"
        );
        let message = e.to_string();
        assert!(message.starts_with("exotel: "), "{message}");
        assert!(message.contains(path), "{message}");
    }
}

#[test]
fn base64_error_says_why() {
    let mut s = started();
    let e = refuse(&mut s, r#"{"event":"media","media":{"payload":"AB$D"}}"#);
    let message = e.to_string();
    assert!(
        message.contains("media.payload") && message.contains("base64"),
        "{message}"
    );
}

#[test]
fn digits() {
    let mut s = started();
    for (given, want) in [
        ("\"0\"", '0'),
        ("\"9\"", '9'),
        ("\"*\"", '*'),
        ("\"#\"", '#'),
        ("\"A\"", 'A'),
        ("\"d\"", 'D'),
        ("7", '7'),
    ] {
        let json = format!(r#"{{"event":"dtmf","dtmf":{{"digit":{given}}}}}"#);
        assert_eq!(
            event(&mut s, &json),
            CallEvent::Dtmf(Dtmf {
                digit: want,
                duration_ms: None
            })
        );
    }
    for bad in ["\"E\"", "\"\"", "\" \"", "10", "\"é\"", "true"] {
        let json = format!(r#"{{"event":"dtmf","dtmf":{{"digit":{bad}}}}}"#);
        assert!(is_invalid(&refuse(&mut s, &json), "dtmf.digit"), "{bad}");
    }
}

#[test]
fn refused_frames_change_nothing() {
    let mut s = started();
    let before = s.info().cloned();
    refuse(&mut s, r#"{"event":"start","start":{"stream_sid":"MZ2"}}"#);
    refuse(&mut s, "not json");
    refuse(&mut s, r#"{"event":"media","media":{"payload":"@"}}"#);
    assert_eq!(s.info().cloned(), before);
    assert!(matches!(
        s.decode(&WsFrame::Binary(Bytes::from_static(&[1, 2]))),
        Err(DecodeError::UnexpectedFrame {
            dialect: Dialect::Exotel,
            kind: "binary",
            len: 2
        })
    ));
    assert_eq!(s.info().cloned(), before);
}

#[test]
fn not_json_is_a_json_error() {
    let mut s = session(Dialect::Exotel);
    for bad in ["", "{", "[1]", "\"media\"", "{\"event\":\"media\"", "null"] {
        assert!(
            matches!(
                s.decode(&text(bad)),
                Err(DecodeError::Json {
                    dialect: Dialect::Exotel,
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn escaped_payloads_decode() {
    // JSON may escape `/` as `\/`: the payload is then not borrowable but still valid.
    let mut s = started();
    let chunk = media(&mut s, r#"{"event":"media","media":{"payload":"\/\/8="}}"#);
    assert_eq!(chunk.payload, Bytes::from_static(&[0xff, 0xff]));
}

#[test]
fn a_second_start_replaces_the_first() {
    let mut s = started();
    start(
        &mut s,
        r#"{"event":"start","start":{"stream_sid":"MZ2","call_sid":"CA2"}}"#,
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({"event":"clear","stream_sid":"MZ2"})
    );
}

#[test]
fn close_frames_are_ignored() {
    let mut s = started();
    assert_eq!(
        s.decode(&WsFrame::Close {
            code: 1000,
            reason: String::new()
        }),
        Ok(Decoded::Ignored {
            event: "close".into()
        })
    );
}

#[test]
fn json_errors_say_what_was_found() {
    let mut s = session(Dialect::Exotel);
    for (bad, says) in [
        ("[1]", "expected an object, found an array"),
        ("\"media\"", "expected an object, found a string"),
        ("", "EOF"),
        ("{\"event\":", "EOF"),
        (
            "{\"event\":\"media\",\"event\":\"x\"}",
            "duplicate field `event`",
        ),
    ] {
        let e = s.decode(&text(bad)).expect_err("refused");
        assert!(e.to_string().contains(says), "{bad:?}: {e}");
        assert!(
            e.to_string()
                .starts_with("exotel: frame is not a JSON object"),
            "{e}"
        );
    }
}
