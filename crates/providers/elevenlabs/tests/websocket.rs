//! The WebSocket adapter against the emulator: wire shapes, streaming, barge-in,
//! keepalive, context limit, reconnection, errors and formats.

mod common;

use std::time::Duration;

use common::{collect, config, eventually};
use serde_json::{Value, json};
use voxline_audio::{AudioFormat, Encoding};
use voxline_core::{ErrorKind, TextToSpeech, TtsConfig, TtsEvent, UsageKind};
use voxline_elevenlabs::{ElevenLabs, VoiceSettings};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::elevenlabs::{
    ElevenLabsEmulator, ElevenLabsOptions, Endpoint, MAX_CONTEXTS,
};

const LIMIT: Duration = Duration::from_secs(10);

fn context_of(message: &Value) -> Option<&str> {
    message.get("context_id").and_then(Value::as_str)
}

#[tokio::test]
async fn streams_two_sentences_as_native_mulaw_with_the_documented_messages() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let request = session.new_request();
    session
        .send_text(request, "Hello there. ")
        .await
        .expect("text");
    session.flush(request).await.expect("flush");
    session
        .send_text(request, "How are you today? ")
        .await
        .expect("text");
    session.finish(request).await.expect("finish");
    let collected = collect(&mut session, &[request], LIMIT).await;

    // The handshake: path, key header, query.
    let connections = emulator.connections();
    assert_eq!(connections.len(), 1);
    let c = &connections[0];
    assert_eq!(c.endpoint, Endpoint::MultiStreamInput);
    assert_eq!(c.voice_id, "21m00Tcm4TlvDq8ikWAM");
    assert_eq!(
        c.api_key.as_deref(),
        Some(emulator.options().api_key.as_str())
    );
    assert_eq!(c.status, 101);
    assert_eq!(
        c.query.get("output_format").map(String::as_str),
        Some("ulaw_8000")
    );
    assert_eq!(
        c.query.get("model_id").map(String::as_str),
        Some("eleven_flash_v2_5")
    );
    assert_eq!(
        c.query.get("inactivity_timeout").map(String::as_str),
        Some("180")
    );

    // The messages: init, text with a trailing space, flush, text, flush, close.
    let messages = emulator.messages_of(0);
    assert_eq!(
        messages,
        vec![
            json!({"text": " ", "context_id": "req-1"}),
            json!({"text": "Hello there. ", "context_id": "req-1"}),
            json!({"context_id": "req-1", "flush": true}),
            json!({"text": "How are you today? ", "context_id": "req-1"}),
            json!({"context_id": "req-1", "flush": true}),
            json!({"context_id": "req-1", "close_context": true}),
        ]
    );

    // The audio is the service's mu-law, byte for byte the length it sent: no
    // transcoding.
    let outcome = collected.of(request);
    let expected = emulator.audio_bytes_for("Hello there. How are you today?", "ulaw_8000");
    assert_eq!(expected, 26 * 10 * 8);
    assert_eq!(outcome.audio.len(), expected);
    assert!(
        outcome.audio.iter().any(|&b| b != 0xFF),
        "a tone, not silence"
    );
    assert!(outcome.errors.is_empty());
    assert!(outcome.ttfb.is_some(), "time to first byte reported");
    // Usage: the characters sent, counted (the socket reports none).
    assert_eq!(collected.usage.len(), 1);
    assert!(!collected.usage[0].reported);
    assert_eq!(
        collected.usage[0].kind,
        UsageKind::Characters(("Hello there. ".len() + "How are you today? ".len()) as u64)
    );
}

#[tokio::test]
async fn text_is_streamed_in_word_chunks_each_ending_with_one_space() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let request = session.new_request();
    for token in ["Su", "re", ", one", " mom", "ent", "."] {
        session.send_text(request, token).await.expect("text");
    }
    session.finish(request).await.expect("finish");
    let collected = collect(&mut session, &[request], LIMIT).await;
    let texts: Vec<String> = emulator
        .messages_of(0)
        .iter()
        .filter_map(|m| m.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert_eq!(texts, [" ", "Sure, ", "one ", "moment. "]);
    assert_eq!(
        collected.of(request).audio.len(),
        emulator.audio_bytes_for("Sure, one moment.", "ulaw_8000")
    );
}

