//! Speed of voxline's resampler against rubato 5 and dasp 0.11, on one second of audio
//! in 20 ms chunks (dasp cannot stream: it converts the whole second in one pull).
//! Throughput is in input samples, so `elements/s / input rate` is the multiple of real
//! time on one core. Quality and latency: `cargo run --release -p voxline-audio
//! --example resampler_report`.

#![allow(missing_docs)]

#[path = "contenders/mod.rs"]
mod contenders;

use std::hint::black_box;

use contenders::{Contender, Kind, chunk_len};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use voxline_audio::tone::ToneGenerator;

fn speech_like(rate: u32) -> Vec<i16> {
    ToneGenerator::new(rate)
        .with_tone(220.0, 0.2)
        .with_tone(1100.0, 0.1)
        .with_tone(2900.0, 0.05)
        .generate(rate as usize)
}

fn compare(c: &mut Criterion) {
    for (from, to) in [
        (8000u32, 16000u32),
        (16000, 8000),
        (24000, 8000),
        (8000, 24000),
    ] {
        let mut group =
            c.benchmark_group(format!("resample {}k->{}k, 1 s", from / 1000, to / 1000));
        group.throughput(Throughput::Elements(u64::from(from)));
        let input = speech_like(from);
        for kind in Kind::ALL {
            group.bench_function(BenchmarkId::from_parameter(kind.name()), |b| {
                let mut contender = Contender::new(kind, from, to);
                let mut out = Vec::with_capacity(to as usize * 2);
                b.iter(|| {
                    out.clear();
                    if kind.streams() {
                        for chunk in input.chunks(chunk_len(from)) {
                            contender.process_chunk(black_box(chunk), &mut out);
                        }
                    } else {
                        out = contender.run(black_box(&input), from, to);
                    }
                    black_box(out.len())
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, compare);
criterion_main!(benches);
