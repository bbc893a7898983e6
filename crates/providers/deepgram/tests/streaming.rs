//! The adapter against the Deepgram emulator on 127.0.0.1: handshake, streaming,
//! interim and final results, finalize, cancellation, keepalive, errors, reconnects
//! and usage. Timing runs on tokio's paused clock, never the wall clock.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{KEY, caller, config, finals, near, secs, stream};
use voxline_audio::AudioFormat;
use voxline_core::{ErrorKind, SpeechToText, SttConfig, SttEvent, Usage, UsageKind};
use voxline_deepgram::{Deepgram, DeepgramConfig, Endpointing};
use voxline_fixtures::speech::Variant;
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::deepgram::{DeepgramEmulator, Frame, Options, Sent};

const MS: Duration = Duration::from_millis(1);

fn usages(events: &[SttEvent]) -> Vec<Usage> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Usage(u) => Some(*u),
            _ => None,
        })
        .collect()
}

fn audio_seconds(usage: &Usage) -> f64 {
    match usage.kind {
        UsageKind::AudioSeconds(s) => s,
        other => panic!("not audio seconds: {other:?}"),
    }
}

/// Waits (on the paused clock) until `done` holds, for at most a minute of it.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn handshake_carries_token_auth_and_every_option_in_the_query() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let stt = Deepgram::new(
        config(&emulator)
            .model("nova-2-phonecall")
            .smart_format(true)
            .keyterms(["Whitefield", "eighty lakhs"]),
    );
    let session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K).language("en-IN"))
        .await
        .expect("connect");
    session.close().await;

    let handshakes = emulator.handshakes();
    assert_eq!(handshakes.len(), 1);
    let h = &handshakes[0];
    assert_eq!(h.status, 101);
    assert_eq!(
        h.header("authorization"),
        Some(format!("Token {KEY}").as_str())
    );
    for (key, value) in [
        ("model", "nova-2-phonecall"),
        ("encoding", "mulaw"),
        ("sample_rate", "8000"),
        ("channels", "1"),
        ("language", "en-IN"),
        ("interim_results", "true"),
        ("endpointing", "300"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
        ("punctuate", "true"),
        ("smart_format", "true"),
    ] {
        assert_eq!(h.param(key), Some(value), "{key}");
    }
    assert_eq!(
        h.params("keyterm").collect::<Vec<_>>(),
        ["Whitefield", "eighty lakhs"]
    );
    // Nothing but CloseStream was needed; no empty binary frame.
    assert_eq!(emulator.control_messages(), [(0, "CloseStream".to_owned())]);
}

#[tokio::test]
async fn pcm16_sessions_ask_for_linear16_at_their_rate() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let stt = Deepgram::new(config(&emulator));
    let session = stt
        .connect(SttConfig::new(AudioFormat::PCM16_16K))
        .await
        .expect("connect");
    session.close().await;
    let h = &emulator.handshakes()[0];
    assert_eq!(h.param("encoding"), Some("linear16"));
    assert_eq!(h.param("sample_rate"), Some("16000"));
}

#[tokio::test]
async fn streams_the_caller_and_gets_every_utterance_in_session_time() {
    let (audio, script) = caller(Variant::Clean);
    let emulator = DeepgramEmulator::start(Options::with_script(script.clone())).await;
    let stt = Deepgram::new(config(&emulator));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let mut events = Vec::new();
    stream(&mut session, &audio, &mut events).await;
    events.extend(session.close().await);

    // Every utterance once, as a final that ends the utterance, in order.
    let finals = finals(&events);
    let texts: Vec<&str> = finals.iter().map(|t| t.text.as_str()).collect();
    let expected: Vec<&str> = script.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, expected);
    for (t, line) in finals.iter().zip(&script) {
        assert!(t.end_of_utterance, "{}", t.text);
        let (first, last) = (&t.words[0], &t.words[t.words.len() - 1]);
        assert!(
            near(first.start, secs(line.start), MS),
            "{}: {:?}",
            t.text,
            first.start
        );
        assert!(
            near(last.end, secs(line.end), MS),
            "{}: {:?}",
            t.text,
            last.end
        );
        assert_eq!(first.text, line.text.split(' ').next().unwrap_or_default());
    }
    // Interims came before their final, and the first one carried the first word.
    let first_interim = events
        .iter()
        .position(|e| matches!(e, SttEvent::Transcript(t) if !t.is_final))
        .expect("an interim");
    let first_final = events
        .iter()
        .position(|e| matches!(e, SttEvent::Transcript(t) if t.is_final))
        .expect("a final");
    assert!(first_interim < first_final);
    // SpeechStarted and UtteranceEnd for each line, in session time.
    let started: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::SpeechStarted { at } => *at,
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), script.len());
    assert!(near(started[1], secs(script[1].start), MS));
    let ends: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::UtteranceEnd { last_word_end } => *last_word_end,
            _ => None,
        })
        .collect();
    // Lines less than 1 s apart (the 2nd follows the 1st after 0.8 s) share one.
    assert!(ends.len() >= 4 && ends.len() < script.len(), "{ends:?}");
    assert!(near(ends[0], secs(script[1].end), MS), "{ends:?}");
    assert!(events.iter().any(|e| matches!(e, SttEvent::Ttfb(_))));

    // Usage is Deepgram's Metadata duration: all the audio.
    let usage = usages(&events);
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert!(usage[0].reported);
    let sent = audio.len() as f64 / 8000.0;
    assert!((audio_seconds(&usage[0]) - sent).abs() < 0.002, "{usage:?}");

    // The emulator got exactly the audio, then CloseStream, then our close reply.
    assert_eq!(emulator.audio(0), audio);
    let received = emulator.received();
    assert!(!received.iter().any(|r| r.frame == Frame::EmptyBinary));
    assert_eq!(emulator.control_messages(), [(0, "CloseStream".to_owned())]);
    assert!(emulator.sent().iter().any(|o| o.sent
        == Sent::Close {
            code: 1000,
            reason: String::new()
        }));
}

