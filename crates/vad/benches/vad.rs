//! Detector speed: ten seconds of the speech fixture through a `TurnDetector` in 20 ms
//! chunks (so resampling to the detector's rate is included), at 8 and 16 kHz input.
//! Throughput is in input samples: `elements/s / rate` = multiple of real time per core.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use voxline_fixtures::speech::{self, Variant};
use voxline_vad::{EnergyVadConfig, TurnConfig, TurnDetector, VadKind, WebRtcMode};

fn detectors() -> Vec<(&'static str, VadKind)> {
    #[allow(unused_mut)]
    let mut kinds = vec![
        ("webrtc", VadKind::WebRtc(WebRtcMode::Aggressive)),
        ("energy", VadKind::Energy(EnergyVadConfig::default())),
    ];
    #[cfg(feature = "silero")]
    {
        let path = voxline_fixtures::models_dir().join(voxline_vad::silero::MODEL_FILE);
        let model = voxline_vad::SileroModel::load(path).expect("model loads");
        kinds.push(("silero", VadKind::Silero(model)));
    }
    kinds
}

fn turn_detection(c: &mut Criterion) {
    let mut group = c.benchmark_group("turn detection, 10 s of speech");
    for rate in [8000u32, 16000] {
        let speech = speech::load("caller_en_us", rate, Variant::Snr20);
        let audio = &speech.samples[..rate as usize * 10];
        group.throughput(Throughput::Elements(audio.len() as u64));
        for (name, kind) in detectors() {
            group.bench_function(
                BenchmarkId::new(name, format!("{} kHz", rate / 1000)),
                |b| {
                    let vad = kind.build(rate).expect("builds");
                    let mut detector =
                        TurnDetector::new(vad, rate, TurnConfig::default()).expect("valid");
                    b.iter(|| {
                        detector.reset();
                        let mut events = 0;
                        for chunk in audio.chunks(rate as usize / 50) {
                            events += detector.push(black_box(chunk)).len();
                        }
                        black_box(events)
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, turn_detection);
criterion_main!(benches);
