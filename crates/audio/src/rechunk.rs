//! Arbitrary byte chunks in, carrier-sized frames out.

use bytes::{Bytes, BytesMut};

use crate::error::AudioError;
use crate::format::{AudioFormat, Encoding};

/// The frames a carrier accepts: `frame` bytes each, and when a stream ends, a last
/// frame padded to a whole number of `unit`s.
///
/// - Twilio: exactly 160 bytes (20 ms of mu-law): `FrameSize::exact(160)`.
/// - Exotel: multiples of 320 bytes (20 ms of 8 kHz PCM16), about 100 ms per message:
///   `FrameSize::multiple(320, 1600)`.
/// - Smartflo: multiples of 160 bytes: `FrameSize::multiple(160, 800)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSize {
    unit: usize,
    frame: usize,
}

impl FrameSize {
    /// Every frame is exactly `bytes` long; the last is padded to full size.
    pub const fn exact(bytes: usize) -> Self {
        Self {
            unit: bytes,
            frame: bytes,
        }
    }

    /// Frames of `frame` bytes, a multiple of `unit`; the last is padded to a multiple
    /// of `unit` only.
    pub const fn multiple(unit: usize, frame: usize) -> Self {
        Self { unit, frame }
    }

    /// Exact frames of `frame_ms` milliseconds of `format`.
    pub fn duration(format: AudioFormat, frame_ms: u32) -> Self {
        Self::exact(format.frame_bytes(frame_ms))
    }

    /// The size of a full frame in bytes.
    pub const fn frame(&self) -> usize {
        self.frame
    }

    /// The unit every frame is a multiple of.
    pub const fn unit(&self) -> usize {
        self.unit
    }

    fn validate(self, encoding: Encoding) -> Result<Self, AudioError> {
        let invalid = |bytes, reason| AudioError::InvalidFrameSize {
            bytes,
            encoding,
            reason,
        };
        if self.unit == 0 || self.frame == 0 {
            return Err(invalid(
                self.frame.min(self.unit),
                "frames must not be empty",
            ));
        }
        if !self.frame.is_multiple_of(self.unit) {
            return Err(invalid(
                self.frame,
                "the frame is not a multiple of the unit",
            ));
        }
        if !self.unit.is_multiple_of(encoding.bytes_per_sample()) {
            return Err(invalid(self.unit, "the unit splits a sample"));
        }
        Ok(self)
    }
}

/// Re-frames a byte stream: keeps what does not fill a frame for the next call, and
/// pads the last frame with the encoding's silence on [`Rechunker::flush`].
///
/// What it holds between calls is always less than one frame, so its memory is
/// bounded by the frame size (as long as each [`Rechunker::push`]'s frames are taken).
///
/// ```
/// use voxline_audio::{Encoding, FrameSize, Rechunker};
///
/// let mut r = Rechunker::new(FrameSize::multiple(320, 640), Encoding::Pcm16)?;
/// assert_eq!(r.push(&[1u8; 700]).map(|f| f.len()).collect::<Vec<_>>(), [640]);
/// let last = r.flush().expect("60 bytes were left");
/// assert_eq!(last.len(), 320);
/// assert!(last[60..].iter().all(|&b| b == 0));
/// # Ok::<(), voxline_audio::AudioError>(())
/// ```
#[derive(Debug)]
pub struct Rechunker {
    size: FrameSize,
    silence: u8,
    buf: BytesMut,
}

impl Rechunker {
    /// A rechunker for frames of `size` carrying `encoding`.
    ///
    /// # Errors
    /// [`AudioError::InvalidFrameSize`] when the size is zero, the frame is not a
    /// multiple of the unit, or the unit would split a sample.
    pub fn new(size: FrameSize, encoding: Encoding) -> Result<Self, AudioError> {
        Ok(Self {
            size: size.validate(encoding)?,
            silence: encoding.silence_byte(),
            // Allocated on the first push: a call that never plays holds nothing.
            buf: BytesMut::new(),
        })
    }

    /// The frame size.
    pub fn frame_size(&self) -> FrameSize {
        self.size
    }

    /// Appends `data` and returns the complete frames now available.
    pub fn push(&mut self, data: &[u8]) -> Frames<'_> {
        self.buf.extend_from_slice(data);
        Frames { rechunker: self }
    }

    /// Like [`push`](Self::push), without copying: while nothing is held, whole frames
    /// are slices of `data` itself (a reference count, not a copy), and only what is
    /// left over is copied into the buffer. Frames the iterator does not hand out stay
    /// buffered, as with `push`. The immediate-echo path uses this.
    pub fn push_bytes(&mut self, data: Bytes) -> SharedFrames<'_> {
        SharedFrames {
            rechunker: self,
            data,
        }
    }

    /// Ends the stream: returns what is left, padded with silence to a whole number of
    /// units (so less than one unit of padding is added), or `None` when nothing is
    /// left. That is less than one frame unless frames from `push` were left untaken.
    pub fn flush(&mut self) -> Option<Bytes> {
        if self.buf.is_empty() {
            return None;
        }
        let padded = self.buf.len().div_ceil(self.size.unit) * self.size.unit;
        self.buf.resize(padded, self.silence);
        Some(self.buf.split().freeze())
    }

    /// Drops everything held (barge-in). Returns how many bytes were dropped.
    pub fn clear(&mut self) -> usize {
        let dropped = self.buf.len();
        self.buf.clear();
        dropped
    }

    /// Bytes held that do not yet fill a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// The complete frames made available by one [`Rechunker::push`].
