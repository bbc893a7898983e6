//! Azure short-audio STT adapter against the emulator on 127.0.0.1.

use std::time::Duration;

use bytes::Bytes;
use voxline_audio::{AudioFormat, g711, pcm};
use voxline_azure::{AzureConfig, AzureStt, ResultFormat, SttOptions};
use voxline_core::{
    ErrorKind, ProviderError, RetryPolicy, SpeechToText, SttConfig, SttEvent, SttSession,
    Transcript, UsageKind,
};
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::azure::{Auth, Config, Emulator, Recognition};

fn config(emulator: &Emulator) -> AzureConfig {
    AzureConfig::new()
        .key(emulator.key())
        .base_url(emulator.url())
        .retry(RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        })
}

async fn session(emulator: &Emulator, stt: SttConfig) -> SttSession {
    AzureStt::new(config(emulator))
        .expect("client")
        .connect(stt)
        .await
        .expect("session")
}

/// Sends `audio` in 20 ms frames of `format`.
async fn send(session: &SttSession, format: AudioFormat, audio: &[u8]) {
    for frame in audio.chunks(format.frame_bytes(20)) {
        session
            .send_audio(Bytes::copy_from_slice(frame))
            .await
            .expect("open");
    }
}

/// What one utterance produced.
#[derive(Debug, Default)]
struct Outcome {
    transcript: Option<Transcript>,
    ttfb: usize,
    audio_seconds: f64,
    errors: Vec<ProviderError>,
}

/// Events until the next transcript or error.
async fn next_result(session: &mut SttSession) -> Outcome {
    let mut out = Outcome::default();
    while let Some(event) = session.recv().await {
        match event {
            SttEvent::Transcript(t) => {
                assert!(out.transcript.is_none());
                out.transcript = Some(t);
            }
            SttEvent::Ttfb(_) => out.ttfb += 1,
            SttEvent::Usage(u) => {
                assert!(!u.reported);
                match u.kind {
                    UsageKind::AudioSeconds(s) => out.audio_seconds += s,
                    other => panic!("unexpected usage {other:?}"),
                }
                // Usage is the last event of an utterance.
                return out;
            }
            SttEvent::Error(e) => {
                out.errors.push(e);
                return out;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

/// The first utterance of the 8 kHz fixture with 300 ms of trailing silence, as 8 kHz
/// mu-law, and its label.
fn first_utterance_mulaw() -> (Vec<u8>, speech::Utterance) {
    let fixture = speech::load("caller_en_us", 8000, Variant::Clean);
    let utterance = fixture.utterances[0].clone();
    let end = ((utterance.end_ms + 300.0) * 8.0) as usize;
    let mut mulaw = Vec::new();
    g711::mulaw::encode(&fixture.samples[..end], &mut mulaw);
    (mulaw, utterance)
}

fn query(request: &voxline_testkit::emulators::azure::SttRequest, name: &str) -> Option<String> {
    request
        .query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn transcribes_an_utterance_of_8k_mulaw_as_a_16k_wav() {
    let (mulaw, utterance) = first_utterance_mulaw();
    let emulator = Emulator::start(
        Config::default().recognitions(vec![Recognition::success(utterance.text.clone())]),
    )
    .await;
    let mut stt = session(
        &emulator,
        SttConfig::new(AudioFormat::MULAW_8K).language("en-US"),
    )
    .await;
    send(&stt, AudioFormat::MULAW_8K, &mulaw).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let t = out.transcript.expect("a transcript");
    assert_eq!(t.text, utterance.text);
    assert!(t.is_final && t.end_of_utterance);
    assert_eq!(t.confidence, Some(0.93));
    assert_eq!(t.language.as_deref(), Some("en-US"));
    // The emulator measures Offset/Duration where the audio is not silent.
    let start_ms = t.start.as_secs_f64() * 1000.0;
    let end_ms = (t.start + t.duration).as_secs_f64() * 1000.0;
    assert!(
        (start_ms - utterance.start_ms).abs() < 30.0,
        "start {start_ms}"
    );
    assert!((end_ms - utterance.end_ms).abs() < 30.0, "end {end_ms}");
    assert_eq!(out.ttfb, 1);
    let sent = AudioFormat::MULAW_8K.duration_of(mulaw.len());
    assert!((out.audio_seconds - sent.as_secs_f64()).abs() < 1e-6);

    let requests = emulator.stt().snapshot();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.status, 200, "{:?}", r.rejection);
    assert_eq!(r.mode, "conversation");
    assert_eq!(query(r, "language").as_deref(), Some("en-US"));
    assert_eq!(query(r, "format").as_deref(), Some("detailed"));
    assert_eq!(r.auth, Auth::Key(emulator.key().to_owned()));
    assert_eq!(
        header(&r.headers, "content-type"),
        Some("audio/wav; codecs=audio/pcm; samplerate=16000")
    );
    assert_eq!(header(&r.headers, "accept"), Some("application/json"));
    let wav = r.wav.as_ref().expect("a WAV");
    assert_eq!(
        (
            wav.format_tag,
            wav.channels,
            wav.sample_rate,
            wav.bits_per_sample
        ),
        (1, 1, 16000, 16)
    );
    // Twice the samples: the duration is preserved exactly.
    assert_eq!(wav.samples.len(), 2 * mulaw.len());
    assert_eq!(wav.duration, sent);
}

#[tokio::test]
async fn pcm16_at_16k_is_sent_unchanged() {
    let emulator =
        Emulator::start(Config::default().recognitions(vec![Recognition::success("Hello, yes.")]))
            .await;
    let fixture = speech::load("caller_en_us", 16000, Variant::Clean);
    let samples = &fixture.samples[..16000 * 2];
    let mut bytes = Vec::new();
    pcm::encode_le(samples, &mut bytes);
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::PCM16_16K)).await;
    send(&stt, AudioFormat::PCM16_16K, &bytes).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert_eq!(
        out.transcript.map(|t| t.text).as_deref(),
        Some("Hello, yes.")
    );
    let wav = emulator.stt().snapshot()[0].wav.clone().expect("a WAV");
    assert_eq!(wav.samples, samples);
}

#[tokio::test]
async fn later_utterances_are_placed_in_session_time() {
    let emulator = Emulator::start(Config::default().recognitions(vec![
        Recognition::success("One.").at(Duration::from_millis(100), Duration::from_millis(500)),
        Recognition::success("Two.").at(Duration::from_millis(200), Duration::from_millis(400)),
    ]))
    .await;
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    // 1.5 s, then 1 s.
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 12_000]).await;
    stt.finalize().await.expect("open");
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 8_000]).await;
    stt.finalize().await.expect("open");
    let first = next_result(&mut stt).await.transcript.expect("first");
    let second = next_result(&mut stt).await.transcript.expect("second");
    assert_eq!(
        (first.text.as_str(), second.text.as_str()),
        ("One.", "Two.")
    );
    assert_eq!(first.start, Duration::from_millis(100));
    assert_eq!(second.start, Duration::from_millis(1700));
    assert_eq!(second.duration, Duration::from_millis(400));
}

