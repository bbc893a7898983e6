//! The batch transcription adapter against the emulator: phone audio wrapped as WAV,
//! multipart fields, one final transcript per finalize, usage, caps and errors.

mod common;

use std::time::Duration;

use bytes::Bytes;
use voxline_core::{ErrorKind, SpeechToText, SttConfig, SttEvent, SttSession, UsageKind};
use voxline_fixtures::speech::{self, Variant};
use voxline_openai::audio::AudioFormat;
use voxline_openai::{OpenAiTranscription, TranscriptionConfig};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::openai::{Config, OpenAiEmulator, RecordedRequest};

const PATH: &str = "/v1/audio/transcriptions";

/// The first utterance of the 8 kHz fixture as mu-law (encoded with the reference
/// table, not with the code under test), and its text.
fn first_utterance_mulaw() -> (Vec<u8>, String) {
    let speech = speech::load("caller_en_us", 8000, Variant::Clean);
    let utterance = &speech.utterances[0];
    let from = (utterance.start_ms * 8.0) as usize;
    let to = (utterance.end_ms * 8.0) as usize;
    let table = voxline_fixtures::g711::mulaw_encode_all();
    let mulaw = speech.samples[from..to]
        .iter()
        .map(|&s| table[(i32::from(s) + 32768) as usize])
        .collect();
    (mulaw, utterance.text.clone())
}

fn stt(emulator: &OpenAiEmulator, model: &str) -> OpenAiTranscription {
    OpenAiTranscription::new(TranscriptionConfig::with_api(common::api(emulator), model))
        .expect("client")
}

async fn send_in_frames(session: &SttSession, audio: &[u8], frame: usize) {
    for chunk in audio.chunks(frame) {
        session
            .send_audio(Bytes::copy_from_slice(chunk))
            .await
            .expect("open");
    }
}

/// The format and samples of the uploaded WAV, read by hand (RIFF chunks), so the
/// test does not trust the WAV code it checks.
fn wav_of(request: &RecordedRequest) -> (WavSpec, Vec<i16>) {
    let bytes = &request.file.as_ref().expect("a file part").bytes;
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    assert_eq!(u32_at(4) as usize, bytes.len() - 8, "RIFF size");
    let mut at = 12;
    let mut spec = None;
    while at + 8 <= bytes.len() {
        let (id, size) = (&bytes[at..at + 4], u32_at(at + 4) as usize);
        let body = at + 8;
        if id == b"fmt " {
            assert_eq!(u16_at(body), 1, "PCM format tag");
            spec = Some(WavSpec {
                channels: u16_at(body + 2),
                sample_rate: u32_at(body + 4),
                bits_per_sample: u16_at(body + 14),
            });
        } else if id == b"data" {
            assert_eq!(body + size, bytes.len(), "data runs to the end");
            let samples = bytes[body..]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return (spec.expect("fmt before data"), samples);
        }
        at = body + size + (size & 1);
    }
    panic!("no data chunk");
}

#[derive(Debug, PartialEq)]
struct WavSpec {
    channels: u16,
    sample_rate: u32,
    bits_per_sample: u16,
}

