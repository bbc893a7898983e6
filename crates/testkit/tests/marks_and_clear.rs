//! Marks are echoed only once the audio queued before them has played on the
//! carrier's clock; a clear drops queued audio and, per dialect, echoes pending marks
//! (Twilio), answers `clearedAudio` (Plivo) or `websocket:cleared` (Vonage).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use voxline_testkit::callsim::{self, CallOptions, Dialect, MarkOutcome};

/// When the bot sent its audio (set by the behaviour).
type Stamp = Arc<Mutex<Option<Instant>>>;

/// A bot that, once the stream starts, sends `tone_ms` of tone at once, then a mark
/// named "end", then (optionally) a clear `clear_after_ms` later.
async fn tone_bot(
    dialect: Dialect,
    rate: u32,
    tone_ms: u64,
    clear_after_ms: Option<u64>,
) -> (Bot, Stamp) {
    let stamp: Stamp = Arc::default();
    let s = Arc::clone(&stamp);
    let bot = serve(dialect, "/bot", move |mut conn: Conn| {
        let s = Arc::clone(&s);
        async move {
            conn.open().await;
            let audio = encode(dialect, &tone(500.0, tone_ms, rate), rate != 8000);
            let chunk = match dialect {
                Dialect::Exotel => rate as usize / 50 * 2 * 5,
                _ => 160 * 5,
            };
            *s.lock().expect("stamp") = Some(Instant::now());
            conn.play(&audio, chunk, rate).await;
            conn.mark("end").await;
            if let Some(ms) = clear_after_ms {
                tokio::select! {
                    () = conn.drain() => return,
                    () = sleep(ms) => {}
                }
                conn.clear().await;
            }
            conn.drain().await;
        }
    })
    .await;
    (bot, stamp)
}

async fn silent_call(bot: &Bot, dialect: Dialect, tail_ms: u64) -> callsim::CallReport {
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), dialect).tail(Duration::from_millis(tail_ms)),
    )
    .await
    .expect("call runs");
    sleep(100).await;
    report
}

fn first_event(bot: &Bot, event: &str) -> Option<(Instant, Value)> {
    bot.frames().into_iter().find_map(|r| {
        let v = r.json()?;
        (v["event"] == event).then_some((r.at, v))
    })
}

#[tokio::test]
async fn twilio_mark_waits_for_its_audio_to_play() {
    let (bot, stamp) = tone_bot(Dialect::Twilio, 8000, 1000, None).await;
    let report = silent_call(&bot, Dialect::Twilio, 1600).await;
    assert!(report.is_clean(), "{report}");
    let mark = &report.marks[0];
    assert_eq!(mark.name, "end");
    assert_eq!(mark.outcome, MarkOutcome::Played);
    let echoed = mark.echoed_at_ms.expect("echoed");
    // The mark came right after the audio, so it is due when the audio has played.
    let first = report.first_bot_audio_ms.expect("audio heard");
    assert!((mark.due_at_ms - (first + 1000.0)).abs() < 0.2, "{mark:?}");
    assert!(echoed >= mark.due_at_ms);
    // Seen from the bot: the echo arrives no sooner than 1 s after the audio left.
    let (echo_at, echo) = first_event(&bot, "mark").expect("mark echo");
    assert_eq!(echo["mark"]["name"], "end");
    assert!(echo["streamSid"].is_string() && echo["sequenceNumber"].is_string());
    let sent_at = stamp.lock().expect("stamp").expect("bot sent audio");
    assert!(
        echo_at >= sent_at + Duration::from_millis(1000),
        "{:?}",
        echo_at - sent_at
    );

    // What the caller heard: exactly the tone (through mu-law), 1 s long, where it
    // started playing.
    let start = report.sample_at(report.first_bot_audio_ms.expect("audio heard"));
    let mut expected = Vec::new();
    voxline_audio::g711::mulaw::decode(
        &encode(Dialect::Twilio, &tone(500.0, 1000, 8000), false),
        &mut expected,
    );
    assert_eq!(&report.heard[start..start + 8000], &expected[..]);
    assert!(report.heard[..start].iter().all(|&s| s == 0));
    assert!(report.heard[start + 8000..].iter().all(|&s| s == 0));
    assert!((report.bot_audio_ms - 1000.0).abs() < 0.2);
}

#[tokio::test]
async fn exotel_and_telnyx_marks_echo_in_their_own_spelling() {
    for dialect in [Dialect::Exotel, Dialect::Telnyx, Dialect::Smartflo] {
        let (bot, _) = tone_bot(dialect, 8000, 300, None).await;
        let report = silent_call(&bot, dialect, 700).await;
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.marks[0].outcome, MarkOutcome::Played, "{dialect}");
        let (_, echo) = first_event(&bot, "mark").expect("mark echo");
        assert_eq!(echo["mark"]["name"], "end");
        match dialect {
            Dialect::Exotel => {
                assert!(echo["stream_sid"].is_string() && echo["sequence_number"].is_string())
            }
            Dialect::Telnyx => {
                assert!(echo["stream_id"].is_string() && echo["sequence_number"].is_string())
            }
            _ => assert!(echo["streamSid"].is_string()),
        }
    }
}

