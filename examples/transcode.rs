//! Run with `cargo run --example transcode`.
//!
//! The inbound half of a phone call's audio path, on a file: a caller's audio as a
//! carrier sends it (8 kHz mu-law, 20 ms frames) is transcoded to what a speech
//! recogniser wants (16 kHz PCM16), frame by frame, with the same streaming objects a
//! live call uses. Prints what it did and writes both WAV files.
//!
//! With no argument it reads the shared speech fixture (`../shared/fixtures`), or, when
//! that is not checked out, a generated signal with three DTMF key presses. Any mono
//! WAV in PCM16, mu-law or A-law can be given instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use voxline::audio::dtmf::{DtmfDetector, DtmfDigit};
use voxline::audio::g711::mulaw;
use voxline::audio::tone::ToneGenerator;
use voxline::audio::{AudioFormat, Encoding, FrameSize, Rechunker, Transcoder, level, pcm, wav};

/// Transcode a caller's 8 kHz mu-law audio to 16 kHz PCM16 in 20 ms frames.
#[derive(Parser)]
struct Args {
    /// A mono WAV file (PCM16, mu-law or A-law); defaults to the shared speech fixture.
    input: Option<PathBuf>,
    /// Where to write the results.
    #[arg(long, default_value = "target/transcode")]
    out_dir: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("../shared/fixtures/speech/caller_en_us_8k.wav");

    // 1. The caller's audio, as linear samples at its own rate.
    let (source, rate, linear) = match args.input {
        Some(path) => {
            let audio = wav::read(&path)?;
            (
                path.display().to_string(),
                audio.format.sample_rate,
                audio.to_pcm16(),
            )
        }
        None if fixture.is_file() => {
            let audio = wav::read(&fixture)?;
            let name = "../shared/fixtures/speech/caller_en_us_8k.wav".to_owned();
            (name, audio.format.sample_rate, audio.to_pcm16())
        }
        None => (
            "a generated signal (fixtures not checked out)".to_owned(),
            8000,
            generated(),
        ),
    };
    println!(
        "input:  {source}: {:.2} s at {rate} Hz, {:.1} dBFS",
        seconds(linear.len(), rate),
        level::dbfs(&linear)
    );

    // 2. What the carrier sends: 8 kHz mu-law. Resample and encode if the file is not.
    let mut to_line = Transcoder::new(
        AudioFormat::new(Encoding::Pcm16, rate),
        AudioFormat::MULAW_8K,
    )?;
    let mut bytes = Vec::new();
    pcm::encode_le(&linear, &mut bytes);
    let mut line = to_line.convert(&bytes);
    let _ = to_line.flush(&mut line);

    // 3. The hot path: 20 ms carrier frames -> 16 kHz PCM16 for a recogniser, with
    //    in-band DTMF detection on the way.
    let mut framer = Rechunker::new(
        FrameSize::duration(AudioFormat::MULAW_8K, 20),
        Encoding::Mulaw,
    )?;
    let mut transcoder = Transcoder::new(AudioFormat::MULAW_8K, AudioFormat::PCM16_16K)?;
    let mut dtmf = DtmfDetector::new(8000);
    let (mut tones, mut decoded) = (Vec::new(), Vec::new());
    let mut output = Vec::with_capacity(transcoder.max_output_len(line.len()));
    let mut frames = 0;
    let started = Instant::now();
    let mut frames_iter: Vec<_> = framer.push(&line).collect();
    frames_iter.extend(framer.flush());
    for frame in &frames_iter {
        frames += 1;
        transcoder.process(frame, &mut output);
        decoded.clear();
        mulaw::decode(frame, &mut decoded);
        dtmf.push(&decoded, &mut tones);
    }
    let _ = transcoder.flush(&mut output);
    dtmf.flush(&mut tones);
    let elapsed = started.elapsed();

    let mut out_samples = Vec::new();
    pcm::decode_le(&output, &mut out_samples)?;
    let audio_secs = seconds(out_samples.len(), 16000);
    println!(
        "line:   {} bytes of 8 kHz mu-law in {frames} frames of 20 ms",
        line.len()
    );
    println!(
        "output: {} bytes of 16 kHz PCM16, {:.2} s, {:.1} dBFS; resampler delay {:.2} ms",
        output.len(),
        audio_secs,
        level::dbfs(&out_samples),
        transcoder.delay().as_secs_f64() * 1000.0
    );
    println!(
        "speed:  {:.2} ms for {:.2} s of audio ({:.0}x real time, debug builds are slower)",
        elapsed.as_secs_f64() * 1000.0,
        audio_secs,
        audio_secs / elapsed.as_secs_f64().max(1e-9)
    );
    if tones.is_empty() {
        println!("dtmf:   no key presses in the audio");
    }
    for tone in &tones {
        println!(
            "dtmf:   key {} at {:.0} ms for {:.0} ms",
            tone.digit,
            tone.start_time().as_secs_f64() * 1000.0,
            tone.duration_time().as_secs_f64() * 1000.0
        );
    }

    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let line_path = args.out_dir.join("caller_mulaw_8k.wav");
    let out_path = args.out_dir.join("caller_pcm16_16k.wav");
    wav::write(&line_path, AudioFormat::MULAW_8K, &line)?;
    wav::write(&out_path, AudioFormat::PCM16_16K, &output)?;
    println!("wrote:  {} and {}", line_path.display(), out_path.display());
    Ok(())
}

/// Two seconds of a vowel-like tone with the keys 4, 2 and # pressed after it.
fn generated() -> Vec<i16> {
    let mut signal = ToneGenerator::new(8000)
        .with_tone(220.0, 0.2)
        .with_tone(660.0, 0.08)
        .with_tone(1100.0, 0.04)
        .generate(16_000);
    for key in ['4', '2', '#'] {
        let digit = DtmfDigit::from_char(key).expect("a keypad key");
        signal.extend(ToneGenerator::dtmf(8000, digit, 0.15).generate(800));
        signal.extend(std::iter::repeat_n(0, 800));
    }
    signal
}

fn seconds(samples: usize, rate: u32) -> f64 {
    samples as f64 / f64::from(rate)
}
