//! WAV files written here are read by sox, and sox's are read here, in PCM16, mu-law
//! and A-law: the G.711 chunk layout is hand-written, so it is checked against a real
//! tool rather than against itself. `.ci/run` installs sox.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use voxline_audio::g711::{alaw, mulaw};
use voxline_audio::{AudioFormat, Encoding, wav};
use voxline_fixtures::speech::{self, Variant};

/// Runs sox without dither (`-D`): dither would add noise before G.711 encoding.
fn sox(input: &Path, options: &[&str], output: &Path) {
    let args: Vec<&OsStr> = [OsStr::new("-D"), input.as_os_str()]
        .into_iter()
        .chain(options.iter().map(OsStr::new))
        .chain([output.as_os_str()])
        .collect();
    let status = Command::new("sox")
        .args(&args)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run sox ({e}): install it with `apt-get install sox` (.ci/run does)")
        });
    assert!(status.success(), "sox {args:?} failed");
}

fn speech_pcm() -> Vec<i16> {
    speech::load("caller_en_gb", 8000, Variant::Clean).samples
}

#[test]
fn sox_reads_our_g711_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pcm = speech_pcm();
    for (encoding, name) in [(Encoding::Mulaw, "mulaw"), (Encoding::Alaw, "alaw")] {
        let mut codes = Vec::new();
        match encoding {
            Encoding::Mulaw => mulaw::encode(&pcm, &mut codes),
            _ => alaw::encode(&pcm, &mut codes),
        }
        let ours = dir.path().join(format!("ours_{name}.wav"));
        wav::write(&ours, AudioFormat::new(encoding, 8000), &codes).expect("write");
        // sox decodes our file to plain 16-bit PCM, which hound-backed reading checks.
        let decoded = dir.path().join(format!("sox_{name}_pcm.wav"));
        sox(&ours, &["-e", "signed-integer", "-b", "16"], &decoded);
        let back = wav::read(&decoded).expect("read sox output");
        assert_eq!(back.format, AudioFormat::PCM16_8K);
        let mut expected = Vec::new();
        match encoding {
            Encoding::Mulaw => mulaw::decode(&codes, &mut expected),
            _ => alaw::decode(&codes, &mut expected),
        }
        assert_eq!(
            back.to_pcm16(),
            expected,
            "{name}: sox decoded our file differently"
        );
    }
}

#[test]
fn we_read_sox_g711_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source.wav");
    let pcm = speech_pcm();
    let mut bytes = Vec::new();
    voxline_audio::pcm::encode_le(&pcm, &mut bytes);
    wav::write(&source, AudioFormat::PCM16_8K, &bytes).expect("write");
    for (flag, encoding) in [("mu-law", Encoding::Mulaw), ("a-law", Encoding::Alaw)] {
        let out = dir.path().join(format!("sox_{flag}.wav"));
        sox(&source, &["-e", flag, "-b", "8"], &out);
        let audio = wav::read(&out).expect("read sox G.711");
        assert_eq!(audio.format, AudioFormat::new(encoding, 8000));
        assert_eq!(audio.data.len(), pcm.len());
        // sox uses the same reference encoder but rounds to 14 (mu-law) or 13 (A-law)
        // bits where the reference truncates; rounding first, ours must agree exactly.
        let (shift, encode): (u32, fn(i16) -> u8) = match encoding {
            Encoding::Mulaw => (2, mulaw::encode_sample),
            _ => (3, alaw::encode_sample),
        };
        let half = 1i32 << (shift - 1);
        let ours: Vec<u8> = pcm
            .iter()
            .map(|&s| {
                let rounded = ((i32::from(s) + half) >> shift) << shift;
                encode(rounded.clamp(-32768, 32767) as i16)
            })
            .collect();
        let differing = audio.data.iter().zip(&ours).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{flag}: {differing} codes differ from sox");
    }
}

#[test]
fn pcm16_round_trips_through_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pcm.wav");
    let pcm = speech_pcm();
    let mut bytes = Vec::new();
    voxline_audio::pcm::encode_le(&pcm, &mut bytes);
    wav::write(&path, AudioFormat::PCM16_8K, &bytes).expect("write");
    let back = wav::read(&path).expect("read");
    assert_eq!(back.to_pcm16(), pcm);
    let missing = wav::read(dir.path().join("missing.wav")).expect_err("missing file");
    assert!(missing.to_string().contains("missing.wav"), "{missing}");
}
