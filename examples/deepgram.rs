//! Run with `cargo run --example deepgram`
//!
//! Streams a caller's phone audio (the shared fixture `caller_en_us_8k.wav`, sent as
//! 8 kHz mu-law in 20 ms frames, as a carrier delivers it) to Deepgram live
//! speech-to-text and prints the interim and final transcripts, speech starts,
//! utterance ends, the time to the first transcript and the audio seconds billed.
//!
//! With `DEEPGRAM_API_KEY` set it talks to the real service, paced in real time.
//! Otherwise it starts the Deepgram emulator on 127.0.0.1, scripted with the
//! fixture's transcript (`caller_en_us.json`), and streams faster than real time
//! (`--realtime` paces it anyway).

use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use clap::Parser;
use voxline::audio::AudioFormat;
use voxline::audio::g711::mulaw;
use voxline_core::{SpeechToText, SttConfig, SttEvent, UsageKind};
use voxline_deepgram::{API_KEY_ENV, Deepgram, DeepgramConfig};
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::emulators::deepgram::{DeepgramEmulator, Line, Options};

/// Stream a phone caller to Deepgram and print what it hears.
#[derive(Parser)]
struct Args {
    /// Pace the audio in real time against the emulator too.
    #[arg(long)]
    realtime: bool,
    /// The model to ask for.
    #[arg(long, default_value = "nova-3")]
    model: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let caller = speech::load("caller_en_us", 8000, Variant::Clean);
    let mut audio = Vec::new();
    mulaw::encode(&caller.samples, &mut audio);

    let real = std::env::var(API_KEY_ENV).is_ok_and(|k| !k.trim().is_empty());
    // Kept alive for the whole run: the emulator stops when dropped.
    let mut _emulator = None;
    let config = if real {
        println!("Deepgram live STT (real service), model {}", args.model);
        DeepgramConfig::default()
    } else {
        let script = caller
            .utterances
            .iter()
            .map(|u| Line::new(u.text.clone(), u.start_ms / 1000.0, u.end_ms / 1000.0))
            .collect();
        let options = Options::with_script(script);
        let key = options.api_key.clone();
        let emulator = DeepgramEmulator::start(options).await;
        println!(
            "{API_KEY_ENV} not set: Deepgram emulator at {}",
            emulator.ws_url()
        );
        let config = DeepgramConfig::default()
            .api_key(key)
            .base_url(emulator.ws_url());
        _emulator = Some(emulator);
        config
    };
    let stt = Deepgram::new(config.model(args.model));
    let mut session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K).language("en-US"))
        .await?;
    let paced = real || args.realtime;
    println!(
        "streaming {:.1} s of 8 kHz mu-law in 20 ms frames{}",
        audio.len() as f64 / 8000.0,
        if paced { ", in real time" } else { "" }
    );

    let started = Instant::now();
    let mut frames = audio.chunks(160);
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            Some(event) = session.recv() => show(&event, started),
            () = async { if paced { ticker.tick().await; } } => match frames.next() {
                Some(frame) => session.send_audio(Bytes::copy_from_slice(frame)).await?,
                None => break,
            },
        }
    }
    // Close: CloseStream, the last results and Deepgram's Metadata (the usage).
    for event in session.close().await {
        show(&event, started);
    }
    Ok(())
}

fn show(event: &SttEvent, started: Instant) {
    let now = started.elapsed().as_secs_f64();
    match event {
        SttEvent::Transcript(t) if !t.is_final => println!("[{now:6.2}s]   … {}", t.text),
        SttEvent::Transcript(t) => println!(
            "[{now:6.2}s] FINAL {:5.2}-{:5.2}s{} {}",
            t.start.as_secs_f64(),
            (t.start + t.duration).as_secs_f64(),
            if t.end_of_utterance {
                " (end of utterance)"
            } else {
                ""
            },
            t.text
        ),
        SttEvent::SpeechStarted { at } => {
            println!(
                "[{now:6.2}s] speech started at {:?}",
                at.unwrap_or_default()
            );
        }
        SttEvent::UtteranceEnd { last_word_end } => println!(
            "[{now:6.2}s] utterance end, last word ended at {:?}",
            last_word_end.unwrap_or_default()
        ),
        SttEvent::Ttfb(t) => println!("[{now:6.2}s] time to first transcript: {:?}", t.latency),
        SttEvent::Usage(u) => {
            if let UsageKind::AudioSeconds(seconds) = u.kind {
                println!(
                    "[{now:6.2}s] usage: {seconds:.2} audio seconds ({})",
                    if u.reported {
                        "reported by Deepgram"
                    } else {
                        "counted locally"
                    }
                );
            }
        }
        SttEvent::Reconnected => println!("[{now:6.2}s] reconnected"),
        SttEvent::Error(e) => println!("[{now:6.2}s] error: {e}"),
        other => println!("[{now:6.2}s] {other:?}"),
    }
}
