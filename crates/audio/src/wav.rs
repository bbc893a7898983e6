//! WAV files in PCM16, mu-law and A-law, mono.
//!
//! PCM16 goes through `hound`. `hound` does not handle the G.711 format tags (6 for
//! A-law, 7 for mu-law), so those are read and written here: a `fmt ` chunk, the
//! `fact` chunk that non-PCM formats require, and `data`, as sox and telephony tools
//! write them.
//!
//! ```no_run
//! use voxline_audio::{wav, AudioFormat};
//!
//! let audio = wav::read("call.wav")?;
//! println!("{} bytes of {}", audio.data.len(), audio.format);
//! wav::write("copy.wav", AudioFormat::MULAW_8K, &[0xFF; 8000])?;
//! # Ok::<(), voxline_audio::AudioError>(())
//! ```

use std::fs;
use std::io::{Cursor, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::AudioError;
use crate::format::{AudioFormat, Encoding};
use crate::g711::{alaw, mulaw};
use crate::pcm;

const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_MULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The audio of a WAV file: encoded bytes exactly as stored (PCM16 little-endian, or
/// one G.711 code per sample) and their format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavAudio {
    /// Encoding and sample rate.
    pub format: AudioFormat,
    /// The samples, encoded as `format` says.
    pub data: Vec<u8>,
}

impl WavAudio {
    /// The samples as linear PCM16, decoding G.711 if needed.
    pub fn to_pcm16(&self) -> Vec<i16> {
        let mut out = Vec::with_capacity(self.data.len());
        match self.format.encoding {
            Encoding::Pcm16 => pcm::decode_whole_samples(&self.data, &mut out),
            Encoding::Mulaw => mulaw::decode(&self.data, &mut out),
            Encoding::Alaw => alaw::decode(&self.data, &mut out),
        }
        out
    }
}

/// Reads a mono WAV file in PCM16, mu-law or A-law.
///
/// # Errors
/// [`AudioError::Io`] when the file cannot be read; [`AudioError::Wav`] when it is not
/// a mono WAV in one of those encodings.
pub fn read(path: impl AsRef<Path>) -> Result<WavAudio, AudioError> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|source| AudioError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&bytes).map_err(|reason| wav_error(Some(path), reason))
}

/// Reads a mono WAV held in memory.
///
/// # Errors
/// [`AudioError::Wav`] when it is not a mono WAV in PCM16, mu-law or A-law.
pub fn read_bytes(bytes: &[u8]) -> Result<WavAudio, AudioError> {
    parse(bytes).map_err(|reason| wav_error(None, reason))
}

