//! The transcoder and rechunker are streaming objects: however the input is chunked
//! (odd sizes, empty chunks, samples split in two), the output is the same.

use proptest::prelude::*;
use voxline_audio::g711::mulaw;
use voxline_audio::{AudioFormat, Encoding, FrameSize, Rechunker, Resampler, Transcoder, pcm};

const FORMATS: [AudioFormat; 6] = [
    AudioFormat::MULAW_8K,
    AudioFormat::ALAW_8K,
    AudioFormat::PCM16_8K,
    AudioFormat::PCM16_16K,
    AudioFormat::PCM16_24K,
    AudioFormat::new(Encoding::Mulaw, 16000),
];

fn split<'a>(mut data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for &size in sizes.iter().cycle() {
        if data.is_empty() {
            break;
        }
        let (head, tail) = data.split_at(size.min(data.len()));
        out.push(head);
        out.push(&[]); // empty chunks are legal and change nothing
        data = tail;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn transcoding_is_independent_of_chunking(
        from in 0..FORMATS.len(),
        to in 0..FORMATS.len(),
        input in prop::collection::vec(any::<u8>(), 0..2000),
        sizes in prop::collection::vec(1usize..333, 1..20),
    ) {
        let (from, to) = (FORMATS[from], FORMATS[to]);
        // Whole samples only, so flush reports no dangling byte.
        let input = &input[..input.len() / from.bytes_per_sample() * from.bytes_per_sample()];

        let mut whole = Vec::new();
        let mut t = Transcoder::new(from, to).expect("supported");
        t.process(input, &mut whole);
        prop_assert_eq!(t.flush(&mut whole), 0);

        let mut pieces = Vec::new();
        let mut t = Transcoder::new(from, to).expect("supported");
        for chunk in split(input, &sizes) {
            t.process(chunk, &mut pieces);
        }
        prop_assert_eq!(t.flush(&mut pieces), 0);
        prop_assert_eq!(&pieces, &whole, "{} -> {}", from, to);

        let samples_in = input.len() / from.bytes_per_sample();
        let samples_out = (samples_in as u64 * u64::from(to.sample_rate)).div_ceil(u64::from(from.sample_rate));
        prop_assert_eq!(whole.len(), samples_out as usize * to.bytes_per_sample());
    }

    #[test]
    fn rechunking_keeps_every_byte_and_pads_only_the_end(
        input in prop::collection::vec(any::<u8>(), 0..5000),
        sizes in prop::collection::vec(1usize..700, 1..20),
        unit_index in 0usize..3,
        units in 1usize..6,
    ) {
        let (unit, encoding) = [(160, Encoding::Mulaw), (320, Encoding::Pcm16), (160, Encoding::Alaw)][unit_index];
        let size = FrameSize::multiple(unit, unit * units);
        let mut r = Rechunker::new(size, encoding).expect("valid");
        let mut frames = Vec::new();
        for chunk in split(&input, &sizes) {
            frames.extend(r.push(chunk));
            prop_assert!(r.buffered() < size.frame());
        }
        let last = r.flush();
        prop_assert!(frames.iter().all(|f| f.len() == size.frame()));
        let mut joined: Vec<u8> = frames.concat();
        if let Some(last) = last {
            prop_assert!(!last.is_empty() && last.len() % unit == 0 && last.len() <= size.frame());
            joined.extend_from_slice(&last);
        }
        prop_assert_eq!(&joined[..input.len()], &input[..]);
        prop_assert!(joined.len() - input.len() < unit);
        prop_assert!(joined[input.len()..].iter().all(|&b| b == encoding.silence_byte()));
    }
}

#[test]
fn mulaw_8k_to_pcm16_16k_matches_decode_then_resample() {
    let codes: Vec<u8> = (0..1600u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut t = Transcoder::new(AudioFormat::MULAW_8K, AudioFormat::PCM16_16K).expect("supported");
    let mut out = Vec::new();
    t.process(&codes, &mut out);
    let _ = t.flush(&mut out);

    let mut linear = Vec::new();
    mulaw::decode(&codes, &mut linear);
    let mut r = Resampler::new(8000, 16000).expect("supported");
    let mut expected = Vec::new();
    r.process(&linear, &mut expected);
    r.flush(&mut expected);
    let mut got = Vec::new();
    pcm::decode_le(&out, &mut got).expect("whole samples");
    assert_eq!(got, expected);
}

#[test]
fn tts_24k_to_phone_mulaw_frames() {
    // The outbound path: 24 kHz PCM16 from a TTS, to 8 kHz mu-law, in 20 ms frames.
    let tts: Vec<u8> = (0..4800)
        .flat_map(|i: i16| (i % 100 * 50).to_le_bytes())
        .collect();
    let mut t = Transcoder::new(AudioFormat::PCM16_24K, AudioFormat::MULAW_8K).expect("supported");
    let mut r = Rechunker::new(
        FrameSize::duration(AudioFormat::MULAW_8K, 20),
        Encoding::Mulaw,
    )
    .expect("valid");
    let mut frames = Vec::new();
    for chunk in tts.chunks(999) {
        frames.extend(r.push(&t.convert(chunk)));
    }
    let mut tail = Vec::new();
    let _ = t.flush(&mut tail);
    frames.extend(r.push(&tail));
    frames.extend(r.flush());
    // 4800 samples at 24 kHz = 200 ms = 10 frames of 160 bytes.
    assert_eq!(frames.len(), 10);
    assert!(frames.iter().all(|f| f.len() == 160));
}
