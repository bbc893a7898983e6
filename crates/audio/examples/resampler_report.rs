//! Run with `cargo run --release -p voxline-audio --example resampler_report`.
//!
//! Measures the quality and latency figures of issue #2 for voxline's resampler and
//! the libraries it was compared with (rubato 5, dasp 0.11), and prints them as a
//! Markdown table for `docs/benchmarks.md`. Speed is measured separately by
//! `cargo bench -p voxline-audio --bench resampler_comparison`.

#![allow(missing_docs)]

#[path = "../benches/contenders/mod.rs"]
mod contenders;

use contenders::{Contender, Kind};
use voxline_fixtures::analysis::{middle_half, rms, sine_fit, sine_i16, to_f64};

fn run(kind: Kind, from: u32, to: u32, input: &[i16]) -> Vec<i16> {
    Contender::new(kind, from, to).run(input, from, to)
}

/// Worst |gain| in dB over 100..=3400 Hz for the four phone pairs.
fn ripple(kind: Kind) -> f64 {
    let mut worst = 0.0f64;
    for (from, to) in [(8000, 16000), (16000, 8000), (8000, 24000), (24000, 8000)] {
        for k in 1..=34 {
            let freq = f64::from(k) * 100.0;
            let input = sine_i16(freq, f64::from(from), 12_000.0, from as usize);
            let out = to_f64(&run(kind, from, to, &input));
            let fit = sine_fit(middle_half(&out), freq, f64::from(to));
            worst = worst.max((20.0 * (fit.amplitude / 12_000.0).log10()).abs());
        }
    }
    worst
}

/// Attenuation of a tone the output rate cannot carry; `None` when the output rounds
/// to digital silence (more than about 90 dB).
fn rejection(kind: Kind, from: u32, to: u32, freq: f64) -> Option<f64> {
    let input = sine_i16(freq, f64::from(from), 16_000.0, from as usize);
    let out = to_f64(&run(kind, from, to, &input));
    let out_rms = rms(middle_half(&out));
    (out_rms > 0.0).then(|| 20.0 * ((16_000.0 / 2f64.sqrt()) / out_rms).log10())
}

fn show_rejection(db: Option<f64>) -> String {
    db.map_or_else(
        || "> 90 (rounds to silence)".into(),
        |db| format!("{db:.1}"),
    )
}

/// SNR of a tone upsampled 8 -> 16 kHz, against the ideal sine at 16 kHz.
fn upsampled_snr(kind: Kind, freq: f64) -> f64 {
    let input = sine_i16(freq, 8000.0, 16_000.0, 8000);
    let out = to_f64(&run(kind, 8000, 16000, &input));
    sine_fit(middle_half(&out), freq, 16000.0).snr_db()
}

/// Worst attenuation of tones from 4.7 kHz to 11.9 kHz through 24 -> 8 kHz.
fn worst_alias(kind: Kind) -> Option<f64> {
    (0..15)
        .filter_map(|i| rejection(kind, 24000, 8000, 4700.0 + 500.0 * f64::from(i)))
        .reduce(f64::min)
}

fn round_trip_snr(kind: Kind) -> f64 {
    let input = sine_i16(1000.0, 8000.0, 16_000.0, 16_000);
    let up = run(kind, 8000, 16000, &input);
    let back = to_f64(&run(kind, 16000, 8000, &up));
    sine_fit(middle_half(&back), 1000.0, 8000.0).snr_db()
}

fn latency_ms(kind: Kind, from: u32, to: u32) -> String {
    let c = Contender::new(kind, from, to);
    let out_samples = match (&c, kind) {
        (Contender::Voxline(r), _) => return format!("{:.2}", r.delay().as_secs_f64() * 1000.0),
        (_, Kind::DaspSinc64) => contenders::dasp_sinc_delay(from, to),
        _ => c.delay_out(),
    };
    let ms = out_samples as f64 * 1000.0 / f64::from(to);
    if kind.streams() {
        format!("{ms:.2}")
    } else {
        format!("{ms:.2} (whole signal only)")
    }
}

fn main() {
    println!(
        "| resampler | max passband gain error 0.1-3.4 kHz (dB) | SNR 8->16 at 1 kHz (dB) | SNR 8->16 at 3 kHz (dB) \
         | 6 kHz through 24->8 (dB) | worst alias 4.7-11.9 kHz through 24->8 (dB) | 1 kHz SNR 8->16->8 (dB) \
         | latency 8->16 (ms) | latency 24->8 (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for kind in Kind::ALL {
        println!(
            "| {} | {:.4} | {:.1} | {:.1} | {} | {} | {:.1} | {} | {} |",
            kind.name(),
            ripple(kind),
            upsampled_snr(kind, 1000.0),
            upsampled_snr(kind, 3000.0),
            show_rejection(rejection(kind, 24000, 8000, 6000.0)),
            show_rejection(worst_alias(kind)),
            round_trip_snr(kind),
            latency_ms(kind, 8000, 16000),
            latency_ms(kind, 24000, 8000),
        );
    }
}
