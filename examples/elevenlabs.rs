//! Run with `cargo run --example elevenlabs`
//!
//! Synthesises two sentences as 8 kHz mu-law, the phone line's own format (requested
//! as `ulaw_8000`, so nothing is transcoded), and prints the bytes received, the audio
//! duration, the time to first byte and the usage. With `ELEVENLABS_API_KEY` set it
//! calls the real API; otherwise it starts the local emulator, whose "speech" is a
//! tone of 10 ms per character.
//!
//! Options: `--http` uses the HTTP streaming fallback instead of the WebSocket,
//! `--wav out.wav` writes the audio to a WAV file, `--voice ID` picks a voice.

use std::path::PathBuf;

use clap::Parser;
use voxline_audio::AudioFormat;
use voxline_core::{TextToSpeech, TtsConfig, TtsEvent, UsageKind};
use voxline_elevenlabs::{ElevenLabs, ElevenLabsConfig, ElevenLabsHttp};
use voxline_testkit::emulators::elevenlabs::{
    DEFAULT_API_KEY, ElevenLabsEmulator, ElevenLabsOptions,
};

#[derive(Parser)]
struct Args {
    /// Use `POST .../stream`, one request per sentence.
    #[arg(long)]
    http: bool,
    /// Write the audio to this WAV file (8 kHz mu-law).
    #[arg(long)]
    wav: Option<PathBuf>,
    /// The voice id (default: the adapter's).
    #[arg(long)]
    voice: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Keep the emulator alive for the whole run.
    let (_emulator, config) = match std::env::var("ELEVENLABS_API_KEY") {
        Ok(key) if !key.trim().is_empty() => {
            println!("ELEVENLABS_API_KEY is set: using the real API");
            (None, ElevenLabsConfig::default())
        }
        _ => {
            let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
            println!(
                "ELEVENLABS_API_KEY not set: using the local emulator at {}",
                emulator.http_url()
            );
            let config = ElevenLabsConfig::default()
                .api_key(DEFAULT_API_KEY)
                .base_url(emulator.http_url());
            (Some(emulator), config)
        }
    };
    let tts: Box<dyn TextToSpeech> = if args.http {
        Box::new(ElevenLabsHttp::new(config))
    } else {
        Box::new(ElevenLabs::new(config))
    };
    let format = AudioFormat::MULAW_8K;
    let mut tts_config = TtsConfig::new(format);
    if let Some(voice) = args.voice {
        tts_config = tts_config.voice(voice);
    }
    let mut session = tts.connect(tts_config).await?;

    // One utterance, two sentences: each flush marks the end of a sentence.
    let request = session.new_request();
    session
        .send_text(request, "Hello, thanks for calling. ")
        .await?;
    session.flush(request).await?;
    session
        .send_text(request, "How can I help you today?")
        .await?;
    session.finish(request).await?;

    let mut audio = Vec::new();
    while let Some(event) = session.recv().await {
        match event {
            TtsEvent::Audio { audio: chunk, .. } => audio.extend_from_slice(&chunk),
            TtsEvent::Ttfb { ttfb, .. } => {
                println!("time to first byte: {} ms", ttfb.latency.as_millis());
            }
            TtsEvent::Usage(usage) => {
                if let UsageKind::Characters(n) = usage.kind {
                    let how = if usage.reported {
                        "reported by the service"
                    } else {
                        "counted as sent"
                    };
                    println!("usage: {n} characters ({how})");
                }
            }
            TtsEvent::Error { error, .. } => return Err(error.into()),
            TtsEvent::Done { .. } => break,
            _ => {}
        }
    }
    println!(
        "received {} bytes = {:.2} s of 8 kHz mu-law via {}",
        audio.len(),
        format.duration_of(audio.len()).as_secs_f64(),
        if args.http { "HTTP" } else { "WebSocket" }
    );
    if let Some(path) = args.wav {
        voxline_audio::wav::write(&path, format, &audio)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
