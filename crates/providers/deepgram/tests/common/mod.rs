//! Shared helpers: the caller fixture as mu-law, the emulator script, a config aimed
//! at the emulator, and event collection.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use voxline_audio::g711;
use voxline_core::{RetryPolicy, SttEvent, SttSession, Transcript};
use voxline_deepgram::DeepgramConfig;
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::emulators::deepgram::{DeepgramEmulator, Line};

pub const KEY: &str = "test-deepgram-key";

/// The US caller at 8 kHz as mu-law bytes, and its utterances as an emulator script.
pub fn caller(variant: Variant) -> (Vec<u8>, Vec<Line>) {
    let speech = speech::load("caller_en_us", 8000, variant);
    let mut mulaw = Vec::new();
    g711::mulaw::encode(&speech.samples, &mut mulaw);
    let script = speech
        .utterances
        .iter()
        .map(|u| Line::new(u.text.clone(), u.start_ms / 1000.0, u.end_ms / 1000.0))
        .collect();
    (mulaw, script)
}

/// A config for `emulator` with the test key and short retry pauses.
pub fn config(emulator: &DeepgramEmulator) -> DeepgramConfig {
    DeepgramConfig::default()
        .api_key(KEY)
        .base_url(emulator.ws_url())
        .retry(RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        })
}

/// Sends `audio` in 20 ms mu-law frames (160 bytes), as fast as the session takes it,
/// collecting the events that are ready between frames (as a call loop would).
pub async fn stream(session: &mut SttSession, audio: &[u8], events: &mut Vec<SttEvent>) {
    for frame in audio.chunks(160) {
        session
            .send_audio(Bytes::copy_from_slice(frame))
            .await
            .expect("session open");
        drain(session, events);
    }
}

/// Collects the events already waiting.
pub fn drain(session: &mut SttSession, events: &mut Vec<SttEvent>) {
    while let Some(Some(event)) = session.recv().now_or_never() {
        events.push(event);
    }
}

/// The final, non-empty transcripts among `events`.
pub fn finals(events: &[SttEvent]) -> Vec<Transcript> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Transcript(t) if t.is_final && !t.text.is_empty() => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// Seconds as a duration.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// `|a - b| <= tolerance`.
pub fn near(a: Duration, b: Duration, tolerance: Duration) -> bool {
    a.abs_diff(b) <= tolerance
}
