//! The speech adapter against the emulator: request shape, 24 kHz PCM transcoded to
//! phone audio with the right duration, one request per flush, cancellation, errors.

mod common;

use std::time::Duration;

use serde_json::json;
use voxline_core::{
    ErrorKind, RequestId, TextToSpeech, TtsConfig, TtsEvent, TtsSession, UsageKind,
};
use voxline_openai::audio::AudioFormat;
use voxline_openai::{OpenAiSpeech, SpeechConfig};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::openai::{API_KEY, Config, OpenAiEmulator, StreamEnd};

const PATH: &str = "/v1/audio/speech";
const SENTENCE: &str = "Your apartment viewing is booked for Saturday.";

fn speech(emulator: &OpenAiEmulator) -> OpenAiSpeech {
    OpenAiSpeech::new(SpeechConfig::with_api(
        common::api(emulator),
        "gpt-4o-mini-tts",
    ))
    .expect("client")
}

/// Events of `request` until its `Done` (which is included).
async fn until_done(session: &mut TtsSession, request: RequestId) -> Vec<TtsEvent> {
    let mut events = Vec::new();
    loop {
        let event = session.recv().await.expect("session open");
        let done = event == TtsEvent::Done { request };
        events.push(event);
        if done {
            return events;
        }
    }
}