#[tokio::test]
async fn settings_are_fixed_in_the_first_message_of_each_context() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let settings = VoiceSettings {
        stability: Some(0.5),
        similarity_boost: Some(0.8),
        speed: Some(1.0),
        ..VoiceSettings::default()
    };
    let tts = ElevenLabs::new(
        config(&emulator)
            .voice_settings(settings)
            .chunk_length_schedule(vec![50]),
    );
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let first = session.say("First turn. ").await.expect("say");
    let second = session.say("Second turn. ").await.expect("say");
    let collected = collect(&mut session, &[first, second], LIMIT).await;
    assert!(collected.of(first).errors.is_empty() && collected.of(second).errors.is_empty());
    assert!(emulator.closes().is_empty(), "{:?}", emulator.closes());

    let messages = emulator.messages_of(0);
    for context in ["req-1", "req-2"] {
        let of_context: Vec<&Value> = messages
            .iter()
            .filter(|m| context_of(m) == Some(context))
            .collect();
        assert_eq!(
            of_context[0],
            &json!({"text": " ", "context_id": context,
                    "voice_settings": {"stability": 0.5, "similarity_boost": 0.8, "speed": 1.0},
                    "generation_config": {"chunk_length_schedule": [50]}})
        );
        assert!(
            of_context[1..]
                .iter()
                .all(|m| m.get("voice_settings").is_none() && m.get("generation_config").is_none()),
            "settings only in the first message: {of_context:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn barge_in_closes_the_context_and_drops_its_late_audio() {
    // Audio arrives every 20 ms, so the request is still streaming when cancelled.
    let options = ElevenLabsOptions::default().chunk_interval(Duration::from_millis(20));
    let emulator = ElevenLabsEmulator::start(options).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let long = "This answer is long enough to take a good while to speak aloud. ";
    let first = session.new_request();
    session.send_text(first, long).await.expect("text");
    session.flush(first).await.expect("flush");
    // Wait for the first audio of it, then barge in.
    let mut before_cancel = 0;
    loop {
        match tokio::time::timeout(LIMIT, session.recv())
            .await
            .expect("in time")
        {
            Some(TtsEvent::Audio { request, audio }) if request == first => {
                before_cancel += audio.len();
                break;
            }
            Some(_) => {}
            None => panic!("session ended"),
        }
    }
    session.cancel(first).await.expect("cancel");
    let second = session.say("Okay. ").await.expect("say");
    let collected = collect(&mut session, &[second], LIMIT).await;

    // Nothing of the cancelled request after the cancel, and the next request's audio
    // is exactly its own (no late audio of the first mixed in).
    assert!(!collected.requests.contains_key(&first), "{collected:?}");
    assert_eq!(
        collected.of(second).audio.len(),
        emulator.audio_bytes_for("Okay.", "ulaw_8000")
    );
    let full = emulator.audio_bytes_for(long, "ulaw_8000");
    assert!(before_cancel < full);

    // The service was told: close_context for the cancelled context, and nothing
    // else for it afterwards (no flush, no keepalive).
    let messages = emulator.messages_of(0);
    let of_first: Vec<&Value> = messages
        .iter()
        .filter(|m| context_of(m) == Some("req-1"))
        .collect();
    assert_eq!(
        of_first.last(),
        Some(&&json!({"context_id": "req-1", "close_context": true}))
    );
    assert!(emulator.closes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn idle_contexts_and_sockets_are_kept_alive_every_interval() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut c = config(&emulator);
    // The emulator closes after 20 s without input unless kept alive.
    c.inactivity_timeout = Duration::from_secs(20);
    let tts = ElevenLabs::new(c);
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    // An idle socket first: context-less keepalives.
    tokio::time::sleep(Duration::from_secs(25)).await;
    // Then a request whose text waits (the LLM is thinking).
    let request = session.new_request();
    session
        .send_text(request, "Let me check that for you. ")
        .await
        .expect("text");
    tokio::time::sleep(Duration::from_secs(44)).await;
    session.finish(request).await.expect("finish");
    let collected = collect(&mut session, &[request], Duration::from_secs(60)).await;
    assert!(collected.of(request).errors.is_empty());
    assert!(emulator.closes().is_empty(), "{:?}", emulator.closes());
    assert_eq!(emulator.connections().len(), 1, "never reconnected");
    assert_eq!(
        emulator.connections()[0]
            .query
            .get("inactivity_timeout")
            .map(String::as_str),
        Some("20")
    );

    let received = emulator.messages();
    let idle: Vec<Duration> = received
        .iter()
        .filter(|m| m.message == json!({"text": ""}) && m.at < Duration::from_secs(25))
        .map(|m| m.at)
        .collect();
    let context: Vec<Duration> = received
        .iter()
        .filter(|m| m.message == json!({"text": "", "context_id": "req-1"}))
        .map(|m| m.at)
        .collect();
    assert_eq!(idle.len(), 2, "at 10 s and 20 s: {idle:?}");
    assert_eq!(context.len(), 4, "at 30, 40, 50 and 60 s: {context:?}");
    let all: Vec<Duration> = idle.iter().chain(&context).copied().collect();
    for pair in all.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_secs(10), "{all:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_socket_closed_for_inactivity_is_reopened_for_the_next_request() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut c = config(&emulator).keepalive_interval(Duration::from_secs(3600));
    c.inactivity_timeout = Duration::from_secs(20);
    let tts = ElevenLabs::new(c);
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let closes = emulator.closes();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].code, 1008);
    assert!(
        closes[0]
            .reason
            .starts_with("Have not received a new text input")
    );

    let request = session.say("Back again. ").await.expect("say");
    let collected = collect(&mut session, &[request], LIMIT).await;
    assert!(collected.of(request).errors.is_empty(), "{collected:?}");
    assert!(collected.session_errors.is_empty());
    assert_eq!(
        collected.of(request).audio.len(),
        emulator.audio_bytes_for("Back again.", "ulaw_8000")
    );
    assert_eq!(emulator.connections().len(), 2);
}

