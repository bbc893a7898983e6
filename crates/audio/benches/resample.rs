//! voxline's resampler on the phone ratios, one second of audio in 20 ms chunks.
//! Throughput is in input samples: `elements/s / input rate` = multiple of real time.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxline_audio::Resampler;
use voxline_audio::tone::ToneGenerator;

fn resample(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample 1 s in 20 ms chunks");
    for (from, to) in [
        (8000u32, 16000u32),
        (16000, 8000),
        (24000, 8000),
        (8000, 24000),
        (48000, 8000),
        (8000, 48000),
    ] {
        let input = ToneGenerator::sine(from, 440.0, 0.3).generate(from as usize);
        group.throughput(Throughput::Elements(u64::from(from)));
        group.bench_function(format!("{}k->{}k", from / 1000, to / 1000), |b| {
            let mut r = Resampler::new(from, to).expect("supported");
            let mut out = Vec::with_capacity(to as usize + 64);
            b.iter(|| {
                out.clear();
                for chunk in input.chunks(from as usize / 50) {
                    r.process(black_box(chunk), &mut out);
                }
                black_box(out.len())
            });
        });
    }
    group.finish();

    c.bench_function("Resampler::new 8k->16k", |b| {
        b.iter(|| Resampler::new(black_box(8000), black_box(16000)))
    });
}

criterion_group!(benches, resample);
criterion_main!(benches);
