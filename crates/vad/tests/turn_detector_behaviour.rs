//! How the turn detector behaves at its edges: chunking, pre-roll, resampling, failing
//! detectors, barge-in evidence, bad configuration.

mod common;

use std::time::Duration;

use voxline_audio::tone::ToneGenerator;
use voxline_fixtures::speech::{self, Variant};
use voxline_vad::{
    AllOf, Decision, EnergyVadConfig, Evidence, InterruptionPolicy, InterruptionRule, TurnConfig,
    TurnDetector, TurnEvent, Vad, VadError, VadKind, WebRtcMode, WebRtcVad,
};

fn webrtc(rate: u32) -> Box<dyn Vad> {
    VadKind::WebRtc(WebRtcMode::Aggressive)
        .build(rate)
        .expect("builds")
}

/// (start or stop, sample, duration) of every event, without the pre-roll audio.
fn timeline(events: &[TurnEvent]) -> Vec<(bool, u64, Duration)> {
    events
        .iter()
        .map(|e| match e {
            TurnEvent::SpeechStarted { at, .. } => (true, at.sample(), Duration::ZERO),
            TurnEvent::SpeechStopped {
                at,
                speech_duration,
            } => (false, at.sample(), *speech_duration),
        })
        .collect()
}

fn run(detector: &mut TurnDetector, samples: &[i16], chunk: usize) -> Vec<TurnEvent> {
    samples
        .chunks(chunk)
        .flat_map(|c| detector.push(c))
        .collect()
}

#[test]
fn chunk_size_does_not_change_the_turns() {
    let fixture = speech::load("caller_en_gb", 8000, Variant::Snr20);
    let reference = {
        let mut d = TurnDetector::new(webrtc(8000), 8000, TurnConfig::default()).expect("valid");
        timeline(&run(&mut d, &fixture.samples, fixture.samples.len()))
    };
    assert_eq!(reference.len(), 6, "three turns: {reference:?}");
    for chunk in [1, 37, 160, 801] {
        let mut d = TurnDetector::new(webrtc(8000), 8000, TurnConfig::default()).expect("valid");
        assert_eq!(
            timeline(&run(&mut d, &fixture.samples, chunk)),
            reference,
            "chunk {chunk}"
        );
    }
}

#[test]
fn pre_roll_and_later_chunks_are_the_whole_turn() {
    let fixture = speech::load("caller_en_us", 8000, Variant::Clean);
    let config = TurnConfig::default();
    let mut d = TurnDetector::new(webrtc(8000), 8000, config).expect("valid");
    let mut pushed = 0usize;
    let mut checked = 0;
    for chunk in fixture.samples.chunks(160) {
        pushed += chunk.len();
        for event in d.push(chunk) {
            if let TurnEvent::SpeechStarted {
                at,
                pre_roll,
                detected_at,
            } = event
            {
                assert!(detected_at.sample() >= at.sample() + (config.start_secs * 8000.0) as u64);
                assert!(
                    detected_at.sample() <= pushed as u64,
                    "detected within the audio pushed so far"
                );
                let from = at.sample() as usize - (config.pre_roll_secs * 8000.0) as usize;
                assert_eq!(
                    pre_roll.len(),
                    pushed - from,
                    "pre-roll runs from 0.3 s before the onset to now"
                );
                assert_eq!(pre_roll, fixture.samples[from..pushed]);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5);
}

/// A 16 kHz detector that calls a frame speech when it is loud, to test resampling
/// without a model.
struct LoudAt16k;

impl Vad for LoudAt16k {
    fn name(&self) -> &'static str {
        "loud16k"
    }
    fn sample_rate(&self) -> u32 {
        16000
    }
    fn frame_len(&self) -> usize {
        320
    }
    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32, VadError> {
        Ok(if voxline_audio::level::dbfs(frame) > -30.0 {
            1.0
        } else {
            0.0
        })
    }
    fn reset(&mut self) {}
}

#[test]
fn input_is_resampled_to_the_detectors_rate_and_timed_at_the_input_rate() {
    let mut signal = vec![0i16; 8000];
    signal.extend(ToneGenerator::sine(8000, 440.0, 0.5).generate(8000));
    signal.extend(vec![0i16; 16000]);
    let mut d = TurnDetector::new(Box::new(LoudAt16k), 8000, TurnConfig::default()).expect("valid");
    let events = run(&mut d, &signal, 160);
    let t = timeline(&events);
    assert_eq!(t.len(), 2, "{t:?}");
    // Onset at 1 s and stop at 2 s + 0.8 s (+ one 20 ms frame), in 8 kHz samples.
    assert!(t[0].1.abs_diff(8000) <= 40, "{t:?}");
    assert!(t[1].1.abs_diff(8000 * 2 + 6400 + 160) <= 40, "{t:?}");
    let TurnEvent::SpeechStarted { at, .. } = &events[0] else {
        panic!("start first")
    };
    assert_eq!(at.sample_rate(), 8000);
    assert!((t[1].2.as_secs_f64() - 1.0).abs() < 0.03, "{t:?}");
}

#[cfg(feature = "silero")]
#[test]
fn silero_runs_on_phone_audio_through_the_resampler() {
    let fixture = speech::load("caller_en_gb", 8000, Variant::Clean);
    let vad = VadKind::Silero(common::silero_model())
        .build(8000)
        .expect("builds");
    assert_eq!(vad.sample_rate(), 16000);
    let mut d = TurnDetector::new(vad, 8000, TurnConfig::default()).expect("valid");
    let events = run(&mut d, &fixture.samples, 160);
    assert_eq!(events.len(), 6);
    assert_eq!(d.vad_name(), "silero");
}

/// A detector that fails on every other frame.
struct Flaky(u32);

impl Vad for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn sample_rate(&self) -> u32 {
        8000
    }
    fn frame_len(&self) -> usize {
        80
    }
    fn speech_probability(&mut self, _frame: &[i16]) -> Result<f32, VadError> {
        self.0 += 1;
        if self.0.is_multiple_of(2) {
            Err(VadError::Inference {
                detector: "flaky",
                reason: "injected".into(),
            })
        } else {
            Ok(1.0)
        }
    }
    fn reset(&mut self) {}
}

