//! Turn detection accuracy on the labelled speech fixtures (issue #3), with
//! `stop_secs = 0.8`:
//! - clean recordings, 8 and 16 kHz: exactly one turn per run of utterances separated
//!   by 0.8 s or less, none in the leading or trailing silence, starts within 100 ms of
//!   the labels and stops within 60 ms of the label's end plus 0.8 s;
//! - 20 dB SNR: the exact turn count (and starts within 100 ms);
//! - 10 dB SNR: at most one turn missed or extra per file.
//!
//! WebRTC and Silero (feature `silero`) are held to all of it; the energy detector to
//! the clean recordings only. `cargo run --release -p voxline-vad --features silero
//! --example vad_eval` prints the full table.

mod common;

use common::Detector;
use voxline_fixtures::speech::{self, Variant};
use voxline_fixtures::turns::Score;
use voxline_vad::{EnergyVadConfig, TurnConfig, VadKind, WebRtcMode};

fn check(name: &str, detector: &Detector, variants: &[Variant]) {
    let config = TurnConfig::default();
    assert_eq!(config.stop_secs, 0.8);
    for recording in speech::NAMES {
        for rate in speech::RATES {
            for &variant in variants {
                let fixture = speech::load(recording, rate, variant);
                let s = common::evaluate(detector, &fixture, config);
                let what = format!("{name} on {}: {s:?}", fixture.file);
                match variant {
                    Variant::Clean => {
                        assert_eq!((s.missed, s.extra), (0, 0), "{what}");
                        assert!(
                            s.start_errors.iter().all(|e| e.abs() <= 100.0),
                            "start: {what}"
                        );
                        assert!(
                            s.stop_errors.iter().all(|e| e.abs() <= 60.0),
                            "stop: {what}"
                        );
                    }
                    Variant::Snr20 => {
                        assert_eq!((s.missed, s.extra), (0, 0), "{what}");
                        assert!(
                            s.start_errors.iter().all(|e| e.abs() <= 100.0),
                            "start: {what}"
                        );
                    }
                    Variant::Snr10 => assert!(s.missed + s.extra <= 1, "{what}"),
                }
                // Report the timing either way, so a regression shows in the log.
                println!(
                    "{name:8} {:24} turns {}/{} start err mean {:.0} ms, stop err mean {:.0} ms",
                    fixture.file,
                    s.found,
                    s.expected,
                    Score::mean_abs(&s.start_errors),
                    Score::mean_abs(&s.stop_errors)
                );
            }
        }
    }
}

#[test]
fn webrtc_meets_the_accuracy_targets() {
    check(
        "webrtc",
        &Detector::Kind(VadKind::WebRtc(WebRtcMode::Aggressive)),
        &Variant::ALL,
    );
}

#[cfg(feature = "silero")]
#[test]
fn silero_meets_the_accuracy_targets() {
    check(
        "silero",
        &Detector::Kind(VadKind::Silero(common::silero_model())),
        &Variant::ALL,
    );
}

#[test]
fn energy_meets_the_targets_on_clean_speech() {
    check(
        "energy",
        &Detector::Kind(VadKind::Energy(EnergyVadConfig::default())),
        &[Variant::Clean],
    );
}
