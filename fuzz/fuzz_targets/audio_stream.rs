//! Carrier audio is outside input: any bytes in any format, split anywhere, go through
//! the transcoder, the rechunker and the DTMF detector without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxline_audio::dtmf::DtmfDetector;
use voxline_audio::{AudioFormat, Encoding, FrameSize, Rechunker, Transcoder};

const ENCODINGS: [Encoding; 3] = [Encoding::Pcm16, Encoding::Mulaw, Encoding::Alaw];
const RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

fuzz_target!(|data: &[u8]| {
    let [a, b, c, rest @ ..] = data else { return };
    let from = AudioFormat::new(ENCODINGS[*a as usize % 3], RATES[*a as usize / 3 % 6]);
    let to = AudioFormat::new(ENCODINGS[*b as usize % 3], RATES[*b as usize / 3 % 6]);
    let Ok(mut transcoder) = Transcoder::new(from, to) else { return };
    let unit = to.bytes_per_sample() * (1 + *c as usize % 200);
    let Ok(mut framer) = Rechunker::new(FrameSize::multiple(unit, unit * 5), to.encoding) else { return };
    let mut detector = DtmfDetector::new(to.sample_rate);
    let (mut out, mut tones, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in rest.split(|&byte| byte == 0xA5) {
        out.clear();
        transcoder.process(chunk, &mut out);
        for frame in framer.push(&out) {
            if to.encoding == Encoding::Pcm16 {
                samples.clear();
                let _ = voxline_audio::pcm::decode_le(&frame, &mut samples);
                detector.push(&samples, &mut tones);
            }
        }
    }
    let _ = transcoder.flush(&mut out);
    let _ = framer.flush();
    detector.flush(&mut tones);
});