#[test]
fn a_failing_detector_is_counted_not_fatal() {
    let mut d = TurnDetector::new(Box::new(Flaky(0)), 8000, TurnConfig::default()).expect("valid");
    let tone = ToneGenerator::sine(8000, 300.0, 0.5).generate(8000);
    let _ = run(&mut d, &tone, 160);
    assert_eq!(d.vad_errors(), 50);
    assert!(matches!(d.take_error(), Some(VadError::Inference { .. })));
    assert!(d.take_error().is_none());
}

#[test]
fn silence_and_steady_noise_are_not_turns() {
    let mut d = TurnDetector::new(webrtc(8000), 8000, TurnConfig::default()).expect("valid");
    assert!(run(&mut d, &vec![0; 80_000], 160).is_empty());
    let fixture = speech::load("caller_en_us", 8000, Variant::Snr10);
    // The first 0.5 s of the noisy recording is noise only.
    let noise = &fixture.samples[..4000];
    let looped: Vec<i16> = noise.iter().cycle().take(80_000).copied().collect();
    let mut d = TurnDetector::new(webrtc(8000), 8000, TurnConfig::default()).expect("valid");
    assert!(run(&mut d, &looped, 160).is_empty());
}

#[test]
fn barge_in_needs_300_ms_of_speech() {
    let energy = || {
        VadKind::Energy(EnergyVadConfig::default())
            .build(8000)
            .expect("builds")
    };
    let policy = AllOf::new().with(InterruptionPolicy::default());

    // Returns the audio time (ms) of the first frame at which the policy interrupts.
    let first_interrupt = |burst_ms: usize| -> Option<f64> {
        let mut d = TurnDetector::new(energy(), 8000, TurnConfig::default()).expect("valid");
        let mut signal = vec![0i16; 8000];
        signal.extend(
            ToneGenerator::sine(8000, 250.0, 0.3)
                .with_tone(750.0, 0.1)
                .generate(burst_ms * 8),
        );
        signal.extend(vec![0i16; 8000]);
        for (i, chunk) in signal.chunks(80).enumerate() {
            let _ = d.push(chunk);
            if policy.decide(&Evidence::new(&d.activity(), None)) == Decision::Interrupt {
                return Some((i + 1) as f64 * 10.0);
            }
        }
        None
    };
    assert_eq!(
        first_interrupt(150),
        None,
        "a 150 ms blip does not interrupt"
    );
    assert_eq!(first_interrupt(250), None, "neither does 250 ms");
    let at = first_interrupt(1000).expect("a second of speech interrupts");
    assert!(
        (at - 1300.0).abs() <= 20.0,
        "interrupts 0.3 s after the onset at 1 s, got {at} ms"
    );
}

#[test]
fn activity_reports_the_current_speech() {
    let mut d = TurnDetector::new(webrtc(8000), 8000, TurnConfig::default()).expect("valid");
    let fixture = speech::load("caller_en_gb", 8000, Variant::Clean);
    let first = &fixture.utterances[0];
    let mid = ((first.start_ms + first.end_ms) / 2.0 * 8.0) as usize;
    let _ = run(&mut d, &fixture.samples[..mid], 160);
    let a = d.activity();
    assert!(a.speaking);
    let onset = a.onset.expect("in a turn").as_millis_f64();
    assert!(
        (onset - first.start_ms).abs() < 100.0,
        "{onset} vs {}",
        first.start_ms
    );
    assert!(a.speech > Duration::from_millis(300));
    assert!(
        a.speech_dbfs > -40.0 && a.speech_dbfs < -6.0,
        "{}",
        a.speech_dbfs
    );
    d.reset();
    assert!(!d.activity().speaking);
}

