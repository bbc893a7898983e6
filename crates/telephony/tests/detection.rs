//! Dialect detection from connection URLs and from the first frames of every dialect.

use bytes::Bytes;
use voxline_telephony::detect::{self, Detection, Detector, MAX_UNDECIDED_FRAMES};
use voxline_telephony::{Dialect, WsFrame};

fn text(json: &str) -> WsFrame {
    WsFrame::Text(json.to_owned())
}

/// What the detector says after seeing all of `frames`.
fn detect_frames(frames: &[&str]) -> Vec<Detection> {
    let mut detector = Detector::new();
    frames.iter().map(|f| detector.observe(&text(f))).collect()
}

#[test]
fn urls_naming_a_dialect() {
    let cases: [(&str, Option<&str>, Option<Dialect>); 18] = [
        ("/twilio", None, Some(Dialect::Twilio)),
        ("/plivo/stream/abc", None, Some(Dialect::Plivo)),
        ("/smartflo/audio", None, Some(Dialect::Smartflo)),
        ("/exotel/voicebot", None, Some(Dialect::Exotel)),
        ("/telnyx", None, Some(Dialect::Telnyx)),
        ("/vonage/", None, Some(Dialect::Vonage)),
        ("/ws/Twilio", None, Some(Dialect::Twilio)),
        ("/media", Some("dialect=telnyx"), Some(Dialect::Telnyx)),
        ("/", Some("provider=Plivo&x=1"), Some(Dialect::Plivo)),
        ("/twilio", Some("dialect=exotel"), Some(Dialect::Exotel)),
        ("/ws", Some("sample-rate=16000"), Some(Dialect::Exotel)),
        ("/ws", Some("a=b&sample_rate=24000"), Some(Dialect::Exotel)),
        ("/", None, None),
        ("/media", None, None),
        ("/ws", None, None),
        ("/ws/stream/CA123", Some("token=x"), None),
        ("/twilions", Some("dialect=nobody"), None),
        ("", Some(""), None),
    ];
    for (path, query, want) in cases {
        assert_eq!(detect::from_url(path, query), want, "{path} {query:?}");
    }
}

#[test]
fn voxline_urls() {
    let cases: [(&str, Option<&str>, Option<Dialect>); 9] = [
        (
            "/ws/flexible",
            Some("voice_input=true&text_input=false&voice_output=true&text_output=true"),
            Some(Dialect::Voxline),
        ),
        ("/ws/flexible", None, Some(Dialect::Voxline)),
        ("/Flexible/", None, Some(Dialect::Voxline)),
        ("/voxline", None, Some(Dialect::Voxline)),
        ("/ws", Some("dialect=voxline"), Some(Dialect::Voxline)),
        ("/ws", Some("provider=Voxline"), Some(Dialect::Voxline)),
        // The path wins over Exotel's query parameter.
        (
            "/ws/flexible",
            Some("sample_rate=16000"),
            Some(Dialect::Voxline),
        ),
        // A query naming another dialect wins over the path, as for every dialect.
        (
            "/ws/flexible",
            Some("dialect=twilio"),
            Some(Dialect::Twilio),
        ),
        ("/ws/flexibles", None, None),
    ];
    for (path, query, want) in cases {
        assert_eq!(detect::from_url(path, query), want, "{path} {query:?}");
    }
}

