//! Run with `cargo run --release -p voxline-vad --features silero --example vad_eval`.
//!
//! Runs every detector this build has (and earshot, evaluated through the `Vad` trait)
//! over every labelled speech fixture (8 and 16 kHz;
//! clean, 20 dB and 10 dB SNR) with `stop_secs = 0.8`, and prints, per detector and file,
//! the turns found against those expected and the start and stop errors, as a Markdown
//! table for `docs/benchmarks.md`. Silero reads its model from `../shared/models`
//! (or `VOXLINE_MODELS`).

#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use voxline_fixtures::speech;
use voxline_fixtures::turns::Score;
use voxline_vad::TurnConfig;

fn main() {
    let config = TurnConfig::default();
    println!(
        "| detector | file | turns expected | found | missed | extra | start error mean / worst (ms) | stop error mean / worst (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let files = speech::all();
    for (name, kind) in common::detectors() {
        for file in &files {
            let s = common::evaluate(&kind, file, config);
            let row = format!(
                "| {name} | {} | {} | {} | {} | {} | {:.0} / {:+.0} | {:.0} / {:+.0} |",
                file.file,
                s.expected,
                s.found,
                s.missed,
                s.extra,
                Score::mean_abs(&s.start_errors),
                Score::worst(&s.start_errors),
                Score::mean_abs(&s.stop_errors),
                Score::worst(&s.stop_errors),
            )
            .replace("inf / +inf", "a turn still open at the end of the file");
            println!("{row}");
        }
    }
}
