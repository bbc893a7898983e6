//! G.711 throughput: decode in bytes of code in, encode in bytes of PCM16 in.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxline_audio::g711::{alaw, mulaw};

const LEN: usize = 1 << 20;

fn g711(c: &mut Criterion) {
    let codes: Vec<u8> = (0..LEN).map(|i| (i * 31 % 256) as u8).collect();
    let samples: Vec<i16> = (0..LEN)
        .map(|i| (i as i32 * 7919 % 65_536 - 32_768) as i16)
        .collect();
    let mut decoded = vec![0i16; LEN];
    let mut encoded = vec![0u8; LEN];

    let mut group = c.benchmark_group("g711 1 MiB");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.bench_function("mulaw decode", |b| {
        b.iter(|| mulaw::decode_into(black_box(&codes), &mut decoded))
    });
    group.bench_function("alaw decode", |b| {
        b.iter(|| alaw::decode_into(black_box(&codes), &mut decoded))
    });
    group.throughput(Throughput::Bytes(2 * LEN as u64));
    group.bench_function("mulaw encode", |b| {
        b.iter(|| mulaw::encode_into(black_box(&samples), &mut encoded))
    });
    group.bench_function("alaw encode", |b| {
        b.iter(|| alaw::encode_into(black_box(&samples), &mut encoded))
    });
    group.finish();

    // The per-frame shape of the hot path: 160 codes appended to a reused Vec.
    let mut group = c.benchmark_group("g711 20 ms frame");
    group.throughput(Throughput::Bytes(160));
    let mut out = Vec::with_capacity(160);
    group.bench_function("mulaw decode 160 B", |b| {
        b.iter(|| {
            out.clear();
            mulaw::decode(black_box(&codes[..160]), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, g711);
criterion_main!(benches);