#[must_use = "frames not taken stay buffered in the rechunker"]
#[derive(Debug)]
pub struct Frames<'a> {
    rechunker: &'a mut Rechunker,
}

impl Iterator for Frames<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let frame = self.rechunker.size.frame;
        (self.rechunker.buf.len() >= frame).then(|| self.rechunker.buf.split_to(frame).freeze())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rechunker.buf.len() / self.rechunker.size.frame;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Frames<'_> {}

/// The frames from [`Rechunker::push_bytes`]; what is not taken goes into the buffer
/// when it is dropped.
#[must_use = "frames not taken stay buffered in the rechunker"]
#[derive(Debug)]
pub struct SharedFrames<'a> {
    rechunker: &'a mut Rechunker,
    data: Bytes,
}

impl Iterator for SharedFrames<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let frame = self.rechunker.size.frame;
        let buf = &mut self.rechunker.buf;
        if !buf.is_empty() {
            // Complete the held partial frame first, so the order is kept.
            let missing = frame.saturating_sub(buf.len()).min(self.data.len());
            buf.extend_from_slice(&self.data.split_to(missing));
            return (buf.len() >= frame).then(|| buf.split_to(frame).freeze());
        }
        (self.data.len() >= frame).then(|| self.data.split_to(frame))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.rechunker.buf.len() + self.data.len()) / self.rechunker.size.frame;
        (n, Some(n))
    }
}

impl ExactSizeIterator for SharedFrames<'_> {}

impl Drop for SharedFrames<'_> {
    fn drop(&mut self) {
        if !self.data.is_empty() {
            self.rechunker.buf.extend_from_slice(&self.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_bytes_matches_push_and_shares_whole_frames() {
        // The same stream cut two ways gives the same frames, in the same order.
        let stream: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for cuts in [
            &[160usize, 320, 100, 60, 500, 3][..],
            &[1, 159, 161, 480, 7],
        ] {
            let mut copying =
                Rechunker::new(FrameSize::exact(160), Encoding::Mulaw).expect("valid");
            let mut sharing =
                Rechunker::new(FrameSize::exact(160), Encoding::Mulaw).expect("valid");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut at = 0;
            for &n in cuts.iter().cycle() {
                if at >= stream.len() {
                    break;
                }
                let piece = &stream[at..(at + n).min(stream.len())];
                at += piece.len();
                a.extend(copying.push(piece));
                b.extend(sharing.push_bytes(Bytes::copy_from_slice(piece)));
                assert_eq!(copying.buffered(), sharing.buffered());
            }
            assert_eq!(a, b);
            assert_eq!(copying.flush(), sharing.flush());
        }
        // Whole frames from an empty buffer point into the input.
        let mut r = Rechunker::new(FrameSize::exact(160), Encoding::Mulaw).expect("valid");
        let input = Bytes::from(vec![1u8; 320]);
        let frames: Vec<Bytes> = r.push_bytes(input.clone()).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].as_ptr(), input.as_ptr());
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn untaken_shared_frames_stay_buffered() {
        let mut r = Rechunker::new(FrameSize::exact(160), Encoding::Mulaw).expect("valid");
        let first = r.push_bytes(Bytes::from(vec![3u8; 400])).next();
        assert_eq!(first.map(|f| f.len()), Some(160));
        assert_eq!(r.buffered(), 240);
        assert_eq!(r.push(&[]).count(), 1);
        assert_eq!(r.buffered(), 80);
    }

    #[test]
    fn exact_frames_pad_with_the_encodings_silence() {
        for (encoding, silence) in [
            (Encoding::Mulaw, 0xFF),
            (Encoding::Alaw, 0xD5),
            (Encoding::Pcm16, 0x00),
        ] {
            let mut r = Rechunker::new(FrameSize::exact(160), encoding).expect("valid");
            let frames: Vec<Bytes> = r.push(&[7u8; 350]).collect();
            assert_eq!(frames.len(), 2);
            assert_eq!(r.buffered(), 30);
            let last = r.flush().expect("30 bytes left");
            assert_eq!(last.len(), 160);
            assert!(last[..30].iter().all(|&b| b == 7));
            assert!(last[30..].iter().all(|&b| b == silence), "{encoding}");
            assert!(r.flush().is_none());
        }
    }

    #[test]
    fn invalid_sizes_are_refused() {
        assert!(Rechunker::new(FrameSize::exact(0), Encoding::Mulaw).is_err());
        assert!(Rechunker::new(FrameSize::multiple(320, 3000), Encoding::Pcm16).is_err());
        assert!(Rechunker::new(FrameSize::exact(321), Encoding::Pcm16).is_err());
        assert!(Rechunker::new(FrameSize::exact(321), Encoding::Mulaw).is_ok());
    }

    #[test]
    fn clear_drops_the_remainder() {
        let mut r = Rechunker::new(FrameSize::exact(160), Encoding::Mulaw).expect("valid");
        assert_eq!(r.push(&[1; 100]).count(), 0);
        assert_eq!(r.clear(), 100);
        assert!(r.flush().is_none());
    }

    #[test]
    fn untaken_frames_are_kept_for_later() {
        let mut r = Rechunker::new(FrameSize::exact(2), Encoding::Mulaw).expect("valid");
        let _ = r.push(&[1, 2, 3, 4, 5]);
        let frames: Vec<Bytes> = r.push(&[6]).collect();
        assert_eq!(frames, [&[1, 2][..], &[3, 4], &[5, 6]]);
    }
}
