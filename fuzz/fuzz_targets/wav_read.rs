//! WAV files are outside input: reading any bytes must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(audio) = voxline_audio::wav::read_bytes(data) {
        let _ = audio.to_pcm16();
    }
});
