//! The HTTP streaming adapter against the emulator.

mod common;

use std::time::Duration;

use common::{collect, config};
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_core::{ErrorKind, TextToSpeech, TtsConfig, TtsEvent, UsageKind};
use voxline_elevenlabs::{ElevenLabsHttp, VoiceSettings};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::elevenlabs::{ElevenLabsEmulator, ElevenLabsOptions};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn one_request_per_flushed_sentence_with_reported_usage() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let settings = VoiceSettings {
        stability: Some(0.4),
        ..VoiceSettings::default()
    };
    let tts = ElevenLabsHttp::new(config(&emulator).voice_settings(settings));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K).language("en-US"))
        .await
        .expect("connect");
    let request = session.new_request();
    session.send_text(request, "Hello ").await.expect("text");
    session.send_text(request, "there.").await.expect("text");
    session.flush(request).await.expect("flush");
    session
        .send_text(request, "How are you today?")
        .await
        .expect("text");
    session.finish(request).await.expect("finish");
    let collected = collect(&mut session, &[request], LIMIT).await;

    let requests = emulator.http_requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.path, "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.api_key.as_deref(),
            Some(emulator.options().api_key.as_str())
        );
        assert_eq!(
            r.query.get("output_format").map(String::as_str),
            Some("ulaw_8000")
        );
    }
    assert_eq!(
        requests[0].body,
        json!({"text": "Hello there.", "model_id": "eleven_flash_v2_5", "language_code": "en",
               "voice_settings": {"stability": 0.4}})
    );
    assert_eq!(
        requests[1].body,
        json!({"text": "How are you today?", "model_id": "eleven_flash_v2_5", "language_code": "en",
               "voice_settings": {"stability": 0.4}, "previous_text": "Hello there."})
    );

    let outcome = collected.of(request);
    assert!(outcome.errors.is_empty());
    assert!(outcome.ttfb.is_some());
    assert_eq!(
        outcome.audio.len(),
        emulator.audio_bytes_for("Hello there. How are you today?", "ulaw_8000")
    );
    // The service's character-cost per sentence, reported.
    assert_eq!(collected.usage.len(), 2);
    assert!(collected.usage.iter().all(|u| u.reported));
    assert_eq!(
        collected.usage[0].kind,
        UsageKind::Characters("Hello there.".len() as u64)
    );
    assert_eq!(collected.characters(), 30);
}

#[tokio::test]
async fn a_wrong_key_is_a_permanent_error_and_not_retried() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabsHttp::new(config(&emulator).api_key("wrong"));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let request = session.say("Hello.").await.expect("say");
    let collected = collect(&mut session, &[request], LIMIT).await;
    let errors = &collected.of(request).errors;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::Auth);
    assert_eq!(errors[0].status, Some(401));
    assert_eq!(errors[0].message, "invalid_api_key: Invalid API key");
    assert_eq!(emulator.http_requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_and_server_errors_are_retried_with_bounded_backoff() {
    let emulator =
        ElevenLabsEmulator::start(ElevenLabsOptions::default().faults(Faults::fail(429, 2))).await;
    let mut session = ElevenLabsHttp::new(config(&emulator))
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let started = tokio::time::Instant::now();
    let request = session.say("Patience.").await.expect("say");
    let collected = collect(&mut session, &[request], LIMIT).await;
    assert!(collected.of(request).errors.is_empty());
    let ttfb = collected.of(request).ttfb.expect("ttfb");
    assert_eq!(
        ttfb.latency,
        Duration::from_millis(300),
        "100 + 200 ms of backoff"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let statuses: Vec<u16> = emulator.http_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);

    let emulator =
        ElevenLabsEmulator::start(ElevenLabsOptions::default().faults(Faults::fail(503, 10))).await;
    let mut session = ElevenLabsHttp::new(config(&emulator))
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let request = session.say("Nobody home.").await.expect("say");
    let collected = collect(&mut session, &[request], LIMIT).await;
    let errors = &collected.of(request).errors;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::Server);
    assert!(errors[0].is_retryable());
    assert_eq!(emulator.http_requests().len(), 3, "bounded: three attempts");
}

#[tokio::test(start_paused = true)]
async fn cancel_aborts_the_response_and_the_next_request_goes_ahead() {
    let options = ElevenLabsOptions::default().chunk_interval(Duration::from_millis(50));
    let emulator = ElevenLabsEmulator::start(options).await;
    let mut session = ElevenLabsHttp::new(config(&emulator))
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let long = "A rather long answer that the caller will interrupt halfway through.";
    let first = session.new_request();
    session.send_text(first, long).await.expect("text");
    session.flush(first).await.expect("flush");
    // The second sentence of the same request is queued behind the first.
    session.send_text(first, "And more.").await.expect("text");
    session.finish(first).await.expect("finish");
    loop {
        match tokio::time::timeout(LIMIT, session.recv())
            .await
            .expect("in time")
        {
            Some(TtsEvent::Audio { request, .. }) if request == first => break,
            Some(_) => {}
            None => panic!("session ended"),
        }
    }
    session.cancel(first).await.expect("cancel");
    let second = session.say("Yes?").await.expect("say");
    let collected = collect(&mut session, &[second], LIMIT).await;
    assert!(!collected.requests.contains_key(&first));
    assert_eq!(
        collected.of(second).audio.len(),
        emulator.audio_bytes_for("Yes?", "ulaw_8000")
    );
    // The queued sentence of the cancelled request was never requested.
    let texts: Vec<String> = emulator
        .http_requests()
        .iter()
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, [long, "Yes?"]);
}

#[tokio::test]
async fn a_response_cut_mid_body_fails_the_request_retryably() {
    let options = ElevenLabsOptions::default().faults(Faults::disconnect_after(2));
    let emulator = ElevenLabsEmulator::start(options).await;
    let mut session = ElevenLabsHttp::new(config(&emulator))
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let first = session
        .say("Long enough for several chunks of audio.")
        .await
        .expect("say");
    let collected = collect(&mut session, &[first], LIMIT).await;
    let outcome = collected.of(first);
    assert_eq!(outcome.errors.len(), 1, "{collected:?}");
    assert_eq!(outcome.errors[0].kind, ErrorKind::Connection);
    assert!(outcome.audio.len() <= 2 * 400);

    let second = session.say("Again.").await.expect("say");
    let collected = collect(&mut session, &[second], LIMIT).await;
    assert!(collected.of(second).errors.is_empty());
}

#[tokio::test]
async fn phone_formats_are_native_over_http_too() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabsHttp::new(config(&emulator));
    for (format, output_format) in [
        (AudioFormat::ALAW_8K, "alaw_8000"),
        (AudioFormat::PCM16_8K, "pcm_8000"),
        (AudioFormat::PCM16_24K, "pcm_24000"),
    ] {
        let mut session = tts.connect(TtsConfig::new(format)).await.expect("connect");
        let request = session.say("Short one.").await.expect("say");
        let collected = collect(&mut session, &[request], LIMIT).await;
        let last = emulator.http_requests().pop().expect("a request");
        assert_eq!(
            last.query.get("output_format").map(String::as_str),
            Some(output_format)
        );
        assert_eq!(
            collected.of(request).audio.len(),
            emulator.audio_bytes_for("Short one.", output_format)
        );
    }
}