#[tokio::test]
async fn a_phone_utterance_is_sent_as_pcm16_wav_and_comes_back_as_one_final_transcript() {
    let (mulaw, text) = first_utterance_mulaw();
    let emulator = common::emulator(Config {
        transcripts: vec![text.clone()],
        ..Config::default()
    })
    .await;
    let stt = stt(&emulator, "gpt-4o-mini-transcribe");
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K).language("en-US"))
        .await
        .expect("session");
    send_in_frames(&session, &mulaw, 160).await;
    session.finalize().await.expect("open");

    let mut events = Vec::new();
    while events.len() < 4 {
        events.push(session.recv().await.expect("event"));
    }
    assert!(matches!(events[0], SttEvent::Ttfb(_)), "{events:?}");
    match &events[1] {
        SttEvent::Transcript(t) => {
            assert_eq!(t.text, text);
            assert!(t.is_final && t.end_of_utterance);
            assert_eq!(t.start, Duration::ZERO);
            assert_eq!(
                t.duration,
                Duration::from_micros(mulaw.len() as u64 * 125),
                "8000 samples a second"
            );
        }
        other => panic!("transcript expected, got {other:?}"),
    }
    let seconds = mulaw.len() as f64 / 8000.0;
    match &events[2] {
        SttEvent::Usage(u) => {
            assert_eq!(u.kind, UsageKind::AudioSeconds(seconds));
            assert!(!u.reported, "gpt-4o models report tokens, not seconds");
        }
        other => panic!("usage expected, got {other:?}"),
    }
    match &events[3] {
        SttEvent::Usage(u) => {
            assert!(u.reported);
            assert!(
                matches!(u.kind, UsageKind::Tokens { prompt, .. } if prompt == (seconds * 10.0).ceil() as u64)
            );
        }
        other => panic!("token usage expected, got {other:?}"),
    }

    let requests = emulator.requests_to(PATH);
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.status, 200);
    assert!(
        sent.header("content-type")
            .is_some_and(|c| c.starts_with("multipart/form-data; boundary="))
    );
    assert_eq!(sent.body["model"], "gpt-4o-mini-transcribe");
    assert_eq!(sent.body["response_format"], "json");
    assert_eq!(sent.body["language"], "en", "ISO-639-1, not en-US");
    let file = sent.file.as_ref().expect("file");
    assert_eq!(file.filename.as_deref(), Some("audio.wav"));
    assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
    // The WAV: 8 kHz mono PCM16 holding exactly the decoded mu-law, sample for sample.
    let (spec, samples) = wav_of(sent);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    let decode = voxline_fixtures::g711::decode_tables().mulaw_decode;
    let expected: Vec<i16> = mulaw.iter().map(|&c| decode[c as usize]).collect();
    assert_eq!(samples, expected);

    // Closing with nothing buffered ends the session without another request.
    let rest = session.close().await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(emulator.requests_to(PATH).len(), 1);
}

#[tokio::test]
async fn utterances_are_transcribed_in_order_with_their_offsets_and_whisper_reports_seconds() {
    let emulator = common::emulator(Config {
        transcripts: vec!["one".into(), "two".into()],
        ..Config::default()
    })
    .await;
    // One request at a time, so the emulator's scripted transcripts meet the
    // utterances in order (results are delivered in order either way).
    let mut config = TranscriptionConfig::with_api(common::api(&emulator), "whisper-1");
    config.max_in_flight = 1;
    let stt = OpenAiTranscription::new(config).expect("client");
    let session = stt
        .connect(SttConfig::new(AudioFormat::PCM16_8K))
        .await
        .expect("session");
    let second = vec![0u8; 16_000]; // 1 s of PCM16 silence at 8 kHz
    send_in_frames(&session, &second, 320).await;
    session.finalize().await.expect("open");
    send_in_frames(&session, &second[..8_000], 320).await;
    // close() transcribes what is still buffered.
    let events = session.close().await;
    let transcripts: Vec<(String, Duration, Duration)> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Transcript(t) => Some((t.text.clone(), t.start, t.duration)),
            _ => None,
        })
        .collect();
    assert_eq!(
        transcripts,
        [
            ("one".into(), Duration::ZERO, Duration::from_secs(1)),
            (
                "two".into(),
                Duration::from_secs(1),
                Duration::from_millis(500)
            ),
        ]
    );
    let seconds: Vec<(f64, bool)> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Usage(u) => match u.kind {
                UsageKind::AudioSeconds(s) => Some((s, u.reported)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    // whisper-1's usage is whole seconds of duration, reported by the service.
    assert_eq!(seconds, [(1.0, true), (1.0, true)]);
    assert_eq!(emulator.requests_to(PATH).len(), 2);
    assert!(emulator.requests_to(PATH)[0].body.get("language").is_none());
}

#[tokio::test]
async fn utterances_are_capped_and_too_short_ones_are_not_sent() {
    let emulator = common::emulator(Config {
        transcripts: vec!["capped".into()],
        ..Config::default()
    })
    .await;
    let mut config = TranscriptionConfig::with_api(common::api(&emulator), "whisper-1");
    config.max_utterance = Duration::from_secs(1);
    let stt = OpenAiTranscription::new(config).expect("client");
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    // 50 ms: under the API's 0.1 s minimum.
    send_in_frames(&session, &[0xFF; 400], 160).await;
    session.finalize().await.expect("open");
    match session.recv().await.expect("event") {
        SttEvent::Transcript(t) => assert!(t.text.is_empty() && t.is_final),
        other => panic!("empty final transcript expected, got {other:?}"),
    }
    assert!(emulator.requests_to(PATH).is_empty());

    // 3 s into a 1 s cap.
    send_in_frames(&session, &vec![0x7Fu8; 24_000], 160).await;
    session.finalize().await.expect("open");
    let events = session.close().await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SttEvent::Transcript(t) if t.text == "capped" && t.duration == Duration::from_secs(3)))
    );
    let (spec, samples) = wav_of(&emulator.requests_to(PATH)[0]);
    assert_eq!(spec.sample_rate, 8000);
    assert_eq!(samples.len(), 8000, "one second kept");
}

