//! Run with `cargo run --example azure`
//!
//! Azure AI Speech over REST: synthesises a sentence to 8 kHz mu-law phone audio
//! (bytes, duration, time to first audio, characters billed) and transcribes the first
//! utterance of the 8 kHz caller fixture (text, offset and duration, time from the end
//! of the turn to the result).
//!
//! With `AZURE_SPEECH_KEY` and `AZURE_SPEECH_REGION` set it calls the real service;
//! otherwise it starts the emulator from `voxline-testkit` on 127.0.0.1, scripted with
//! the fixture's own transcript, and runs offline.

use bytes::Bytes;
use voxline_audio::{AudioFormat, g711};
use voxline_azure::{AzureConfig, AzureStt, AzureTts, KEY_ENV, REGION_ENV};
use voxline_core::{
    SpeechToText, SttConfig, SttEvent, TextToSpeech, TtsConfig, TtsEvent, UsageKind,
};
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::emulators::azure::{Config, Emulator, Recognition};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let caller = speech::load("caller_en_us", 8000, Variant::Clean);
    let first = &caller.utterances[0];

    // The real service when both variables are set, else the emulator.
    let real = std::env::var(KEY_ENV).is_ok() && std::env::var(REGION_ENV).is_ok();
    let _emulator; // kept alive for the whole run
    let config = if real {
        println!("Azure AI Speech (real API, region from {REGION_ENV})");
        AzureConfig::new()
    } else {
        let emulator = Emulator::start(
            Config::default().recognitions(vec![Recognition::success(first.text.clone())]),
        )
        .await;
        println!(
            "Azure AI Speech emulator at {} (set {KEY_ENV} and {REGION_ENV} for the real API)",
            emulator.url()
        );
        let config = AzureConfig::new()
            .key(emulator.key())
            .base_url(emulator.url());
        _emulator = emulator;
        config
    };

    // Text to speech, straight to phone audio.
    let format = AudioFormat::MULAW_8K;
    let mut tts = AzureTts::new(config.clone())?
        .connect(TtsConfig::new(format).voice("en-US-JennyNeural"))
        .await?;
    let sentence = "Thanks for calling Whitefield Homes. How can I help you today?";
    let request = tts.say(sentence).await?;
    let mut audio = 0;
    while let Some(event) = tts.recv().await {
        match event {
            TtsEvent::Audio { audio: a, .. } => audio += a.len(),
            TtsEvent::Ttfb { ttfb, .. } => println!("tts: first audio after {:?}", ttfb.latency),
            TtsEvent::Usage(u) => {
                if let UsageKind::Characters(n) = u.kind {
                    println!("tts: {n} characters");
                }
            }
            TtsEvent::Error { error, .. } => println!("tts: error: {error}"),
            TtsEvent::Done { request: r } if r == request => break,
            _ => {}
        }
    }
    println!(
        "tts: {audio} bytes of {format} = {:?} of audio",
        format.duration_of(audio)
    );

    // Speech to text: the caller's first utterance, as a phone line carries it.
    let end = (((first.end_ms + 300.0) * 8.0) as usize).min(caller.samples.len());
    let mut mulaw = Vec::new();
    g711::mulaw::encode(&caller.samples[..end], &mut mulaw);
    let mut stt = AzureStt::new(config)?
        .connect(SttConfig::new(format).language("en-US"))
        .await?;
    for frame in mulaw.chunks(format.frame_bytes(20)) {
        stt.send_audio(Bytes::copy_from_slice(frame)).await?;
    }
    stt.finalize().await?;
    while let Some(event) = stt.recv().await {
        match event {
            SttEvent::Ttfb(t) => println!("stt: result {:?} after the end of the turn", t.latency),
            SttEvent::Transcript(t) => println!(
                "stt: {:?} at {:?} for {:?} (confidence {:?}; expected {:?})",
                t.text, t.start, t.duration, t.confidence, first.text
            ),
            SttEvent::Usage(u) => {
                if let UsageKind::AudioSeconds(s) = u.kind {
                    println!("stt: {s:.2} s of audio sent");
                }
                break;
            }
            SttEvent::Error(e) => {
                println!("stt: error: {e}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}
