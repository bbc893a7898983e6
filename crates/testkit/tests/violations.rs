//! A bot's protocol mistakes are recorded as violations with the offending frame,
//! and never stop the call.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use voxline_testkit::callsim::{self, CallOptions, Dialect, ViolationKind};

/// Calls a bot that sends `frames` (built from the stream id) right after the start.
async fn call_with(dialect: Dialect, frames: fn(&str) -> Vec<Message>) -> callsim::CallReport {
    let bot = serve(dialect, "/bad", move |mut conn: Conn| async move {
        conn.open().await;
        for frame in frames(&conn.stream_id.clone()) {
            conn.send(frame).await;
        }
        conn.drain().await;
    })
    .await;
    callsim::call(CallOptions::new(bot.url.clone(), dialect).tail(Duration::from_millis(300)))
        .await
        .expect("the call runs despite the bot")
}

fn kinds(report: &callsim::CallReport) -> Vec<ViolationKind> {
    report.violations.iter().map(|v| v.kind).collect()
}

fn text(v: serde_json::Value) -> Message {
    Message::text(v.to_string())
}

#[tokio::test]
async fn wrong_stream_id() {
    let report = call_with(Dialect::Twilio, |_| {
        vec![text(
            json!({"event":"media","streamSid":"MZnotmine","media":{"payload":"//8="}}),
        )]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::WrongStreamId]);
    assert!(report.violations[0].excerpt.contains("MZnotmine"));
    assert!(!report.is_clean());
}

#[tokio::test]
async fn missing_stream_id_and_wrong_spelling() {
    let report = call_with(Dialect::Twilio, |_| vec![text(json!({"event":"clear"}))]).await;
    assert_eq!(kinds(&report), [ViolationKind::MissingStreamId]);
    // Twilio's spelling sent to Exotel.
    let report = call_with(Dialect::Exotel, |sid| {
        vec![text(json!({"event":"clear","streamSid":sid}))]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::WrongKey]);
    // Plivo's checkpoint needs its streamId.
    let report = call_with(Dialect::Plivo, |_| {
        vec![text(json!({"event":"checkpoint","name":"x"}))]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::MissingStreamId]);
}

#[tokio::test]
async fn bad_base64() {
    let report = call_with(Dialect::Twilio, |sid| {
        vec![text(
            json!({"event":"media","streamSid":sid,"media":{"payload":"not base64!"}}),
        )]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::BadBase64]);
}

#[tokio::test]
async fn unknown_event_and_invalid_json() {
    let report = call_with(Dialect::Twilio, |sid| {
        vec![
            text(json!({"event":"playAudio","streamSid":sid})),
            Message::text("{\"event\": \"media\", oops"),
        ]
    })
    .await;
    assert_eq!(
        kinds(&report),
        [ViolationKind::UnknownEvent, ViolationKind::InvalidJson]
    );
    // Twilio's names sent to Plivo.
    let report = call_with(Dialect::Plivo, |sid| {
        vec![text(json!({"event":"clear","streamId":sid}))]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::UnknownEvent]);
}

#[tokio::test]
async fn chunk_sizes_the_carriers_forbid() {
    // Exotel: 1000 bytes is not a multiple of 320.
    let report = call_with(Dialect::Exotel, |sid| {
        vec![media(Dialect::Exotel, sid, &[0; 1000], 8000)]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::BadChunkSize]);
    // ... but 640 is fine.
    let report = call_with(Dialect::Exotel, |sid| {
        vec![media(Dialect::Exotel, sid, &[0; 640], 8000)]
    })
    .await;
    assert!(report.is_clean(), "{report}");
    // Smartflo: under 160 bytes.
    let report = call_with(Dialect::Smartflo, |sid| {
        vec![media(Dialect::Smartflo, sid, &[0xFF; 100], 8000)]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::BadChunkSize]);
    // Vonage: a binary frame of 10 ms instead of 20.
    let report = call_with(Dialect::Vonage, |_| vec![Message::binary(vec![0u8; 320])]).await;
    assert_eq!(kinds(&report), [ViolationKind::BadChunkSize]);
    assert!(
        report.violations[0]
            .excerpt
            .starts_with("binary, 320 bytes")
    );
}

#[tokio::test]
async fn wrong_frame_types() {
    let report = call_with(Dialect::Twilio, |_| {
        vec![Message::binary(vec![0xFFu8; 160])]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::WrongFrameType]);
    let report = call_with(Dialect::Vonage, |_| {
        let payload = B64.encode([0u8; 640]);
        vec![text(json!({"event":"media","media":{"payload":payload}}))]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::WrongFrameType]);
}

#[tokio::test]
async fn empty_mark_names() {
    let report = call_with(Dialect::Twilio, |sid| {
        vec![text(
            json!({"event":"mark","streamSid":sid,"mark":{"name":""}}),
        )]
    })
    .await;
    assert_eq!(kinds(&report), [ViolationKind::EmptyMarkName]);
    assert!(report.marks.is_empty());
}

#[tokio::test]
async fn telnyx_stream_id_is_a_warning_not_a_violation() {
    let report = call_with(Dialect::Telnyx, |sid| {
        vec![text(json!({"event":"clear","stream_id":sid}))]
    })
    .await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].kind, ViolationKind::UnexpectedStreamId);
    assert_eq!(report.clears.len(), 1);
}

#[tokio::test]
async fn a_correct_echo_bot_is_clean_in_every_dialect() {
    for dialect in Dialect::ALL {
        let rate = dialect.default_format().sample_rate;
        let bot = echo_bot(dialect, rate).await;
        let report = callsim::call(
            CallOptions::new(bot.url.clone(), dialect)
                .audio(callsim::Audio::tone(
                    400.0,
                    Duration::from_millis(300),
                    8000,
                    -6.0,
                ))
                .tail(Duration::from_millis(300)),
        )
        .await
        .expect("call runs");
        assert!(report.is_clean(), "{report}");
        assert!(report.warnings.is_empty(), "{report}");
        assert!(report.frames.media_received > 0, "{dialect}: {report}");
        assert!(report.bot_audio_ms > 250.0, "{dialect}: {report}");
    }
}

#[tokio::test]
async fn more_than_five_minutes_of_queued_audio_is_dropped_with_a_warning() {
    // 340 s of audio at once: 40 s over the bound, so the overflow happens even if a
    // loaded machine spreads the frames' arrival (and the playout drains) over seconds.
    let report = call_with(Dialect::Twilio, |sid| {
        (0..340)
            .map(|_| media(Dialect::Twilio, sid, &[0x55; 8000], 8000))
            .collect()
    })
    .await;
    assert!(report.is_clean(), "{report}");
    let overflow: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.kind == ViolationKind::BufferOverflow)
        .collect();
    assert_eq!(overflow.len(), 1, "reported once");
    assert_eq!(report.frames.media_received, 340);
}