fn audio_of(events: &[TtsEvent], request: RequestId) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio { request: r, audio } if *r == request => Some(audio.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test]
async fn a_sentence_becomes_8k_mulaw_of_the_right_duration() {
    let emulator = common::emulator(Config::default()).await;
    let speech = speech(&emulator);
    let mut session = speech
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    let request = session.say(SENTENCE).await.expect("open");
    let events = until_done(&mut session, request).await;

    // Usage (characters, counted), then TTFB, then audio, then Done.
    match &events[0] {
        TtsEvent::Usage(u) => {
            assert_eq!(u.kind, UsageKind::Characters(SENTENCE.len() as u64));
            assert!(!u.reported);
        }
        other => panic!("usage expected first, got {other:?}"),
    }
    assert!(matches!(events[1], TtsEvent::Ttfb { request: r, .. } if r == request));
    assert!(matches!(events[2], TtsEvent::Audio { .. }));

    // 50 ms per character at 8 kHz, one byte per sample.
    let mulaw = audio_of(&events, request);
    let expected = SENTENCE.len() * 50 * 8;
    assert_eq!(mulaw.len(), expected, "{} ms", mulaw.len() / 8);
    // It is the emulator's 440 Hz tone at amplitude 8000 (RMS 5657), not silence or
    // noise: decoded with the reference table, the RMS matches within 3 %.
    let table = voxline_fixtures::g711::decode_tables().mulaw_decode;
    let middle = &mulaw[400..mulaw.len() - 400];
    let rms = (middle
        .iter()
        .map(|&c| f64::from(table[c as usize]).powi(2))
        .sum::<f64>()
        / middle.len() as f64)
        .sqrt();
    assert!((rms - 5657.0).abs() < 170.0, "rms {rms}");

    let sent = &emulator.requests_to(PATH)[0];
    assert_eq!(sent.status, 200);
    assert_eq!(
        sent.body,
        json!({"model": "gpt-4o-mini-tts", "input": SENTENCE, "voice": "alloy",
            "response_format": "pcm"})
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(sent.header("accept"), Some("application/octet-stream"));
}

#[tokio::test]
async fn pcm16_24k_passes_through_sample_exact() {
    let emulator = common::emulator(Config::default()).await;
    let speech = speech(&emulator);
    let mut session = speech
        .connect(TtsConfig::new(AudioFormat::PCM16_24K))
        .await
        .expect("session");
    let request = session.say("Hi.").await.expect("open");
    let pcm = audio_of(&until_done(&mut session, request).await, request);
    assert_eq!(pcm.len(), 3 * 50 * 48);
    for (n, pair) in pcm.chunks_exact(2).enumerate().take(500) {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * n as f64 / 24_000.0;
        let expected = (phase.sin() * 8000.0).round() as i16;
        assert_eq!(
            i16::from_le_bytes([pair[0], pair[1]]),
            expected,
            "sample {n}"
        );
    }
}

#[tokio::test]
async fn each_flush_is_one_request_and_done_follows_the_last() {
    let emulator = common::emulator(Config::default()).await;
    let speech = speech(&emulator);
    let mut session = speech
        .connect(TtsConfig::new(AudioFormat::MULAW_8K).voice("coral"))
        .await
        .expect("session");
    let request = session.new_request();
    session.send_text(request, "Hello ").await.expect("open");
    session.send_text(request, "there. ").await.expect("open");
    session.flush(request).await.expect("open");
    session
        .send_text(request, "How are you?")
        .await
        .expect("open");
    session.finish(request).await.expect("open");
    let events = until_done(&mut session, request).await;
    assert_eq!(audio_of(&events, request).len(), (12 + 12) * 50 * 8);
    let ttfbs = events
        .iter()
        .filter(|e| matches!(e, TtsEvent::Ttfb { .. }))
        .count();
    assert_eq!(ttfbs, 1, "one TTFB per request");
    let inputs: Vec<(String, String)> = emulator
        .requests_to(PATH)
        .iter()
        .map(|r| {
            (
                r.body["input"].as_str().unwrap_or_default().to_owned(),
                r.body["voice"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        inputs,
        [
            ("Hello there.".to_owned(), "coral".to_owned()),
            ("How are you?".to_owned(), "coral".to_owned())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_aborts_the_response_and_no_audio_of_it_follows() {
    let emulator = common::emulator(Config {
        chunk_interval: Duration::from_millis(50),
        ..Config::default()
    })
    .await;
    let speech = speech(&emulator);
    let mut session = speech
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    // 200 characters: 10 s of audio in about 100 chunks.
    let long = "word ".repeat(40);
    let first = session.say(long.trim()).await.expect("open");
    loop {
        if let TtsEvent::Audio { request, .. } = session.recv().await.expect("open") {
            assert_eq!(request, first);
            break;
        }
    }
    session.cancel(first).await.expect("open");
    let second = session.say("Okay.").await.expect("open");
    let events = until_done(&mut session, second).await;
    assert!(
        events.iter().all(|e| e.request() != Some(first)),
        "nothing of the cancelled request: {events:?}"
    );
    assert_eq!(audio_of(&events, second).len(), 5 * 50 * 8);

    let streams = emulator.streams.snapshot();
    let cancelled = streams
        .iter()
        .find(|s| s.end == StreamEnd::ClientClosed)
        .unwrap_or_else(|| panic!("the cancelled response was not closed: {streams:?}"));
    assert!(cancelled.chunks_sent < 20, "{cancelled:?}");
    assert_eq!(emulator.requests_to(PATH).len(), 2);
}

#[tokio::test]
async fn instructions_go_to_gpt_4o_models_but_not_to_tts_1() {
    let emulator = common::emulator(Config::default()).await;
    for (model, expected) in [("gpt-4o-mini-tts", Some("Speak warmly.")), ("tts-1", None)] {
        let mut config = SpeechConfig::with_api(common::api(&emulator), model);
        config.instructions = Some("Speak warmly.".into());
        config.speed = Some(1.25);
        let speech = OpenAiSpeech::new(config).expect("client");
        let mut session = speech
            .connect(TtsConfig::new(AudioFormat::MULAW_8K))
            .await
            .expect("session");
        let request = session.say("Hi.").await.expect("open");
        let events = until_done(&mut session, request).await;
        assert!(
            !events.iter().any(|e| matches!(e, TtsEvent::Error { .. })),
            "{model}: {events:?}"
        );
        let sent = emulator.requests_to(PATH).pop().expect("sent");
        assert_eq!(sent.body["instructions"].as_str(), expected, "{model}");
        assert_eq!(sent.body["speed"], json!(1.25));
    }
}

#[tokio::test]
async fn a_wrong_key_fails_the_request_and_still_reports_done() {
    let emulator = common::emulator(Config::default()).await;
    let speech = OpenAiSpeech::new(SpeechConfig::with_api(
        common::api(&emulator).api_key("sk-nope"),
        "gpt-4o-mini-tts",
    ))
    .expect("client");
    let mut session = speech
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    let request = session.say("Hello.").await.expect("open");
    let events = until_done(&mut session, request).await;
    match &events[0] {
        TtsEvent::Error {
            request: Some(r),
            error,
        } => {
            assert_eq!(*r, request);
            assert_eq!(error.kind, ErrorKind::Auth);
        }
        other => panic!("error expected, got {other:?}"),
    }
    assert_eq!(events.len(), 2, "error then done: {events:?}");
    assert_eq!(emulator.requests_to(PATH).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_error_is_retried_before_audio_starts() {
    let emulator = common::emulator(Config {
        faults: Faults::fail(500, 1),
        ..Config::default()
    })
    .await;
    let speech = speech(&emulator);
    let mut session = speech
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    let request = session.say("Hi.").await.expect("open");
    let events = until_done(&mut session, request).await;
    assert_eq!(audio_of(&events, request).len(), 3 * 50 * 8);
    let statuses: Vec<u16> = emulator
        .requests_to(PATH)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 200]);
}