/// Writes `data`, encoded as `format`, to a mono WAV file.
///
/// # Errors
/// [`AudioError::Io`] or [`AudioError::Wav`] when the file cannot be written, and
/// [`AudioError::OddPcmLength`] for PCM16 data that is not whole samples.
pub fn write(path: impl AsRef<Path>, format: AudioFormat, data: &[u8]) -> Result<(), AudioError> {
    let path = path.as_ref();
    let bytes = to_bytes(format, data)?;
    fs::write(path, bytes).map_err(|source| AudioError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Encodes `data` (in `format`) as the bytes of a mono WAV file.
///
/// # Errors
/// [`AudioError::OddPcmLength`] for PCM16 data that is not whole samples, and
/// [`AudioError::Wav`] when the data is too large for a WAV file.
pub fn to_bytes(format: AudioFormat, data: &[u8]) -> Result<Vec<u8>, AudioError> {
    let mut out = Cursor::new(Vec::with_capacity(data.len() + 64));
    match format.encoding {
        Encoding::Pcm16 => write_pcm16(&mut out, format.sample_rate, data)?,
        Encoding::Mulaw => write_g711(&mut out, FORMAT_MULAW, format.sample_rate, data)?,
        Encoding::Alaw => write_g711(&mut out, FORMAT_ALAW, format.sample_rate, data)?,
    }
    Ok(out.into_inner())
}

fn wav_error(path: Option<&Path>, reason: String) -> AudioError {
    AudioError::Wav {
        path: path.map(PathBuf::from),
        reason,
    }
}

fn write_pcm16<W: Write + Seek>(
    out: &mut W,
    sample_rate: u32,
    data: &[u8],
) -> Result<(), AudioError> {
    if !data.len().is_multiple_of(2) {
        return Err(AudioError::OddPcmLength { len: data.len() });
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let hound_err = |e: hound::Error| wav_error(None, e.to_string());
    let mut writer = hound::WavWriter::new(out, spec).map_err(hound_err)?;
    {
        let mut samples = writer.get_i16_writer(data.len() as u32 / 2);
        for pair in data.chunks_exact(2) {
            samples.write_sample(i16::from_le_bytes([pair[0], pair[1]]));
        }
        samples.flush().map_err(hound_err)?;
    }
    writer.finalize().map_err(hound_err)
}

fn write_g711<W: Write>(
    out: &mut W,
    format_tag: u16,
    sample_rate: u32,
    data: &[u8],
) -> Result<(), AudioError> {
    let pad = data.len() % 2;
    let riff_size = 4 + (8 + 18) + (8 + 4) + 8 + data.len() + pad;
    let riff_size = u32::try_from(riff_size)
        .map_err(|_| wav_error(None, "data too large for a WAV file".into()))?;
    let data_len = data.len() as u32;
    let mut header = Vec::with_capacity(58);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&riff_size.to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&18u32.to_le_bytes());
    header.extend_from_slice(&format_tag.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes()); // channels
    header.extend_from_slice(&sample_rate.to_le_bytes());
    header.extend_from_slice(&sample_rate.to_le_bytes()); // bytes per second
    header.extend_from_slice(&1u16.to_le_bytes()); // block align
    header.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    header.extend_from_slice(&0u16.to_le_bytes()); // no extra format bytes
    header.extend_from_slice(b"fact");
    header.extend_from_slice(&4u32.to_le_bytes());
    header.extend_from_slice(&data_len.to_le_bytes()); // samples (one byte each)
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_len.to_le_bytes());
    let io = |e: std::io::Error| wav_error(None, e.to_string());
    out.write_all(&header).map_err(io)?;
    out.write_all(data).map_err(io)?;
    if pad == 1 {
        out.write_all(&[0]).map_err(io)?;
    }
    Ok(())
}

/// The `fmt ` fields this module looks at.
struct Fmt {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    bits: u16,
}

fn parse(bytes: &[u8]) -> Result<WavAudio, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut fmt = None;
    let mut data = None;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body_start = pos + 8;
        // Streams written live often leave a zero or maximal size: take what is there.
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " => fmt = Some(parse_fmt(body)?),
            b"data" => {
                data = Some(body);
                if fmt.is_some() {
                    break;
                }
            }
            _ => {}
        }
        pos = body_end + (size % 2);
    }
    let fmt = fmt.ok_or("no fmt chunk")?;
    let data = data.ok_or("no data chunk")?;
    if fmt.channels != 1 {
        return Err(format!("{} channels; only mono is supported", fmt.channels));
    }
    let encoding = match (fmt.tag, fmt.bits) {
        (FORMAT_PCM, 16) => Encoding::Pcm16,
        (FORMAT_MULAW, 8) => Encoding::Mulaw,
        (FORMAT_ALAW, 8) => Encoding::Alaw,
        (tag, bits) => {
            return Err(format!(
                "format tag {tag} with {bits} bits per sample; only 16-bit PCM, mu-law and A-law are supported"
            ));
        }
    };
    if fmt.sample_rate == 0 {
        return Err("sample rate is zero".into());
    }
    let format = AudioFormat::new(encoding, fmt.sample_rate);
    let data = if encoding == Encoding::Pcm16 {
        read_pcm16_with_hound(bytes)?
    } else {
        data.to_vec()
    };
    Ok(WavAudio { format, data })
}

fn parse_fmt(body: &[u8]) -> Result<Fmt, String> {
    if body.len() < 16 {
        return Err(format!("fmt chunk of {} bytes is too short", body.len()));
    }
    let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
    let mut tag = u16_at(0);
    if tag == FORMAT_EXTENSIBLE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
        if body.len() < 26 {
            return Err("extensible fmt chunk is too short".into());
        }
        tag = u16_at(24);
    }
    Ok(Fmt {
        tag,
        channels: u16_at(2),
        sample_rate: u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
        bits: u16_at(14),
    })
}

fn read_pcm16_with_hound(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut data = Vec::with_capacity(reader.len() as usize * 2);
    for sample in reader.into_samples::<i16>() {
        data.extend_from_slice(&sample.map_err(|e| e.to_string())?.to_le_bytes());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips_in_memory() {
        for format in [
            AudioFormat::PCM16_16K,
            AudioFormat::MULAW_8K,
            AudioFormat::ALAW_8K,
        ] {
            let data: Vec<u8> = (0..=254u8).collect(); // odd length for G.711: padded chunk
            let data = if format.encoding == Encoding::Pcm16 {
                data[..254].to_vec()
            } else {
                data
            };
            let bytes = to_bytes(format, &data).expect("writes");
            let back = read_bytes(&bytes).expect("reads");
            assert_eq!(back.format, format);
            assert_eq!(back.data, data);
        }
    }

    #[test]
    fn malformed_files_get_clear_errors() {
        let err = read_bytes(b"not a wav").expect_err("garbage");
        assert!(err.to_string().contains("not a RIFF/WAVE file"), "{err}");
        let mut stereo = to_bytes(AudioFormat::MULAW_8K, &[0xFF; 10]).expect("writes");
        stereo[22] = 2;
        let err = read_bytes(&stereo).expect_err("stereo");
        assert!(err.to_string().contains("only mono"), "{err}");
        let err = to_bytes(AudioFormat::PCM16_8K, &[1, 2, 3]).expect_err("odd");
        assert!(matches!(err, AudioError::OddPcmLength { len: 3 }));
        let truncated = &to_bytes(AudioFormat::MULAW_8K, &[0xFF; 10]).expect("writes")[..40];
        assert!(read_bytes(truncated).is_err());
    }
}