#[tokio::test]
async fn twilio_clear_drops_the_audio_and_echoes_pending_marks() {
    let (bot, stamp) = tone_bot(Dialect::Twilio, 8000, 2000, Some(300)).await;
    let report = silent_call(&bot, Dialect::Twilio, 800).await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.clears.len(), 1);
    let clear = &report.clears[0];
    assert_eq!(clear.marks_echoed, 1);
    // About 1.7 s of the 2 s were still queued (generous bounds).
    assert!(
        clear.dropped_ms > 1000.0 && clear.dropped_ms < 2000.0,
        "{clear:?}"
    );
    assert!((report.bot_audio_ms + report.cleared_audio_ms - 2000.0).abs() < 0.2);
    let mark = &report.marks[0];
    assert_eq!(mark.outcome, MarkOutcome::EchoedOnClear);
    assert_eq!(mark.echoed_at_ms, Some(clear.at_ms));
    // The bot got the echo well before the audio could have finished.
    let (echo_at, _) = first_event(&bot, "mark").expect("mark echo");
    let sent_at = stamp.lock().expect("stamp").expect("bot sent audio");
    assert!(echo_at < sent_at + Duration::from_millis(2000));
    // Nothing was heard after the clear.
    let after = report.sample_at(clear.at_ms) + 1;
    assert!(report.heard[after..].iter().all(|&s| s == 0));
    let start = report.sample_at(report.first_bot_audio_ms.expect("heard"));
    assert!(rms(&report.heard[start..after - 1]) > 1000.0);
}

#[tokio::test]
async fn plivo_clear_answers_cleared_audio_and_drops_checkpoints() {
    let (bot, _) = tone_bot(Dialect::Plivo, 8000, 2000, Some(300)).await;
    let report = silent_call(&bot, Dialect::Plivo, 800).await;
    assert!(report.is_clean(), "{report}");
    let (_, cleared) = first_event(&bot, "clearedAudio").expect("clearedAudio");
    assert!(cleared["streamId"].is_string() && cleared["sequenceNumber"].is_u64());
    assert!(first_event(&bot, "playedStream").is_none());
    assert_eq!(report.marks[0].outcome, MarkOutcome::DroppedOnClear);
    assert_eq!(report.clears[0].marks_dropped, 1);
}

#[tokio::test]
async fn plivo_checkpoint_is_answered_with_played_stream() {
    let (bot, _) = tone_bot(Dialect::Plivo, 8000, 300, None).await;
    let report = silent_call(&bot, Dialect::Plivo, 700).await;
    assert!(report.is_clean(), "{report}");
    let (_, played) = first_event(&bot, "playedStream").expect("playedStream");
    assert_eq!(played["name"], "end");
    assert!(played["streamId"].is_string());
    // L16 at 16 kHz on a 16 kHz line plays just as well.
    let (bot, _) = tone_bot(Dialect::Plivo, 16000, 300, None).await;
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), Dialect::Plivo)
            .sample_rate(16000)
            .tail(Duration::from_millis(700)),
    )
    .await
    .expect("call runs");
    assert!(report.is_clean(), "{report}");
    assert!((report.bot_audio_ms - 300.0).abs() < 0.2, "{report}");
}

#[tokio::test]
async fn vonage_clear_answers_websocket_cleared_and_notify_is_echoed() {
    let (bot, _) = tone_bot(Dialect::Vonage, 16000, 2000, Some(300)).await;
    let report = silent_call(&bot, Dialect::Vonage, 600).await;
    assert!(report.is_clean(), "{report}");
    assert!(first_event(&bot, "websocket:cleared").is_some());
    assert_eq!(report.clears.len(), 1);

    let (bot, _) = tone_bot(Dialect::Vonage, 16000, 300, None).await;
    let report = silent_call(&bot, Dialect::Vonage, 600).await;
    assert!(report.is_clean(), "{report}");
    let (_, notify) = first_event(&bot, "websocket:notify").expect("notify echo");
    assert_eq!(notify["payload"]["name"], "end");
    assert_eq!(report.marks[0].outcome, MarkOutcome::Played);
}

#[tokio::test]
async fn a_mark_with_nothing_queued_is_echoed_at_once() {
    let bot = serve(Dialect::Twilio, "/m", |mut conn: Conn| async move {
        conn.open().await;
        conn.mark("now").await;
        conn.drain().await;
    })
    .await;
    let report = silent_call(&bot, Dialect::Twilio, 300).await;
    let mark = &report.marks[0];
    assert_eq!(mark.outcome, MarkOutcome::Played);
    assert_eq!(mark.echoed_at_ms, Some(mark.sent_at_ms));
    let echoes = bot
        .frames()
        .iter()
        .filter(|r| matches!(&r.message, Message::Text(t) if t.as_str().contains("\"mark\"")))
        .count();
    assert_eq!(echoes, 1);
}
