//! Caller audio goes out in real time from one monotonic origin: the right number of
//! frames per second of audio, none early, and silence frames (never gaps) when the
//! script has nothing to say.

mod common;

use std::time::Duration;

use common::*;
use voxline_testkit::callsim::{self, Audio, CallOptions, Dialect};

/// Receive times of the media frames the bot got, in order.
fn media_times(bot: &Bot, dialect: Dialect) -> Vec<std::time::Instant> {
    bot.frames()
        .iter()
        .filter(|r| carrier_payload(dialect, &r.message).is_some())
        .map(|r| r.at)
        .collect()
}

async fn one_second(dialect: Dialect, tail_ms: u64) -> (Bot, callsim::CallReport) {
    let bot = recorder(dialect).await;
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), dialect)
            .audio(Audio::tone(300.0, Duration::from_secs(1), 8000, -10.0))
            .tail(Duration::from_millis(tail_ms)),
    )
    .await
    .expect("call runs");
    sleep(100).await;
    (bot, report)
}

#[tokio::test]
async fn one_second_of_audio_is_fifty_twilio_frames() {
    let (bot, report) = one_second(Dialect::Twilio, 0).await;
    let payloads: Vec<Vec<u8>> = bot
        .frames()
        .iter()
        .filter_map(|r| carrier_payload(Dialect::Twilio, &r.message))
        .collect();
    // Exactly 50 frames carry the second of audio; the hang-up follows at once (one
    // more silence frame only if the machine stalled past the next frame's time).
    let audible = payloads
        .iter()
        .filter(|p| p.iter().any(|&b| b != 0xFF))
        .count();
    assert_eq!(audible, 50);
    assert!((50..=51).contains(&payloads.len()), "{}", payloads.len());
    assert_eq!(payloads.len() as u64, report.frames.media_sent);
    assert_eq!(report.sent.len(), payloads.len() * 160);
    assert!((report.duration_ms - payloads.len() as f64 * 20.0).abs() < 1e-6);
}

#[tokio::test]
async fn one_second_of_audio_is_ten_exotel_frames() {
    let (bot, report) = one_second(Dialect::Exotel, 0).await;
    let payloads: Vec<Vec<u8>> = bot
        .frames()
        .iter()
        .filter_map(|r| carrier_payload(Dialect::Exotel, &r.message))
        .collect();
    let audible = payloads
        .iter()
        .filter(|p| p.iter().any(|&b| b != 0))
        .count();
    assert_eq!(audible, 10);
    assert!((10..=11).contains(&payloads.len()), "{}", payloads.len());
    assert_eq!(payloads.len() as u64, report.frames.media_sent);
}

#[tokio::test]
async fn frames_are_never_early_and_do_not_drift() {
    let (bot, report) = one_second(Dialect::Vonage, 400).await;
    let times = media_times(&bot, Dialect::Vonage);
    // 1 s of audio plus 400 ms of tail silence: 70 frames of 20 ms, give or take the
    // frame in flight when the tail ended.
    assert!((70..=72).contains(&times.len()), "{} frames", times.len());
    assert_eq!(times.len() as u64, report.frames.media_sent);
    let first = times[0];
    for (k, t) in times.iter().enumerate() {
        // Frame k leaves at t0 + 20k ms; frame 0 left at t0 and arrived after it, so
        // frame k arrives no earlier than first + 20k ms minus frame 0's transit time
        // (loopback, well under 20 ms).
        let earliest = first + Duration::from_millis(20 * k as u64);
        assert!(
            *t + Duration::from_millis(20) >= earliest,
            "frame {k} arrived {:?} early",
            earliest - *t
        );
    }
    // And the whole run took about real time (generous bound: no burst, no stall).
    let span = times[times.len() - 1] - first;
    assert!(span >= Duration::from_millis(20 * (times.len() as u64 - 2)));
    assert!(span < Duration::from_secs(5), "{span:?}");
}

#[tokio::test]
async fn silence_frames_fill_the_line_when_nothing_is_said() {
    let bot = recorder(Dialect::Twilio).await;
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), Dialect::Twilio).tail(Duration::from_millis(300)),
    )
    .await
    .expect("call runs");
    sleep(100).await;
    let payloads: Vec<Vec<u8>> = bot
        .frames()
        .iter()
        .filter_map(|r| carrier_payload(Dialect::Twilio, &r.message))
        .collect();
    assert!((15..=17).contains(&payloads.len()), "{}", payloads.len());
    assert!(
        payloads
            .iter()
            .all(|p| p.len() == 160 && p.iter().all(|&b| b == 0xFF))
    );
    assert!(report.sent.iter().all(|&s| s == 0));
}