#[tokio::test]
async fn a_sixth_request_waits_for_a_free_context() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let requests: Vec<_> = (0..6).map(|_| session.new_request()).collect();
    for (i, r) in requests.iter().enumerate() {
        session
            .send_text(*r, format!("Sentence number {i}. "))
            .await
            .expect("text");
    }
    for r in &requests {
        session.finish(*r).await.expect("finish");
    }
    let collected = collect(&mut session, &requests, LIMIT).await;
    assert!(emulator.closes().is_empty(), "{:?}", emulator.closes());
    for (i, r) in requests.iter().enumerate() {
        let outcome = collected.of(*r);
        assert!(outcome.errors.is_empty());
        assert_eq!(
            outcome.audio.len(),
            emulator.audio_bytes_for(&format!("Sentence number {i}."), "ulaw_8000")
        );
    }
    // The sixth context opened only after the first was closed.
    let messages = emulator.messages_of(0);
    let position = |m: &Value| messages.iter().position(|x| x == m).expect("sent");
    assert!(
        position(&json!({"text": " ", "context_id": "req-6"}))
            > position(&json!({"context_id": "req-1", "close_context": true}))
    );
    assert_eq!(MAX_CONTEXTS, 5);
}

#[tokio::test]
async fn the_services_context_limit_close_fails_the_live_requests() {
    // An emulator allowing fewer contexts than the adapter believes.
    let options = ElevenLabsOptions {
        max_contexts: 1,
        ..ElevenLabsOptions::default()
    };
    let emulator = ElevenLabsEmulator::start(options).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let first = session.new_request();
    let second = session.new_request();
    session.send_text(first, "One. ").await.expect("text");
    session.send_text(second, "Two. ").await.expect("text");
    let collected = collect(&mut session, &[first, second], LIMIT).await;
    for r in [first, second] {
        let errors = &collected.of(r).errors;
        assert_eq!(errors.len(), 1, "{collected:?}");
        assert_eq!(errors[0].kind, ErrorKind::BadRequest);
        assert_eq!(errors[0].status, Some(1008));
        assert!(errors[0].message.contains("max_active_conversations"));
        assert!(!errors[0].is_retryable());
    }
}

#[tokio::test]
async fn a_mid_stream_drop_fails_the_request_and_the_next_one_reconnects() {
    let options = ElevenLabsOptions::default().faults(Faults::disconnect_after(2));
    let emulator = ElevenLabsEmulator::start(options).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let first = session
        .say("A sentence long enough for several audio messages. ")
        .await
        .expect("say");
    let collected = collect(&mut session, &[first], LIMIT).await;
    let outcome = collected.of(first);
    assert_eq!(
        outcome.audio.len(),
        2 * 400,
        "two 50 ms messages before the cut"
    );
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(outcome.errors[0].kind, ErrorKind::Connection);
    assert!(outcome.errors[0].is_retryable());

    let second = session.say("Still here. ").await.expect("say");
    let collected = collect(&mut session, &[second], LIMIT).await;
    assert!(collected.of(second).errors.is_empty());
    assert_eq!(
        collected.of(second).audio.len(),
        emulator.audio_bytes_for("Still here.", "ulaw_8000")
    );
    assert_eq!(emulator.connections().len(), 2);
}

#[tokio::test]
async fn a_wrong_key_is_refused_at_the_handshake_and_not_retried() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabs::new(config(&emulator).api_key("wrong"));
    let error = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("refused");
    assert_eq!(error.kind, ErrorKind::Auth);
    assert_eq!(error.status, Some(401));
    assert!(error.message.contains("invalid_api_key"), "{error}");
    assert_eq!(emulator.connections().len(), 1);
}