#[tokio::test]
async fn no_match_and_silence_give_an_empty_final_transcript() {
    let emulator =
        Emulator::start(Config::default().recognitions(vec![Recognition::status("NoMatch")])).await;
    let (mulaw, _) = first_utterance_mulaw();
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    send(&stt, AudioFormat::MULAW_8K, &mulaw).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    let t = out.transcript.expect("a transcript");
    assert_eq!(t.text, "");
    assert!(t.is_final && t.end_of_utterance);
    assert_eq!(t.confidence, None);
    assert!(out.errors.is_empty());
    // Script exhausted, silent audio: the emulator answers InitialSilenceTimeout.
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 8000]).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert_eq!(out.transcript.map(|t| t.text).as_deref(), Some(""));
    let answered = emulator.stt().snapshot()[1]
        .response
        .clone()
        .expect("answered");
    assert_eq!(answered["RecognitionStatus"], "InitialSilenceTimeout");
}

#[tokio::test]
async fn simple_format_reads_display_text() {
    let emulator = Emulator::start(
        Config::default().recognitions(vec![Recognition::success("Remind me to buy 5 pencils.")]),
    )
    .await;
    let stt = AzureStt::new(config(&emulator))
        .expect("client")
        .with_options(SttOptions::new().format(ResultFormat::Simple));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K).language("en-GB"))
        .await
        .expect("session");
    send(&session, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    session.finalize().await.expect("open");
    let t = next_result(&mut session)
        .await
        .transcript
        .expect("a transcript");
    assert_eq!(t.text, "Remind me to buy 5 pencils.");
    assert_eq!(t.confidence, None, "simple results have no confidence");
    assert_eq!(t.language.as_deref(), Some("en-GB"));
    let r = &emulator.stt().snapshot()[0];
    assert_eq!(query(r, "format").as_deref(), Some("simple"));
    assert_eq!(query(r, "language").as_deref(), Some("en-GB"));
    assert!(
        r.response
            .as_ref()
            .is_some_and(|j| j.get("DisplayText").is_some())
    );
}

#[tokio::test]
async fn audio_beyond_60_seconds_is_not_sent() {
    let emulator =
        Emulator::start(Config::default().recognitions(vec![Recognition::success("Long.")])).await;
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    // 61 s of a quiet tone.
    let tone: Vec<i16> = (0..8000 * 61)
        .map(|n| ((n % 16) as i16 - 8) * 200)
        .collect();
    let mut mulaw = Vec::new();
    g711::mulaw::encode(&tone, &mut mulaw);
    send(&stt, AudioFormat::MULAW_8K, &mulaw).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.transcript.map(|t| t.text).as_deref(), Some("Long."));
    assert!(
        (out.audio_seconds - 60.0).abs() < 1e-9,
        "{}",
        out.audio_seconds
    );
    let r = &emulator.stt().snapshot()[0];
    assert_eq!(r.status, 200, "{:?}", r.rejection);
    assert_eq!(
        r.wav.as_ref().map(|w| w.duration),
        Some(Duration::from_secs(60))
    );
    // The next utterance starts after all 61 s of session audio.
    send(&stt, AudioFormat::MULAW_8K, &mulaw[..8000]).await;
    stt.finalize().await.expect("open");
    let t = next_result(&mut stt)
        .await
        .transcript
        .expect("a transcript");
    assert!(t.start >= Duration::from_secs(61), "{:?}", t.start);
}