#[test]
fn bad_configuration_is_refused_with_the_field() {
    for config in [
        TurnConfig {
            stop_secs: -1.0,
            ..TurnConfig::default()
        },
        TurnConfig {
            confidence: 1.5,
            ..TurnConfig::default()
        },
        TurnConfig {
            min_dbfs: 3.0,
            ..TurnConfig::default()
        },
        TurnConfig {
            min_snr_db: f32::NAN,
            ..TurnConfig::default()
        },
    ] {
        let err = TurnDetector::new(webrtc(8000), 8000, config).expect_err("invalid");
        assert!(matches!(err, VadError::InvalidConfig { .. }), "{err}");
    }
    let err = TurnDetector::new(webrtc(8000), 1, TurnConfig::default()).expect_err("no such rate");
    assert!(matches!(err, VadError::Audio(_)), "{err}");
}

#[test]
fn detectors_and_turn_detectors_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    let d = TurnDetector::new(webrtc(8000), 8000, TurnConfig::default()).expect("valid");
    send(&d);
    let vad: Box<dyn Vad> = webrtc(16000);
    send(&vad);
    let handle = std::thread::spawn(move || {
        let mut d = d;
        d.push(&[0; 160]).len()
    });
    assert_eq!(handle.join().expect("thread"), 0);
}

#[test]
fn webrtc_refuses_bad_frames_without_panicking() {
    let mut vad = WebRtcVad::new(8000, WebRtcMode::Quality, 20).expect("valid");
    assert_eq!(vad.frame_len(), 160);
    for len in [0, 1, 80, 159, 161, 240] {
        let err = vad
            .speech_probability(&vec![0; len])
            .expect_err("wrong length");
        assert!(
            matches!(err, VadError::FrameLength { expected: 160, .. }),
            "{err}"
        );
    }
    assert!(WebRtcVad::new(11025, WebRtcMode::Quality, 20).is_err());
    assert!(WebRtcVad::new(8000, WebRtcMode::Quality, 25).is_err());
}

#[test]
fn webrtc_reset_is_a_fresh_detector() {
    let speech = speech::load("caller_en_gb", 8000, Variant::Snr20).samples;
    let decisions = |vad: &mut WebRtcVad| -> Vec<f32> {
        speech
            .chunks_exact(80)
            .take(400)
            .map(|f| vad.speech_probability(f).expect("valid"))
            .collect()
    };
    let mut used = WebRtcVad::new(8000, WebRtcMode::VeryAggressive, 10).expect("valid");
    let _ = decisions(&mut used);
    used.reset();
    let mut fresh = WebRtcVad::new(8000, WebRtcMode::VeryAggressive, 10).expect("valid");
    assert_eq!(decisions(&mut used), decisions(&mut fresh));
    assert_eq!(used.mode(), WebRtcMode::VeryAggressive);
}

#[cfg(feature = "silero")]
#[test]
fn silero_model_errors_are_clear() {
    let missing = voxline_vad::SileroModel::load("/nonexistent/silero.onnx").expect_err("missing");
    assert!(
        missing.to_string().contains("cargo xtask models"),
        "{missing}"
    );
    // The standard export uses `If` nodes tract 0.23 cannot analyse.
    let standard = voxline_fixtures::models_dir().join("silero_vad.onnx");
    let err = voxline_vad::SileroModel::load(&standard).expect_err("tract cannot run it");
    assert!(matches!(err, VadError::Model { .. }), "{err}");

    let mut vad = voxline_vad::SileroVad::new(&common::silero_model());
    assert!(vad.speech_probability(&[0; 100]).is_err());
    let silence = vad.speech_probability(&[0; 512]).expect("runs");
    assert!(silence < 0.1, "{silence}");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_audio_gives_alternating_events(
            audio in prop::collection::vec(any::<i16>(), 0..20_000),
            bursts in prop::collection::vec((0usize..20_000, 1usize..4000, 100i16..20_000), 0..6),
            chunk in 1usize..2000,
            rate in prop::sample::select(vec![8000u32, 16000, 24000]),
        ) {
            let mut audio = audio.iter().map(|s| s / 64).collect::<Vec<i16>>();
            for (at, len, amplitude) in bursts {
                let end = (at + len).min(audio.len());
                for (i, s) in audio.iter_mut().enumerate().take(end).skip(at) {
                    *s = if i % 16 < 8 { amplitude } else { -amplitude };
                }
            }
            let vad = VadKind::WebRtc(WebRtcMode::Aggressive).build(rate).expect("builds");
            let mut d = TurnDetector::new(vad, rate, TurnConfig::default()).expect("valid");
            let events = run(&mut d, &audio, chunk);
            for (i, e) in events.iter().enumerate() {
                let is_start = matches!(e, TurnEvent::SpeechStarted { .. });
                prop_assert_eq!(is_start, i.is_multiple_of(2), "events alternate, starting with a start");
            }
            prop_assert_eq!(d.vad_errors(), 0);
        }
    }
}