#[tokio::test]
async fn audio_is_resampled_when_a_rate_is_configured() {
    let emulator = common::emulator(Config::default()).await;
    let mut config = TranscriptionConfig::with_api(common::api(&emulator), "gpt-4o-transcribe");
    config.sample_rate = Some(16_000);
    let stt = OpenAiTranscription::new(config).expect("client");
    let session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    send_in_frames(&session, &[0xFF; 8000], 160).await;
    let events = session.close().await;
    assert!(events.iter().any(|e| matches!(e, SttEvent::Transcript(_))));
    let (spec, samples) = wav_of(&emulator.requests_to(PATH)[0]);
    assert_eq!(spec.sample_rate, 16_000);
    assert_eq!(samples.len(), 16_000);
}

#[tokio::test]
async fn a_wrong_key_ends_the_session_with_a_permanent_error() {
    let emulator = common::emulator(Config::default()).await;
    let stt = OpenAiTranscription::new(TranscriptionConfig::with_api(
        common::api(&emulator).api_key("sk-bad"),
        "whisper-1",
    ))
    .expect("client");
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    send_in_frames(&session, &[0xFF; 1600], 160).await;
    session.finalize().await.expect("open");
    match session.recv().await.expect("event") {
        SttEvent::Error(e) => {
            assert_eq!(e.kind, ErrorKind::Auth);
            assert!(!e.is_retryable());
        }
        other => panic!("error expected, got {other:?}"),
    }
    assert_eq!(session.recv().await, None, "the session ended");
    assert_eq!(emulator.requests_to(PATH).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_and_the_transcript_still_arrives() {
    let emulator = common::emulator(Config {
        faults: Faults::fail(503, 2),
        transcripts: vec!["after retries".into()],
        ..Config::default()
    })
    .await;
    let stt = stt(&emulator, "whisper-1");
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    send_in_frames(&session, &[0xFF; 1600], 160).await;
    session.finalize().await.expect("open");
    let mut text = None;
    while let Some(event) = session.recv().await {
        if let SttEvent::Transcript(t) = event {
            text = Some(t.text);
            break;
        }
    }
    assert_eq!(text.as_deref(), Some("after retries"));
    let statuses: Vec<u16> = emulator
        .requests_to(PATH)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    // The retry carried the whole file again (the failed attempts were refused
    // before their bodies were read).
    let last = &emulator.requests_to(PATH)[2];
    assert_eq!(wav_of(last).1.len(), 1600);
}