#[tokio::test]
async fn wrong_key_is_permanent_and_ends_the_session() {
    let emulator = Emulator::start(Config::default()).await;
    let stt = AzureStt::new(config(&emulator).key("wrong")).expect("client");
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    send(&session, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    session.finalize().await.expect("open");
    let out = next_result(&mut session).await;
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].kind, ErrorKind::Auth);
    assert_eq!(out.errors[0].status, Some(401));
    assert!(session.recv().await.is_none(), "the session ends");
    assert_eq!(emulator.stt().len(), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_rate_limits_are_retried() {
    for (status, min, max) in [
        (500, Duration::from_millis(300), Duration::from_secs(1)),
        (429, Duration::from_secs(2), Duration::from_secs(3)),
    ] {
        let emulator = Emulator::start(
            Config::default()
                .faults(Faults::fail(status, 2))
                .recognitions(vec![Recognition::success("Finally.")]),
        )
        .await;
        let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
        send(&stt, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
        let started = tokio::time::Instant::now();
        stt.finalize().await.expect("open");
        let out = next_result(&mut stt).await;
        assert_eq!(out.transcript.map(|t| t.text).as_deref(), Some("Finally."));
        let statuses: Vec<u16> = emulator.stt().snapshot().iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![status, status, 200]);
        let elapsed = started.elapsed();
        assert!(elapsed >= min && elapsed < max, "{status}: {elapsed:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_report_a_retryable_error_and_the_session_goes_on() {
    let emulator = Emulator::start(
        Config::default()
            .faults(Faults::fail(503, 3))
            .recognitions(vec![Recognition::success("Later.")]),
    )
    .await;
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert_eq!(out.errors.first().map(|e| e.kind), Some(ErrorKind::Server));
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert_eq!(out.transcript.map(|t| t.text).as_deref(), Some("Later."));
}

#[tokio::test(start_paused = true)]
async fn recognition_status_error_is_retried() {
    let emulator = Emulator::start(Config::default().recognitions(vec![
        Recognition::status("Error"),
        Recognition::success("Second try."),
    ]))
    .await;
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert_eq!(
        out.transcript.map(|t| t.text).as_deref(),
        Some("Second try.")
    );
    assert_eq!(emulator.stt().len(), 2);
}

#[tokio::test]
async fn a_dropped_response_is_retried() {
    let emulator = Emulator::start(
        Config::default()
            .faults(Faults::disconnect_after(0))
            .recognitions(vec![Recognition::success("After the drop.")]),
    )
    .await;
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    stt.finalize().await.expect("open");
    let out = next_result(&mut stt).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        out.transcript.map(|t| t.text).as_deref(),
        Some("After the drop.")
    );
    assert_eq!(emulator.stt().len(), 2, "cut, then retried");
}

#[tokio::test]
async fn closing_recognises_buffered_audio_first() {
    let emulator =
        Emulator::start(Config::default().recognitions(vec![Recognition::success("Goodbye.")]))
            .await;
    let stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    let events = stt.close().await;
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Transcript(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec!["Goodbye."]);
}

#[tokio::test]
async fn finalize_without_audio_sends_nothing() {
    let emulator = Emulator::start(Config::default()).await;
    let stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    stt.finalize().await.expect("open");
    let events = stt.close().await;
    assert!(events.is_empty(), "{events:?}");
    assert!(emulator.stt().is_empty());
}

#[tokio::test(start_paused = true)]
async fn ttfb_runs_from_finalize_to_the_result() {
    let emulator = Emulator::start(
        Config::default()
            .faults(Faults::latency(Duration::from_millis(400)))
            .recognitions(vec![Recognition::success("Slow.")]),
    )
    .await;
    let mut stt = session(&emulator, SttConfig::new(AudioFormat::MULAW_8K)).await;
    send(&stt, AudioFormat::MULAW_8K, &[0xFF; 1600]).await;
    stt.finalize().await.expect("open");
    let mut ttfb = None;
    while let Some(event) = stt.recv().await {
        match event {
            SttEvent::Ttfb(t) => ttfb = Some(t.latency),
            SttEvent::Usage(_) => break,
            _ => {}
        }
    }
    let ttfb = ttfb.expect("a TTFB mark");
    assert!(
        ttfb >= Duration::from_millis(400) && ttfb < Duration::from_secs(1),
        "{ttfb:?}"
    );
}
