//! The heard and sent recordings share one timeline: bot audio sits where it played,
//! caller audio where it was sent, and turn latency is measured between them.

mod common;

use std::time::Duration;

use common::*;
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::callsim::{self, Audio, CallOptions, Dialect, TurnVad};

#[tokio::test]
async fn bot_audio_is_heard_where_it_played_and_caller_audio_where_it_was_sent() {
    // The bot answers the fifth Exotel frame (sent 400 ms into the call) with 500 ms
    // of tone, in 100 ms chunks.
    let reply = tone(700.0, 500, 8000);
    let bot = serve(Dialect::Exotel, "/t", move |mut conn: Conn| {
        let reply = reply.clone();
        async move {
            conn.open().await;
            let mut frames = 0;
            while let Some(message) = conn.recv().await {
                if carrier_payload(Dialect::Exotel, &message).is_some() {
                    frames += 1;
                    if frames == 5 {
                        conn.play(&encode(Dialect::Exotel, &reply, true), 1600, 8000)
                            .await;
                    }
                }
            }
        }
    })
    .await;
    let said = tone(300.0, 600, 8000);
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), Dialect::Exotel)
            .audio(Audio::from_samples(said.clone(), 8000))
            .tail(Duration::from_millis(1500)),
    )
    .await
    .expect("call runs");
    assert!(report.is_clean(), "{report}");

    // Sent: the caller's audio from sample 0, then silence.
    assert_eq!(&report.sent[..said.len()], &said[..]);
    assert!(report.sent[said.len()..].iter().all(|&s| s == 0));
    assert_eq!(report.heard.len(), report.sent.len());
    assert_eq!(report.sent.len() as f64, report.duration_ms * 8.0);

    // Heard: the reply, sample for sample, starting no earlier than the frame that
    // triggered it (400 ms) and, generously, within a second of it.
    let first = report.first_bot_audio_ms.expect("reply heard");
    assert!((400.0..1400.0).contains(&first), "{first}");
    let start = report.sample_at(first);
    assert!(report.heard[..start].iter().all(|&s| s == 0));
    let expected = tone(700.0, 500, 8000);
    assert_eq!(&report.heard[start..start + 4000], &expected[..]);
    assert!(report.heard[start + 4000..].iter().all(|&s| s == 0));
    assert!(report.playback_gaps.is_empty());
}

#[tokio::test]
async fn late_chunks_inside_a_reply_are_playback_gaps() {
    // 200 ms of tone, a 100 ms pause on the bot's side, 200 ms more: the carrier's
    // buffer runs dry for about 100 ms.
    let bot = serve(Dialect::Twilio, "/g", |mut conn: Conn| async move {
        conn.open().await;
        let audio = encode(Dialect::Twilio, &tone(500.0, 200, 8000), false);
        conn.play(&audio, 1600, 8000).await;
        tokio::select! { () = conn.drain() => return, () = sleep(300) => {} }
        conn.play(&audio, 1600, 8000).await;
        conn.drain().await;
    })
    .await;
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), Dialect::Twilio).tail(Duration::from_millis(800)),
    )
    .await
    .expect("call runs");
    assert_eq!(report.playback_gaps.len(), 1, "{report}");
    let gap = &report.playback_gaps[0];
    assert!(
        gap.duration_ms > 20.0 && gap.duration_ms < 1000.0,
        "{gap:?}"
    );
    assert!((report.bot_audio_ms - 400.0).abs() < 0.2);
}

/// A bot that waits for the caller to stop talking (400 ms of quiet after speech, by
/// level) and answers with a tone.
async fn turn_taking_bot() -> Bot {
    serve(Dialect::Twilio, "/turns", |mut conn: Conn| async move {
        conn.open().await;
        let (mut speaking, mut quiet_frames) = (false, 0);
        while let Some(message) = conn.recv().await {
            let Some(payload) = carrier_payload(Dialect::Twilio, &message) else {
                continue;
            };
            let mut pcm = Vec::new();
            voxline_audio::g711::mulaw::decode(&payload, &mut pcm);
            if rms(&pcm) > 300.0 {
                speaking = true;
                quiet_frames = 0;
            } else if speaking {
                quiet_frames += 1;
                if quiet_frames == 20 {
                    speaking = false;
                    let answer = encode(Dialect::Twilio, &tone(600.0, 300, 8000), false);
                    conn.play(&answer, 800, 8000).await;
                    conn.mark("answer").await;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn turn_latency_runs_from_the_end_of_speech_to_the_reply() {
    let speech = speech::load("caller_en_us", 8000, Variant::Clean);
    let first = &speech.utterances[0];
    let audio = Audio::from_samples(speech.samples.clone(), 8000).slice(
        Duration::ZERO,
        Some(Duration::from_secs_f64((first.end_ms + 100.0) / 1000.0)),
    );
    let bot = turn_taking_bot().await;
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), Dialect::Twilio)
            .audio(audio)
            .tail(Duration::from_millis(1500)),
    )
    .await
    .expect("call runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.turns.len(), 1, "{report}");
    let turn = &report.turns[0];
    // The detector finds the utterance the labels describe (within 150 ms).
    assert!(
        (turn.speech_start_ms - first.start_ms).abs() < 150.0,
        "{turn:?}"
    );
    assert!(
        (turn.speech_end_ms - first.end_ms).abs() < 150.0,
        "{turn:?}"
    );
    let latency = turn.latency_ms.expect("the bot answered");
    // The bot waits 400 ms of quiet, so the caller waits at least about that long.
    assert!((300.0..1500.0).contains(&latency), "{turn:?}");
    assert_eq!(turn.response_ms, report.first_bot_audio_ms);
}

#[tokio::test]
async fn energy_turns_work_on_synthetic_callers() {
    let bot = turn_taking_bot().await;
    // The energy detector measures against the quietest recent level, so the caller
    // is quiet for a moment before speaking, as callers are.
    let mut said = vec![0; 2400];
    said.extend(tone(400.0, 400, 8000));
    said.extend(vec![0; 4000]);
    let report = callsim::call(
        CallOptions::new(bot.url.clone(), Dialect::Twilio)
            .audio(Audio::from_samples(said, 8000))
            .turn_vad(TurnVad::Energy)
            .tail(Duration::from_millis(800)),
    )
    .await
    .expect("call runs");
    assert_eq!(report.turns.len(), 1, "{report}");
    assert!(report.turns[0].latency_ms.is_some(), "{report}");
    assert!(
        (report.turns[0].speech_start_ms - 300.0).abs() < 60.0,
        "{report}"
    );
    assert!(
        (report.turns[0].speech_end_ms - 700.0).abs() < 60.0,
        "{report}"
    );
}