#[tokio::test]
async fn without_interims_only_finals_are_delivered() {
    let (audio, script) = caller(Variant::Clean);
    let audio = &audio[..8000 * 8]; // 8 s: two utterances
    let emulator = DeepgramEmulator::start(Options::with_script(script.clone())).await;
    // UtteranceEnd needs interims on the wire: the adapter asks and drops them.
    let stt = Deepgram::new(config(&emulator));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K).interim_results(false))
        .await
        .expect("connect");
    let mut events = Vec::new();
    stream(&mut session, audio, &mut events).await;
    events.extend(session.close().await);
    assert_eq!(
        emulator.handshakes()[0].param("interim_results"),
        Some("true")
    );
    assert!(
        !emulator
            .sent_of_type("Results")
            .iter()
            .all(|(_, r)| r["is_final"] == true)
    );
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, SttEvent::Transcript(t) if !t.is_final))
    );
    assert_eq!(finals(&events).len(), 2);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SttEvent::UtteranceEnd { .. }))
    );

    // Without UtteranceEnd the wire asks for no interims either.
    let stt = Deepgram::new(config(&emulator).utterance_end_ms(None));
    let session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K).interim_results(false))
        .await
        .expect("connect");
    session.close().await;
    assert_eq!(
        emulator.handshakes()[1].param("interim_results"),
        Some("false")
    );
}

#[tokio::test]
async fn finalize_flushes_the_turn_and_times_the_first_final() {
    let (audio, script) = caller(Variant::Clean);
    let emulator = DeepgramEmulator::start(
        Options::with_script(script).faults(Faults::latency(Duration::from_millis(300))),
    )
    .await;
    let stt = Deepgram::new(config(&emulator));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let mut events = Vec::new();
    // 2 s: most of "Hello, yes, I can talk now." (0.5 - 2.7 s), then the turn ends.
    stream(&mut session, &audio[..16000], &mut events).await;
    let ttfb_count = |events: &[SttEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, SttEvent::Ttfb(_)))
            .count()
    };
    // The first TTFB runs from the first audio to the first words.
    until(|| {
        common::drain(&mut session, &mut events);
        ttfb_count(&events) == 1
    })
    .await;
    session.finalize().await.expect("finalize");
    until(|| {
        common::drain(&mut session, &mut events);
        ttfb_count(&events) == 2
    })
    .await;
    // The second runs from Finalize to its final, which the emulator delays by at
    // least 300 ms.
    let ttfbs: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Ttfb(t) => Some(t.latency),
            _ => None,
        })
        .collect();
    assert!(ttfbs[1] >= Duration::from_millis(300), "{ttfbs:?}");
    let last_final = finals(&events).pop().expect("a final");
    assert!(
        last_final.text.starts_with("Hello, yes, I can"),
        "{}",
        last_final.text
    );
    assert!(!last_final.end_of_utterance);
    assert_eq!(emulator.control_messages(), [(0, "Finalize".to_owned())]);
    let from_finalize = emulator.sent_of_type("Results");
    assert_eq!(
        from_finalize
            .last()
            .map(|(_, r)| r["from_finalize"] == true),
        Some(true)
    );

    // A second Finalize with nothing pending gets an empty final: a TTFB mark, no
    // empty transcript.
    session.finalize().await.expect("finalize");
    let mut more = Vec::new();
    until(|| {
        common::drain(&mut session, &mut more);
        more.iter().any(|e| matches!(e, SttEvent::Ttfb(_)))
    })
    .await;
    assert!(
        more.iter().all(|e| !matches!(e, SttEvent::Transcript(_))),
        "{more:?}"
    );
    let empty = emulator.sent_of_type("Results").pop().expect("result").1;
    assert_eq!(empty["channel"]["alternatives"][0]["transcript"], "");
}

