//! Output formats: which `output_format` to ask for, and turning what arrives into
//! the session's format.

use bytes::Bytes;
use voxline_audio::{AudioFormat, Encoding, Transcoder};
use voxline_core::{ErrorKind, ProviderError};

use crate::PROVIDER;

/// Which endpoint family the format is for: their format lists differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `stream-input` / `multi-stream-input`.
    WebSocket,
    /// `POST .../stream`.
    Http,
}

/// PCM16 rates each transport produces natively.
const WS_PCM_RATES: &[u32] = &[8000, 16000, 22050, 24000, 44100];
const HTTP_PCM_RATES: &[u32] = &[8000, 16000, 22050, 24000, 32000, 44100, 48000];

/// The `output_format` to request and the format wanted from the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FormatPlan {
    /// What the service sends.
    pub(crate) native: AudioFormat,
    /// What the session delivers.
    pub(crate) wanted: AudioFormat,
}

impl FormatPlan {
    /// The plan for `wanted`: the same format natively when the transport offers it,
    /// else the nearest native format to transcode from.
    pub(crate) fn new(wanted: AudioFormat, transport: Transport) -> Result<Self, ProviderError> {
        let pcm_rates = match transport {
            Transport::WebSocket => WS_PCM_RATES,
            Transport::Http => HTTP_PCM_RATES,
        };
        let native = match wanted.encoding {
            Encoding::Mulaw if wanted.sample_rate == 8000 => wanted,
            Encoding::Alaw if wanted.sample_rate == 8000 && transport == Transport::Http => wanted,
            // A-law over the WebSocket: mu-law at the same rate, re-encoded sample by
            // sample (no resampling).
            Encoding::Alaw if wanted.sample_rate == 8000 => AudioFormat::MULAW_8K,
            Encoding::Pcm16 if pcm_rates.contains(&wanted.sample_rate) => wanted,
            _ => {
                // The lowest native PCM rate at or above the one wanted (no detail is
                // invented by upsampling), else the highest.
                let rate = pcm_rates
                    .iter()
                    .copied()
                    .find(|&r| r >= wanted.sample_rate)
                    .or_else(|| pcm_rates.last().copied())
                    .unwrap_or(24000);
                AudioFormat::new(Encoding::Pcm16, rate)
            }
        };
        let plan = Self { native, wanted };
        // Fail now, not at the first audio, if the transcoder cannot do it.
        plan.converter()?;
        Ok(plan)
    }

    /// The `output_format` query value.
    pub(crate) fn output_format(&self) -> String {
        match self.native.encoding {
            Encoding::Mulaw => format!("ulaw_{}", self.native.sample_rate),
            Encoding::Alaw => format!("alaw_{}", self.native.sample_rate),
            Encoding::Pcm16 => format!("pcm_{}", self.native.sample_rate),
        }
    }

    /// Whether audio passes through untouched.
    pub(crate) fn is_native(&self) -> bool {
        self.native == self.wanted
    }

    /// A converter for one request's audio.
    pub(crate) fn converter(&self) -> Result<Converter, ProviderError> {
        let transcoder = if self.is_native() {
            None
        } else {
            Some(Transcoder::new(self.native, self.wanted).map_err(|e| {
                ProviderError::new(
                    PROVIDER,
                    ErrorKind::BadRequest,
                    format!("cannot produce {}: {e}", self.wanted),
                )
            })?)
        };
        Ok(Converter {
            transcoder,
            pcm16: self.native.encoding == Encoding::Pcm16,
            carry: None,
        })
    }
}

/// Turns one request's audio as it arrives (any chunking) into whole samples of the
/// session's format.
#[derive(Debug)]
pub(crate) struct Converter {
    transcoder: Option<Transcoder>,
    /// Whether passed-through audio is PCM16 (two bytes a sample).
    pcm16: bool,
    /// The first byte of a PCM16 sample split across chunks (pass-through only).
    carry: Option<u8>,
}

impl Converter {
    /// Converts a chunk; may be empty when it held no whole sample yet.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Bytes {
        if let Some(t) = &mut self.transcoder {
            return Bytes::from(t.convert(chunk));
        }
        if !self.pcm16 || (self.carry.is_none() && chunk.len().is_multiple_of(2)) {
            return Bytes::copy_from_slice(chunk);
        }
        let mut out = Vec::with_capacity(chunk.len() + 1);
        out.extend(self.carry.take());
        out.extend_from_slice(chunk);
        if !out.len().is_multiple_of(2) {
            self.carry = out.pop();
        }
        Bytes::from(out)
    }

    /// The end of the request's audio: what the resampler held back.
    pub(crate) fn finish(&mut self) -> Bytes {
        self.carry = None;
        match &mut self.transcoder {
            Some(t) => {
                let mut out = Vec::new();
                let dangling = t.flush(&mut out);
                if dangling > 0 {
                    tracing::debug!(dangling, "audio ended mid-sample; partial sample dropped");
                }
                Bytes::from(out)
            }
            None => Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_formats_are_native() {
        let plan = FormatPlan::new(AudioFormat::MULAW_8K, Transport::WebSocket).expect("plan");
        assert_eq!(plan.output_format(), "ulaw_8000");
        assert!(plan.is_native());
        for (wanted, ws, http) in [
            (AudioFormat::PCM16_8K, "pcm_8000", "pcm_8000"),
            (AudioFormat::PCM16_16K, "pcm_16000", "pcm_16000"),
            (AudioFormat::PCM16_24K, "pcm_24000", "pcm_24000"),
            (AudioFormat::ALAW_8K, "ulaw_8000", "alaw_8000"),
            (
                AudioFormat::new(Encoding::Pcm16, 48000),
                "pcm_44100",
                "pcm_48000",
            ),
            (
                AudioFormat::new(Encoding::Pcm16, 12000),
                "pcm_16000",
                "pcm_16000",
            ),
        ] {
            let w = FormatPlan::new(wanted, Transport::WebSocket).expect("ws plan");
            let h = FormatPlan::new(wanted, Transport::Http).expect("http plan");
            assert_eq!(
                (w.output_format().as_str(), h.output_format().as_str()),
                (ws, http)
            );
        }
    }

    #[test]
    fn pcm_pass_through_keeps_whole_samples() {
        let plan = FormatPlan::new(AudioFormat::PCM16_16K, Transport::Http).expect("plan");
        let mut c = plan.converter().expect("converter");
        assert_eq!(c.push(&[1, 2, 3]).as_ref(), &[1, 2]);
        assert_eq!(c.push(&[4]).as_ref(), &[3, 4]);
        assert_eq!(c.push(&[5, 6]).as_ref(), &[5, 6]);
        assert!(c.finish().is_empty());
    }

    #[test]
    fn alaw_over_websocket_is_reencoded_sample_for_sample() {
        let plan = FormatPlan::new(AudioFormat::ALAW_8K, Transport::WebSocket).expect("plan");
        let mut c = plan.converter().expect("converter");
        let out = c.push(&[0xFF; 160]);
        let tail = c.finish();
        assert_eq!(out.len() + tail.len(), 160);
        // mu-law 0xFF is zero; A-law zero is 0xD5.
        assert!(out.iter().all(|&b| b == 0xD5));
    }
}
