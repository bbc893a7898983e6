//! In-band DTMF: every digit is found in noisy tones, and none in speech (talk-off).

use voxline_audio::dtmf::{DtmfDetector, DtmfDigit, DtmfTone};
use voxline_audio::tone::ToneGenerator;
use voxline_fixtures::analysis::Noise;
use voxline_fixtures::speech;

/// All 16 digits, `tone_ms` on and `gap_ms` off each, with white noise at `snr_db`
/// relative to the tones' power. Returns the signal and each digit's true start.
fn keypad_sequence(
    rate: u32,
    tone_ms: usize,
    gap_ms: usize,
    snr_db: f64,
    seed: u64,
) -> (Vec<i16>, Vec<usize>) {
    let amplitude = 0.15; // each tone peaks at -16.5 dBFS
    let per_ms = rate as usize / 1000;
    let mut clean = vec![0.0f64; gap_ms * per_ms];
    let mut starts = Vec::new();
    for digit in DtmfDigit::ALL {
        starts.push(clean.len());
        let tone = ToneGenerator::dtmf(rate, digit, amplitude).generate(tone_ms * per_ms);
        clean.extend(tone.iter().map(|&s| f64::from(s)));
        clean.extend(std::iter::repeat_n(0.0, gap_ms * per_ms));
    }
    // Two tones of peak a carry a² (in full-scale units) of power together.
    let tone_rms = amplitude * 32768.0;
    let noise_rms = tone_rms / 10f64.powf(snr_db / 20.0);
    let mut noise = Noise::new(seed);
    let noisy = clean
        .iter()
        .map(|&v| {
            (v + noise_rms * noise.gaussian())
                .round()
                .clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    (noisy, starts)
}

fn detect(rate: u32, signal: &[i16], chunk: usize) -> Vec<DtmfTone> {
    let mut detector = DtmfDetector::new(rate);
    let mut tones = Vec::new();
    for c in signal.chunks(chunk) {
        detector.push(c, &mut tones);
    }
    detector.flush(&mut tones);
    tones
}

fn check_sequence(rate: u32, tone_ms: usize, snr_db: f64, seed: u64) {
    let (signal, starts) = keypad_sequence(rate, tone_ms, 100, snr_db, seed);
    let tones = detect(rate, &signal, 160);
    let digits: String = tones.iter().map(|t| t.digit.as_char()).collect();
    assert_eq!(
        digits, "123A456B789C*0#D",
        "{rate} Hz, {tone_ms} ms tones at {snr_db} dB SNR"
    );
    let ms = |samples: u64| samples as f64 * 1000.0 / f64::from(rate);
    for (tone, &start) in tones.iter().zip(&starts) {
        let start_error = ms(tone.start) - ms(start as u64);
        let duration_error = ms(tone.duration) - tone_ms as f64;
        assert!(
            start_error.abs() <= 13.0,
            "{}: start off by {start_error:.1} ms",
            tone.digit
        );
        assert!(
            duration_error.abs() <= 26.0,
            "{}: duration off by {duration_error:.1} ms",
            tone.digit
        );
        assert_eq!(tone.sample_rate, rate);
    }
}

#[test]
fn detects_all_16_digits_at_20_db_snr() {
    for seed in 1..=5 {
        check_sequence(8000, 100, 20.0, seed);
        check_sequence(16000, 100, 20.0, seed);
    }
}

#[test]
fn detects_short_and_long_presses() {
    // 40 ms is the shortest press ITU-T Q.24 requires a receiver to accept.
    check_sequence(8000, 40, 20.0, 11);
    check_sequence(8000, 500, 20.0, 12);
}

#[test]
fn chunking_does_not_change_detection() {
    let (signal, _) = keypad_sequence(8000, 80, 60, 20.0, 3);
    let reference = detect(8000, &signal, signal.len());
    for chunk in [1, 7, 80, 101, 102, 103, 1000] {
        assert_eq!(detect(8000, &signal, chunk), reference, "chunk {chunk}");
    }
}

#[test]
fn a_digit_held_at_the_end_is_reported_on_flush() {
    let tone = ToneGenerator::dtmf(8000, DtmfDigit::Pound, 0.2).generate(1600);
    let mut detector = DtmfDetector::new(8000);
    let mut tones = Vec::new();
    detector.push(&tone, &mut tones);
    assert!(tones.is_empty());
    assert_eq!(detector.current(), Some(DtmfDigit::Pound));
    detector.flush(&mut tones);
    assert_eq!(tones.len(), 1);
    assert_eq!(tones[0].digit, DtmfDigit::Pound);
}

#[test]
fn single_tones_and_silence_are_not_digits() {
    let mut tones = Vec::new();
    let mut detector = DtmfDetector::new(8000);
    detector.push(&[0; 8000], &mut tones);
    detector.push(
        &ToneGenerator::sine(8000, 697.0, 0.3).generate(8000),
        &mut tones,
    );
    detector.push(
        &ToneGenerator::sine(8000, 1336.0, 0.3).generate(8000),
        &mut tones,
    );
    // Dial tone (350 + 440 Hz) and ringback (440 + 480 Hz).
    detector.push(
        &ToneGenerator::sine(8000, 350.0, 0.2)
            .with_tone(440.0, 0.2)
            .generate(8000),
        &mut tones,
    );
    detector.push(
        &ToneGenerator::sine(8000, 440.0, 0.2)
            .with_tone(480.0, 0.2)
            .generate(8000),
        &mut tones,
    );
    detector.flush(&mut tones);
    assert!(tones.is_empty(), "{tones:?}");
}

#[test]
fn no_digit_in_any_speech_fixture() {
    for fixture in speech::all() {
        let tones = detect(fixture.sample_rate, &fixture.samples, 160);
        assert!(tones.is_empty(), "talk-off in {}: {tones:?}", fixture.file);
    }
}
