//! Run with `cargo run --example openai_realtime`
//!
//! Shows a speech-to-speech call with the OpenAI Realtime API: the caller's audio
//! (two utterances of `caller_en_us_8k.wav`, 8 kHz mu-law, streamed in real time)
//! goes in as `audio/pcmu` with no transcoding; the model's reply comes back as
//! 8 kHz mu-law. The second utterance starts while the first reply is still playing,
//! so the server's turn detection interrupts it and the example truncates the reply
//! to what was played. It prints transcripts both ways, audio bytes and durations,
//! the time to first audio, token usage and the interruption.
//!
//! With `OPENAI_API_KEY` set it talks to the real API; otherwise it starts the
//! Realtime emulator on 127.0.0.1, scripted with two tone replies.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, sleep, timeout};
use voxline_core::{RealtimeConfig, RealtimeEvent, RealtimeModel, UsageKind};
use voxline_fixtures::speech::{self, Variant};
use voxline_openai::audio::{AudioFormat, g711};
use voxline_openai::{ApiConfig, OpenAiRealtime, OpenAiRealtimeConfig};
use voxline_testkit::emulators::openai_realtime::{OpenAiRealtimeEmulator, Options, Reply};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let caller = speech::load("caller_en_us", 8000, Variant::Clean);
    let cut = |from_ms: f64, to_ms: f64| {
        let (a, b) = ((from_ms * 8.0) as usize, (to_ms * 8.0) as usize);
        caller.samples[a.min(caller.samples.len())..b.min(caller.samples.len())].to_vec()
    };
    let (one, two) = (&caller.utterances[0], &caller.utterances[1]);
    // Utterance 1, 2 s of quiet (the reply starts), utterance 2 over the reply, quiet.
    let mut samples = cut(one.start_ms, one.end_ms);
    samples.extend(std::iter::repeat_n(0i16, 16_000));
    samples.extend(cut(two.start_ms, two.end_ms));
    samples.extend(std::iter::repeat_n(0i16, 12_000));
    let mut audio = Vec::new();
    g711::mulaw::encode(&samples, &mut audio);

    let _emulator;
    let config = if std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.is_empty()) {
        println!("Using the OpenAI Realtime API");
        OpenAiRealtimeConfig::new("gpt-realtime")
    } else {
        let running = OpenAiRealtimeEmulator::start(
            Options::with_replies(vec![
                Reply::speech("Your order A1 shipped yesterday.", Duration::from_secs(4)),
                Reply::speech("Sure, anything else?", Duration::from_secs(1)),
            ])
            .user_transcripts(vec![one.text.clone(), two.text.clone()]),
        )
        .await;
        println!(
            "No OPENAI_API_KEY: using the emulator at {}",
            running.base_url()
        );
        let api = ApiConfig::new(running.base_url()).api_key(Options::default().api_key);
        _emulator = running;
        OpenAiRealtimeConfig::with_api(api, "gpt-realtime")
    };

    let session = OpenAiRealtime::new(config)
        .connect(
            RealtimeConfig::new(AudioFormat::MULAW_8K)
                .instructions("You are a phone agent for an online shop. Be brief."),
        )
        .await?;
    println!(
        "session configured; streaming {:.1} s of caller audio",
        audio.len() as f64 / 8000.0
    );
    let (sender, mut events) = session.split();
    let feeder = sender.clone();
    tokio::spawn(async move {
        for frame in audio.chunks(160) {
            if feeder
                .send_audio(Bytes::copy_from_slice(frame))
                .await
                .is_err()
            {
                return;
            }
            sleep(Duration::from_millis(20)).await;
        }
    });

    // Bytes of the reply now playing, and when it started (playback is simulated as
    // real time from the first byte).
    let mut reply_bytes = 0usize;
    let mut reply_started: Option<Instant> = None;
    let (mut turns, mut interrupted) = (0, false);
    // Two replies, or one after an interruption (the interrupted one never completes).
    while turns < 2 && !(interrupted && turns == 1) {
        let Ok(Some(event)) = timeout(Duration::from_secs(20), events.recv()).await else {
            println!("no more events");
            break;
        };
        match event {
            RealtimeEvent::Audio(a) => {
                reply_started.get_or_insert_with(Instant::now);
                reply_bytes += a.len();
            }
            RealtimeEvent::InputTranscript {
                text,
                is_final: true,
            } => println!("caller: {text}"),
            RealtimeEvent::OutputTranscript {
                text,
                is_final: true,
            } => println!("model:  {text}"),
            RealtimeEvent::SpeechStarted => println!("  (caller started speaking)"),
            RealtimeEvent::Interrupted => {
                let played = reply_started.map_or(Duration::ZERO, |t| t.elapsed());
                println!(
                    "  interrupted after {:?} of playback; {} bytes ({} ms) had arrived; truncating",
                    played,
                    reply_bytes,
                    reply_bytes / 8
                );
                sender.truncate(played).await?;
                interrupted = true;
                (reply_bytes, reply_started) = (0, None);
            }
            RealtimeEvent::Ttfb(t) => {
                println!("  first audio {:?} after the caller stopped", t.latency)
            }
            RealtimeEvent::Usage(u) => match u.kind {
                UsageKind::Tokens { prompt, completion } => {
                    println!("  usage: {prompt} input tokens, {completion} output tokens")
                }
                UsageKind::AudioSeconds(s) => println!("  usage: {s:.1} s transcribed"),
                UsageKind::Characters(c) => println!("  usage: {c} characters"),
                _ => {}
            },
            RealtimeEvent::TurnComplete => {
                println!(
                    "  reply: {} bytes of 8 kHz mu-law = {:.2} s",
                    reply_bytes,
                    reply_bytes as f64 / 8000.0
                );
                (reply_bytes, reply_started) = (0, None);
                turns += 1;
            }
            RealtimeEvent::Error(e) => println!("  error: {e}"),
            RealtimeEvent::ToolCall(call) => {
                println!("  tool call {}({})", call.name, call.arguments)
            }
            _ => {}
        }
    }
    Ok(())
}