#[test]
fn voxline_first_frames() {
    for frame in [
        r#"{"event":"start","sample_rate":16000}"#,
        r#"{"event":"start","call_id":"c","modes":{"voice_input":true}}"#,
        r#"{"event":"start","encoding":"mulaw","sample_rate":8000,"custom":{"a":1}}"#,
        r#"{"event":"text_message","text":"hi"}"#,
    ] {
        assert_eq!(
            detect_frames(&[frame]),
            [Detection::Decided(Dialect::Voxline)],
            "{frame}"
        );
    }
    // Carrier keys win; a nested `start` is a carrier's; a bare start is unknown.
    for (frame, want) in [
        (
            r#"{"event":"start","sample_rate":16000,"stream_sid":"MZ","start":{"call_sid":"CA"}}"#,
            Detection::Decided(Dialect::Exotel),
        ),
        (
            r#"{"event":"start","stream_id":"s","modes":{}}"#,
            Detection::Decided(Dialect::Telnyx),
        ),
        (
            r#"{"event":"start","start":{},"sample_rate":16000}"#,
            Detection::Unknown,
        ),
        (r#"{"event":"start","call_id":"c"}"#, Detection::Unknown),
        (
            r#"{"event":"mode_change","voice_input":true}"#,
            Detection::NeedMore,
        ),
    ] {
        assert_eq!(detect_frames(&[frame]), [want], "{frame}");
    }
}

#[test]
fn url_sample_rate() {
    assert_eq!(detect::url_sample_rate("sample-rate=16000"), Some(16000));
    assert_eq!(
        detect::url_sample_rate("?x=1&sample_rate=24000"),
        Some(24000)
    );
    assert_eq!(
        detect::url_sample_rate("sample-rate=fast&sample_rate=8000"),
        Some(8000)
    );
    assert_eq!(detect::url_sample_rate("samplerate=16000"), None);
    assert_eq!(detect::url_sample_rate(""), None);
    assert_eq!(detect::url_sample_rate("sample-rate="), None);
}

#[test]
fn exotel_and_smartflo_need_their_start() {
    let exotel = [
        r#"{"event":"connected"}"#,
        r#"{"event":"start","sequence_number":"1","stream_sid":"MZ","start":{"stream_sid":"MZ","call_sid":"CA"}}"#,
    ];
    assert_eq!(
        detect_frames(&exotel),
        [Detection::NeedMore, Detection::Decided(Dialect::Exotel)]
    );
    let smartflo = [
        r#"{"event":"connected"}"#,
        r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC","streamSid":"MZ","callSid":"CA",
            "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}}}"#,
    ];
    assert_eq!(
        detect_frames(&smartflo),
        [Detection::NeedMore, Detection::Decided(Dialect::Smartflo)]
    );
}

#[test]
fn first_frames_of_every_dialect() {
    let cases: [(&str, Dialect); 12] = [
        (
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
            Dialect::Twilio,
        ),
        (
            r#"{"event":"connected","version":"1.0.0"}"#,
            Dialect::Telnyx,
        ),
        (
            r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}"#,
            Dialect::Vonage,
        ),
        (
            r#"{"event":"start","sequenceNumber":1,"start":{"callId":"c","streamId":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}},"extra_headers":""}"#,
            Dialect::Plivo,
        ),
        (
            r#"{"event":"start","sequence_number":"1","start":{"call_control_id":"v3","media_format":{"encoding":"PCMU"}},"stream_id":"x"}"#,
            Dialect::Telnyx,
        ),
        (
            r#"{"event":"start","start":{"call_control_id":"v3"}}"#,
            Dialect::Telnyx,
        ),
        (
            r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC","streamSid":"MZ","callSid":"CA","tracks":["inbound"],
                "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ"}"#,
            Dialect::Twilio,
        ),
        (
            r#"{"event":"start","start":{"streamSid":"MZ","callSid":"CA","mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}}}"#,
            Dialect::Exotel,
        ),
        (
            r#"{"event":"start","start":{"streamSid":"MZ","callSid":"CA","customParameters":{}}}"#,
            Dialect::Smartflo,
        ),
        (
            r#"{"event":"start","stream_sid":"MZ","start":{"streamSid":"MZ"}}"#,
            Dialect::Exotel,
        ),
        (
            r#"{"event":"playedStream","streamId":"s","name":"n"}"#,
            Dialect::Plivo,
        ),
        (r#"{"event":"websocket:dtmf","digit":"1"}"#, Dialect::Vonage),
    ];
    for (frame, dialect) in cases {
        assert_eq!(
            detect_frames(&[frame]),
            [Detection::Decided(dialect)],
            "{frame}"
        );
    }
    let mut detector = Detector::new();
    assert_eq!(
        detector.observe(&WsFrame::Binary(Bytes::from_static(&[0; 640]))),
        Detection::Decided(Dialect::Vonage)
    );
}

#[test]
fn media_first_by_key_style() {
    let cases: [(&str, Dialect); 6] = [
        (
            r#"{"event":"media","sequence_number":"4","media":{"payload":""},"stream_id":"x"}"#,
            Dialect::Telnyx,
        ),
        (
            r#"{"event":"media","sequenceNumber":42,"streamId":"s","media":{"payload":""}}"#,
            Dialect::Plivo,
        ),
        (
            r#"{"event":"media","sequence_number":"3","stream_sid":"MZ","media":{"payload":""}}"#,
            Dialect::Exotel,
        ),
        (
            r#"{"event":"media","sequence_number":3,"media":{"payload":""}}"#,
            Dialect::Exotel,
        ),
        (
            r#"{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","payload":""},"streamSid":"MZ"}"#,
            Dialect::Twilio,
        ),
        (
            r#"{"event":"media","streamSid":"MZ","media":{"chunk":"1","payload":""}}"#,
            Dialect::Smartflo,
        ),
    ];
    for (frame, dialect) in cases {
        assert_eq!(
            detect_frames(&[frame]),
            [Detection::Decided(dialect)],
            "{frame}"
        );
    }
}

#[test]
fn gives_up() {
    // Non-JSON text: at once.
    assert_eq!(detect_frames(&["hello"]), [Detection::Unknown]);
    assert_eq!(detect_frames(&["[1,2]"]), [Detection::Unknown]);
    // A start with nothing recognisable.
    assert_eq!(
        detect_frames(&[r#"{"event":"start","start":{}}"#]),
        [Detection::Unknown]
    );
    // Undecided frames, up to the limit.
    let bare = [r#"{"event":"connected"}"#; MAX_UNDECIDED_FRAMES];
    let mut want = vec![Detection::NeedMore; MAX_UNDECIDED_FRAMES - 1];
    want.push(Detection::Unknown);
    assert_eq!(detect_frames(&bare), want);
    // And it stays with its answer.
    let mut detector = Detector::new();
    assert_eq!(detector.observe(&text("nope")), Detection::Unknown);
    assert_eq!(
        detector.observe(&text(r#"{"event":"connected","protocol":"Call"}"#)),
        Detection::Unknown
    );
    let mut detector = Detector::new();
    assert_eq!(
        detector.observe(&text(r#"{"event":"connected","protocol":"Call"}"#)),
        Detection::Decided(Dialect::Twilio)
    );
    assert_eq!(
        detector.observe(&text("garbage")),
        Detection::Decided(Dialect::Twilio)
    );
}

#[test]
fn other_events_first_need_more() {
    assert_eq!(
        detect_frames(&[
            r#"{"event":"dtmf","dtmf":{"digit":"1"}}"#,
            r#"{"no":"event"}"#
        ]),
        [Detection::NeedMore, Detection::NeedMore]
    );
}