#[tokio::test]
async fn dropping_the_session_mid_stream_closes_the_stream_and_sends_nothing_more() {
    let (audio, script) = caller(Variant::Clean);
    let emulator = DeepgramEmulator::start(Options::with_script(script)).await;
    let stt = Deepgram::new(config(&emulator));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let mut events = Vec::new();
    stream(&mut session, &audio[..8000 * 3], &mut events).await;
    drop(session);

    // The task sends CloseStream, reads to the close and answers the close frame.
    until(|| {
        emulator
            .received()
            .iter()
            .any(|r| matches!(r.frame, Frame::Close(Some(1000))))
    })
    .await;
    let received = emulator.received();
    let close_stream = received
        .iter()
        .position(|r| r.frame == Frame::Text(r#"{"type":"CloseStream"}"#.to_owned()))
        .expect("CloseStream");
    assert!(
        received[close_stream..]
            .iter()
            .all(|r| !matches!(r.frame, Frame::Audio(_) | Frame::EmptyBinary)),
        "nothing after CloseStream"
    );
    assert_eq!(emulator.audio(0).len(), 8000 * 3);
    // And no further connection was opened (a reconnect would come after 100 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(emulator.handshakes().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn keepalive_goes_out_every_interval_while_no_audio_flows() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let stt = Deepgram::new(config(&emulator));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let mut events = Vec::new();
    stream(&mut session, &[0xFF; 8000], &mut events).await;
    // 30 s of hold music we do not forward: Deepgram would close after ~10 s.
    tokio::time::sleep(Duration::from_secs(30)).await;
    stream(&mut session, &[0xFF; 800], &mut events).await;
    events.extend(session.close().await);

    let received = emulator.received();
    let last_audio = received
        .iter()
        .filter(|r| matches!(r.frame, Frame::Audio(_)))
        .nth(49)
        .expect("first second of audio")
        .at;
    let keepalives: Vec<_> = received
        .iter()
        .filter(|r| r.frame == Frame::Text(r#"{"type":"KeepAlive"}"#.to_owned()))
        .map(|r| r.at)
        .collect();
    assert_eq!(keepalives.len(), 7, "30 s / 4 s");
    assert_eq!(keepalives[0] - last_audio, Duration::from_secs(4));
    for pair in keepalives.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_secs(4));
    }
    assert!(
        !emulator
            .sent()
            .iter()
            .any(|o| matches!(o.sent, Sent::Close { code: 1011, .. }))
    );
    assert!(
        !events.iter().any(|e| matches!(e, SttEvent::Error(_))),
        "{events:?}"
    );
    assert_eq!(emulator.handshakes().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_idle_close_1011_is_retried_and_the_session_carries_on() {
    let (audio, script) = caller(Variant::Clean);
    let emulator = DeepgramEmulator::start(Options::with_script(script.clone())).await;
    // A keepalive too rare to hold the stream open.
    let stt = Deepgram::new(config(&emulator).keepalive_interval(Duration::from_secs(60)));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let mut events = Vec::new();
    until(|| {
        common::drain(&mut session, &mut events);
        events.iter().any(|e| matches!(e, SttEvent::Reconnected))
    })
    .await;
    let error = events
        .iter()
        .find_map(|e| match e {
            SttEvent::Error(e) => Some(e.clone()),
            _ => None,
        })
        .expect("the 1011 close reported");
    assert_eq!((error.kind, error.status), (ErrorKind::Server, Some(1011)));
    assert!(error.message.contains("net0001"), "{}", error.message);
    stream(&mut session, &audio[..8000 * 4], &mut events).await;
    until(|| {
        common::drain(&mut session, &mut events);
        !finals(&events).is_empty()
    })
    .await;
    assert_eq!(finals(&events)[0].text, script[0].text);
    assert_eq!(emulator.handshakes().len(), 2);
}

#[tokio::test]
async fn a_refused_key_is_permanent_and_not_retried() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let stt = Deepgram::new(config(&emulator).api_key("wrong"));
    let error = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("401");
    assert_eq!((error.kind, error.status), (ErrorKind::Auth, Some(401)));
    assert!(!error.is_retryable());
    assert!(
        error.message.contains("Invalid credentials"),
        "{}",
        error.message
    );
    assert_eq!(emulator.handshakes().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_and_server_errors_are_retried_with_bounded_backoff() {
    let emulator = DeepgramEmulator::start(Options::default().faults(Faults::fail(503, 2))).await;
    let stt = Deepgram::new(config(&emulator));
    let started = tokio::time::Instant::now();
    let session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("third try");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "100 + 200 ms"
    );
    session.close().await;
    let statuses: Vec<u16> = emulator.handshakes().iter().map(|h| h.status).collect();
    assert_eq!(statuses, [503, 503, 101]);

    let emulator = DeepgramEmulator::start(Options::default().faults(Faults::fail(429, 10))).await;
    let stt = Deepgram::new(config(&emulator));
    let error = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("429 every time");
    assert_eq!(
        (error.kind, error.status),
        (ErrorKind::RateLimited, Some(429))
    );
    assert_eq!(emulator.handshakes().len(), 3, "attempts are bounded");
}

#[tokio::test]
async fn a_bad_option_is_a_permanent_400() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let stt = Deepgram::new(config(&emulator).query("interimresults", "true"));
    let error = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("400");
    assert_eq!(
        (error.kind, error.status),
        (ErrorKind::BadRequest, Some(400))
    );
    assert!(
        error.message.contains("interimresults"),
        "{}",
        error.message
    );
    assert_eq!(emulator.handshakes().len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_reconnects_and_resends_the_unfinished_audio() {
    // Noisy audio, so the emulator can place the resent audio in the recording.
    let (audio, script) = caller(Variant::Snr20);
    let emulator = DeepgramEmulator::start(
        Options::with_script(script.clone())
            .reference_audio(audio.clone())
            .faults(Faults::disconnect_after(12)),
    )
    .await;
    let stt = Deepgram::new(config(&emulator).endpointing(Endpointing::Millis(300)));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let mut events = Vec::new();
    stream(&mut session, &audio, &mut events).await;
    events.extend(session.close().await);

    assert!(emulator.sent().iter().any(|o| o.sent == Sent::Dropped));
    let dropped = events
        .iter()
        .position(|e| matches!(e, SttEvent::Error(e) if e.is_retryable()))
        .expect("the drop reported");
    let reconnected = events
        .iter()
        .position(|e| matches!(e, SttEvent::Reconnected))
        .expect("reconnected");
    assert!(dropped < reconnected);

    // Every utterance exactly once, with word times in the session's audio time.
    let finals = finals(&events);
    let texts: Vec<&str> = finals.iter().map(|t| t.text.as_str()).collect();
    let expected: Vec<&str> = script.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, expected);
    for (t, line) in finals.iter().zip(&script) {
        assert!(near(t.words[0].start, secs(line.start), MS), "{}", t.text);
        assert!(
            near(t.words[t.words.len() - 1].end, secs(line.end), MS),
            "{}",
            t.text
        );
    }

    // The second connection got a tail of the recording that reaches back over the gap.
    let (first, second) = (emulator.audio(0), emulator.audio(1));
    assert!(!second.is_empty());
    assert_eq!(second, audio[audio.len() - second.len()..]);
    assert!(first.len() + second.len() > audio.len(), "overlap resent");

    // Usage: the dropped connection counted locally, the second as Deepgram reports.
    let usage = usages(&events);
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert!(!usage[0].reported && usage[1].reported, "{usage:?}");
    assert!((audio_seconds(&usage[1]) - second.len() as f64 / 8000.0).abs() < 0.002);
}

#[tokio::test(start_paused = true)]
async fn reconnects_are_bounded_when_the_service_stays_down() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let stt = Deepgram::new(config(&emulator).keepalive_interval(Duration::from_secs(60)));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let mut events = Vec::new();
    stream(&mut session, &[0xFF; 1600], &mut events).await;
    // The service goes away (no new connections); the open stream idles into a 1011.
    drop(emulator);
    let started = tokio::time::Instant::now();
    while let Some(event) = session.recv().await {
        events.push(event);
    }
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Error(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert!(errors.len() >= 2, "{errors:?}");
    assert_eq!(errors[0].status, Some(1011));
    assert_eq!(errors.last().map(|e| e.kind), Some(ErrorKind::Connection));
    assert!(!events.iter().any(|e| matches!(e, SttEvent::Reconnected)));
    // 10 s idle, then pauses of 100 + 200 ms between the three tries.
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "{:?}",
        started.elapsed()
    );
    assert!(
        session
            .send_audio(Bytes::from_static(&[0xFF; 160]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_key_comes_from_the_config_before_the_environment() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    // A config key wins whatever DEEPGRAM_API_KEY holds.
    let stt = Deepgram::new(
        DeepgramConfig::default()
            .api_key(KEY)
            .base_url(emulator.http_url()),
    );
    let session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    session.close().await;
    assert_eq!(
        emulator.handshakes()[0].header("authorization"),
        Some(format!("Token {KEY}").as_str())
    );
}
