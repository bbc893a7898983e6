//! G.711 is bit-exact against the reference vectors (CPython `audioop`) for all 256
//! codes and all 65,536 linear inputs.

use proptest::prelude::*;
use voxline_audio::g711::{alaw, mulaw};
use voxline_fixtures::g711;

fn all_i16() -> impl Iterator<Item = i16> {
    (0..65_536i32).map(|i| (i - 32_768) as i16)
}

#[test]
fn mulaw_decodes_every_code_like_the_reference() {
    let tables = g711::decode_tables();
    for code in 0..=255u8 {
        assert_eq!(
            mulaw::decode_sample(code),
            tables.mulaw_decode[code as usize],
            "mu-law code {code:#04x}"
        );
    }
    let codes: Vec<u8> = (0..=255).collect();
    let mut decoded = Vec::new();
    mulaw::decode(&codes, &mut decoded);
    assert_eq!(decoded, tables.mulaw_decode);
}

#[test]
fn alaw_decodes_every_code_like_the_reference() {
    let tables = g711::decode_tables();
    for code in 0..=255u8 {
        assert_eq!(
            alaw::decode_sample(code),
            tables.alaw_decode[code as usize],
            "A-law code {code:#04x}"
        );
    }
    let codes: Vec<u8> = (0..=255).collect();
    let mut decoded = vec![0; 256];
    alaw::decode_into(&codes, &mut decoded);
    assert_eq!(decoded, tables.alaw_decode);
}

#[test]
fn mulaw_encodes_every_sample_like_the_reference() {
    let reference = g711::mulaw_encode_all();
    for (sample, &expected) in all_i16().zip(&reference) {
        assert_eq!(
            mulaw::encode_sample(sample),
            expected,
            "mu-law encode of {sample}"
        );
    }
    let samples: Vec<i16> = all_i16().collect();
    let mut encoded = Vec::new();
    mulaw::encode(&samples, &mut encoded);
    assert_eq!(encoded, reference);
}

#[test]
fn alaw_encodes_every_sample_like_the_reference() {
    let reference = g711::alaw_encode_all();
    for (sample, &expected) in all_i16().zip(&reference) {
        assert_eq!(
            alaw::encode_sample(sample),
            expected,
            "A-law encode of {sample}"
        );
    }
    let samples: Vec<i16> = all_i16().collect();
    let mut encoded = vec![0; samples.len()];
    alaw::encode_into(&samples, &mut encoded);
    assert_eq!(encoded, reference);
}

#[test]
fn decode_then_encode_is_the_identity_except_negative_zero() {
    for code in 0..=255u8 {
        // mu-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes as 0xFF.
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(mulaw::encode_sample(mulaw::decode_sample(code)), expected);
        assert_eq!(alaw::encode_sample(alaw::decode_sample(code)), code);
    }
}

proptest! {
    #[test]
    fn encode_error_stays_within_the_segment_step(sample: i16) {
        // mu-law's largest step is 1024 at the top segment (plus clipping above 32635);
        // A-law's is 1024 too.
        let m = i32::from(mulaw::decode_sample(mulaw::encode_sample(sample)));
        prop_assert!((m - i32::from(sample)).abs() <= 1024, "mu-law {} -> {}", sample, m);
        let a = i32::from(alaw::decode_sample(alaw::encode_sample(sample)));
        prop_assert!((a - i32::from(sample)).abs() <= 1024, "A-law {} -> {}", sample, a);
    }

    #[test]
    fn slice_and_sample_apis_agree(samples: Vec<i16>) {
        let mut encoded = Vec::new();
        mulaw::encode(&samples, &mut encoded);
        let expected: Vec<u8> = samples.iter().map(|&s| mulaw::encode_sample(s)).collect();
        prop_assert_eq!(&encoded, &expected);
        let mut decoded = Vec::new();
        mulaw::decode(&encoded, &mut decoded);
        let expected: Vec<i16> = encoded.iter().map(|&c| mulaw::decode_sample(c)).collect();
        prop_assert_eq!(decoded, expected);
    }
}
