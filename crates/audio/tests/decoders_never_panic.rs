//! Outside input never panics: arbitrary or mangled bytes get an error or a result.

use proptest::prelude::*;
use voxline_audio::dtmf::DtmfDetector;
use voxline_audio::{AudioFormat, Encoding, Transcoder, wav};

fn valid_wav() -> Vec<u8> {
    wav::to_bytes(AudioFormat::MULAW_8K, &[0xFF; 64]).expect("writes")
}

proptest! {
    #[test]
    fn wav_reader_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = wav::read_bytes(&bytes);
        let mut riff = b"RIFF\0\0\0\0WAVE".to_vec();
        riff.extend_from_slice(&bytes);
        let _ = wav::read_bytes(&riff);
    }

    #[test]
    fn wav_reader_survives_mangled_headers(
        edits in prop::collection::vec((0usize..80, any::<u8>()), 1..8),
        cut in 0usize..90,
    ) {
        for base in [valid_wav(), wav::to_bytes(AudioFormat::PCM16_16K, &[0; 64]).expect("writes")] {
            let mut bytes = base.clone();
            for &(at, value) in &edits {
                if let Some(b) = bytes.get_mut(at) {
                    *b = value;
                }
            }
            let _ = wav::read_bytes(&bytes);
            let _ = wav::read_bytes(&bytes[..cut.min(bytes.len())]);
        }
    }

    #[test]
    fn transcoder_and_detector_take_any_audio(
        bytes in prop::collection::vec(any::<u8>(), 0..3000),
        encoding in 0usize..3,
        rate in prop::sample::select(vec![8000u32, 16000, 22050, 24000, 44100, 48000]),
    ) {
        let encoding = [Encoding::Pcm16, Encoding::Mulaw, Encoding::Alaw][encoding];
        let mut t = Transcoder::new(AudioFormat::new(encoding, rate), AudioFormat::PCM16_8K).expect("supported");
        let mut out = Vec::new();
        t.process(&bytes, &mut out);
        let _ = t.flush(&mut out);
        let samples: Vec<i16> = out.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect();
        let mut tones = Vec::new();
        let mut detector = DtmfDetector::new(8000);
        detector.push(&samples, &mut tones);
        detector.flush(&mut tones);
    }
}
