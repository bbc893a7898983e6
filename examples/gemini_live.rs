//! Run with `cargo run --example gemini_live`
//!
//! A phone call to Gemini Live speech-to-speech: the caller fixture
//! (`caller_en_us_8k.wav`, its first two sentences) goes in as 8 kHz mu-law in 20 ms
//! frames, paced in real time as a carrier sends it, and the model's replies come back
//! as 8 kHz mu-law. It prints the transcripts both ways, interruptions (the caller's
//! second sentence talks over the first reply), turn ends, the time to first audio,
//! token usage and how much audio went each way.
//!
//! With `GOOGLE_API_KEY` or `GEMINI_API_KEY` set it talks to the real service.
//! Otherwise it starts the Gemini Live emulator on 127.0.0.1, scripted with the
//! fixture's words and tone replies.

use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use voxline_audio::AudioFormat;
use voxline_audio::g711::mulaw;
use voxline_core::{RealtimeConfig, RealtimeEvent, RealtimeModel, UsageKind};
use voxline_fixtures::speech::{self, Variant};
use voxline_gemini::{API_KEY_ENVS, Gemini, GeminiConfig};
use voxline_testkit::emulators::gemini::{GeminiEmulator, Options, Turn};

#[tokio::main]
async fn main() -> Result<()> {
    let caller = speech::load("caller_en_us", 8000, Variant::Clean);
    // The first two sentences and a pause for the answer.
    let end = caller.utterances[1].end_ms / 1000.0 + 3.0;
    let samples = &caller.samples[..((end * 8000.0) as usize).min(caller.samples.len())];
    let mut audio = Vec::new();
    mulaw::encode(samples, &mut audio);

    let real = API_KEY_ENVS
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|k| !k.trim().is_empty()));
    // Kept alive for the whole run: the emulator stops when dropped.
    let mut _emulator = None;
    let config = if real {
        println!("Gemini Live (real service)");
        GeminiConfig::default()
    } else {
        let script = vec![
            Turn::new("Great, what are you looking for?", Duration::from_secs(2))
                .heard(caller.utterances[0].text.clone()),
            Turn::new(
                "Whitefield, noted. What is your budget?",
                Duration::from_millis(1500),
            )
            .heard(caller.utterances[1].text.clone()),
        ];
        let options = Options::with_script(script);
        let key = options.api_key.clone();
        let emulator = GeminiEmulator::start(options).await;
        println!(
            "no API key set: Gemini Live emulator at {}",
            emulator.ws_url()
        );
        let config = GeminiConfig::default()
            .api_key(key)
            .base_url(emulator.ws_url());
        _emulator = Some(emulator);
        config
    };
    let model = Gemini::new(config);
    let session = model
        .connect(
            RealtimeConfig::new(AudioFormat::MULAW_8K)
                .instructions("You are a friendly real-estate agent on a phone call. Be brief."),
        )
        .await?;
    println!(
        "setup complete; streaming {:.1} s of caller audio",
        audio.len() as f64 / 8000.0
    );
    let (sender, mut events) = session.split();
    let sent = audio.len();
    let feeder = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in audio.chunks(160) {
            tick.tick().await;
            if sender
                .send_audio(Bytes::copy_from_slice(frame))
                .await
                .is_err()
            {
                break;
            }
        }
        sender
    });

    let mut received = 0usize;
    let mut feeder = Some(feeder);
    let mut _sender = None;
    loop {
        let event = match tokio::time::timeout(Duration::from_secs(4), events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            // Quiet for 4 s: stop once all audio is sent.
            Err(_) if feeder.as_ref().is_none_or(|f| f.is_finished()) => break,
            Err(_) => continue,
        };
        if let Some(f) = feeder.take_if(|f| f.is_finished()) {
            _sender = Some(f.await?);
        }
        match event {
            RealtimeEvent::Audio(bytes) => received += bytes.len(),
            RealtimeEvent::InputTranscript { text, is_final } => {
                println!("caller{}: {text}", if is_final { "" } else { " (part)" })
            }
            RealtimeEvent::OutputTranscript { text, .. } => println!("model: {text}"),
            RealtimeEvent::Interrupted => println!("-- interrupted by the caller"),
            RealtimeEvent::TurnComplete => println!(
                "-- model turn complete ({:.2} s of audio so far)",
                received as f64 / 8000.0
            ),
            RealtimeEvent::Ttfb(t) => println!("-- time to first audio: {:?}", t.latency),
            RealtimeEvent::Usage(u) => {
                if let UsageKind::Tokens { prompt, completion } = u.kind {
                    println!("-- usage: {prompt} prompt tokens, {completion} response tokens");
                }
            }
            RealtimeEvent::ToolCall(call) => {
                println!("-- tool call {}({})", call.name, call.arguments)
            }
            RealtimeEvent::Reconnected => println!("-- reconnected (session resumed)"),
            RealtimeEvent::Error(e) => println!("-- error: {e}"),
            other => println!("-- {other:?}"),
        }
    }
    println!(
        "caller audio sent: {sent} bytes ({:.2} s of 8 kHz mu-law); model audio received: {received} bytes ({:.2} s)",
        sent as f64 / 8000.0,
        received as f64 / 8000.0
    );
    Ok(())
}