#[tokio::test]
async fn a_missing_key_fails_before_connecting() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut c = config(&emulator);
    c.api_key = Some("  ".into());
    // A blank key counts as none; the environment is not consulted when a test sets
    // one, but a blank one falls through to it, so only check when it is unset.
    if std::env::var_os("ELEVENLABS_API_KEY").is_none() {
        let error = ElevenLabs::new(c)
            .connect(TtsConfig::new(AudioFormat::MULAW_8K))
            .await
            .expect_err("no key");
        assert_eq!(error.kind, ErrorKind::Auth);
        assert!(emulator.connections().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn handshake_429_and_5xx_are_retried_with_bounded_backoff() {
    let emulator =
        ElevenLabsEmulator::start(ElevenLabsOptions::default().faults(Faults::fail(503, 2))).await;
    let started = tokio::time::Instant::now();
    let mut session = ElevenLabs::new(config(&emulator))
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("third attempt succeeds");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "100 + 200 ms"
    );
    let statuses: Vec<u16> = emulator.connections().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [503, 503, 101]);
    let request = session.say("Hi. ").await.expect("say");
    collect(&mut session, &[request], LIMIT).await;

    let emulator =
        ElevenLabsEmulator::start(ElevenLabsOptions::default().faults(Faults::fail(429, 10))).await;
    let error = ElevenLabs::new(config(&emulator))
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("gives up");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(emulator.connections().len(), 3, "bounded: three attempts");
}

#[tokio::test]
async fn formats_are_requested_natively_or_transcoded() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabs::new(config(&emulator));
    let text = "Twelve chars";
    let cases = [
        (AudioFormat::PCM16_16K, "pcm_16000"),
        (AudioFormat::PCM16_8K, "pcm_8000"),
        (AudioFormat::ALAW_8K, "ulaw_8000"),
        (AudioFormat::new(Encoding::Pcm16, 12000), "pcm_16000"),
    ];
    for (i, (format, output_format)) in cases.into_iter().enumerate() {
        let mut session = tts.connect(TtsConfig::new(format)).await.expect("connect");
        let request = session.say(format!("{text} ")).await.expect("say");
        let collected = collect(&mut session, &[request], LIMIT).await;
        let c = &emulator.connections()[i];
        assert_eq!(
            c.query.get("output_format").map(String::as_str),
            Some(output_format)
        );
        let audio = &collected.of(request).audio;
        // 11 characters of speech = 110 ms, whatever the format.
        let expected = format.bytes_in(Duration::from_millis(110));
        let diff = audio.len().abs_diff(expected);
        assert!(
            diff <= 4 * format.bytes_per_sample(),
            "{format}: {} vs {expected}",
            audio.len()
        );
        if format == AudioFormat::ALAW_8K {
            assert_eq!(
                audio.len(),
                expected,
                "A-law is re-encoded sample for sample"
            );
            assert!(!audio.contains(&0xFF), "not mu-law silence");
        }
    }
}

#[tokio::test]
async fn voice_and_language_reach_the_url() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(
            TtsConfig::new(AudioFormat::MULAW_8K)
                .voice("pNInz6obpgDQGcFmaJgB")
                .language("es-ES"),
        )
        .await
        .expect("connect");
    let request = session.say("Hola. ").await.expect("say");
    collect(&mut session, &[request], LIMIT).await;
    let c = &emulator.connections()[0];
    assert_eq!(c.voice_id, "pNInz6obpgDQGcFmaJgB");
    assert_eq!(c.query.get("language_code").map(String::as_str), Some("es"));
}

#[tokio::test]
async fn dropping_the_session_closes_the_socket_cleanly() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let tts = ElevenLabs::new(config(&emulator));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let request = session.say("Goodbye. ").await.expect("say");
    collect(&mut session, &[request], LIMIT).await;
    drop(session);
    eventually(LIMIT, || !emulator.closes().is_empty()).await;
    assert_eq!(
        emulator.messages_of(0).last(),
        Some(&json!({"close_socket": true}))
    );
    assert_eq!(emulator.closes()[0].code, 1000);
}

#[tokio::test]
async fn finishing_a_request_that_never_had_text_reports_done_without_a_context() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut session = ElevenLabs::new(config(&emulator))
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let request = session.new_request();
    session.flush(request).await.expect("flush");
    session.finish(request).await.expect("finish");
    let collected = collect(&mut session, &[request], LIMIT).await;
    assert!(collected.of(request).audio.is_empty());
    // No phantom context: a flush for an unopened context is never sent.
    assert!(emulator.messages_of(0).is_empty());
}
