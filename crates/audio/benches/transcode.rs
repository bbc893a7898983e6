//! The transcoder on the two hot paths of a call, one second in 20 ms frames:
//! caller audio (8 kHz mu-law) to a recogniser (16 kHz PCM16), and synthesised speech
//! (24 kHz PCM16) to the caller (8 kHz mu-law).

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxline_audio::g711::mulaw;
use voxline_audio::tone::ToneGenerator;
use voxline_audio::{AudioFormat, Transcoder, pcm};

fn transcode(c: &mut Criterion) {
    let mut group = c.benchmark_group("transcode 1 s in 20 ms frames");

    let mut inbound = Vec::new();
    mulaw::encode(
        &ToneGenerator::sine(8000, 440.0, 0.3).generate(8000),
        &mut inbound,
    );
    group.throughput(Throughput::Elements(8000));
    group.bench_function("mulaw 8k -> pcm16 16k", |b| {
        let mut t =
            Transcoder::new(AudioFormat::MULAW_8K, AudioFormat::PCM16_16K).expect("supported");
        let mut out = Vec::with_capacity(32_000 + 64);
        b.iter(|| {
            out.clear();
            for frame in inbound.chunks(160) {
                t.process(black_box(frame), &mut out);
            }
            black_box(out.len())
        });
    });

    let mut outbound = Vec::new();
    pcm::encode_le(
        &ToneGenerator::sine(24000, 440.0, 0.3).generate(24000),
        &mut outbound,
    );
    group.throughput(Throughput::Elements(24000));
    group.bench_function("pcm16 24k -> mulaw 8k", |b| {
        let mut t =
            Transcoder::new(AudioFormat::PCM16_24K, AudioFormat::MULAW_8K).expect("supported");
        let mut out = Vec::with_capacity(8000 + 64);
        b.iter(|| {
            out.clear();
            for frame in outbound.chunks(960) {
                t.process(black_box(frame), &mut out);
            }
            black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(benches, transcode);
criterion_main!(benches);
