//! Runs turn detectors over the labelled speech fixtures and scores them; shared by
//! the accuracy tests and the `vad_eval` example.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod earshot;

use voxline_fixtures::speech::Speech;
use voxline_fixtures::turns::{self, FoundTurn, Score};
use voxline_vad::{TurnConfig, TurnDetector, TurnEvent, VadKind};

/// A detector under evaluation: one of the crate's, or earshot through the trait.
#[derive(Clone)]
pub enum Detector {
    Kind(VadKind),
    Earshot,
}

impl Detector {
    pub fn build(&self, input_rate: u32) -> Box<dyn voxline_vad::Vad> {
        match self {
            Detector::Kind(kind) => kind.build(input_rate).expect("detector builds"),
            Detector::Earshot => Box::new(earshot::EarshotVad::new()),
        }
    }
}

/// The detectors this build can evaluate, with the names used in reports.
pub fn detectors() -> Vec<(&'static str, Detector)> {
    let mut kinds = vec![
        (
            "webrtc",
            Detector::Kind(VadKind::WebRtc(voxline_vad::WebRtcMode::Aggressive)),
        ),
        (
            "energy",
            Detector::Kind(VadKind::Energy(voxline_vad::EnergyVadConfig::default())),
        ),
    ];
    #[cfg(feature = "silero")]
    kinds.push(("silero", Detector::Kind(VadKind::Silero(silero_model()))));
    kinds.push(("earshot", Detector::Earshot));
    kinds
}

#[cfg(feature = "silero")]
pub fn silero_model() -> voxline_vad::SileroModel {
    use std::sync::OnceLock;
    static MODEL: OnceLock<voxline_vad::SileroModel> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = voxline_fixtures::models_dir().join(voxline_vad::silero::MODEL_FILE);
            voxline_vad::SileroModel::load(&path).unwrap_or_else(|e| panic!("{e}"))
        })
        .clone()
}

/// Feeds `speech` in 20 ms chunks (as a carrier sends it) and returns the turns found.
pub fn run(detector: &Detector, speech: &Speech, config: TurnConfig) -> Vec<FoundTurn> {
    let vad = detector.build(speech.sample_rate);
    let mut detector = TurnDetector::new(vad, speech.sample_rate, config).expect("valid config");
    let chunk = speech.sample_rate as usize / 50;
    let mut found = Vec::new();
    let mut open: Option<f64> = None;
    for samples in speech.samples.chunks(chunk) {
        for event in detector.push(samples) {
            match event {
                TurnEvent::SpeechStarted { at, .. } => open = Some(at.as_millis_f64()),
                TurnEvent::SpeechStopped { at, .. } => {
                    let start_ms = open.take().expect("a stop follows a start");
                    found.push(FoundTurn {
                        start_ms,
                        stop_ms: at.as_millis_f64(),
                    });
                }
            }
        }
    }
    assert_eq!(
        detector.vad_errors(),
        0,
        "{}: VAD failed on some frames",
        speech.file
    );
    if let Some(start_ms) = open {
        // Still talking at the end of the file: the turn has no stop yet.
        found.push(FoundTurn {
            start_ms,
            stop_ms: f64::INFINITY,
        });
    }
    found
}

/// Scores a detector on one recording with the given stop time.
pub fn evaluate(detector: &Detector, speech: &Speech, config: TurnConfig) -> Score {
    let found = run(detector, speech, config);
    turns::score(
        &turns::expected(speech, f64::from(config.stop_secs)),
        &found,
        f64::from(config.stop_secs),
    )
}
