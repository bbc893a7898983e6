//! ITU-T G.711 mu-law and A-law, table-driven.
//!
//! Decoding is one lookup in a 256-entry table; encoding is one lookup in a table
//! indexed by the top 14 (mu-law) or 13 (A-law) bits of the sample, which is all the
//! precision G.711 keeps. The tables are computed at compile time from the segment
//! arithmetic of the reference implementation (the Sun/CCITT code that CPython's
//! `audioop` and most telephony stacks share), and the tests check them bit for bit
//! against vectors produced by `audioop` for all 256 codes and all 65,536 samples.
//!
//! ```
//! use voxline_audio::g711::mulaw;
//!
//! let mut pcm = Vec::new();
//! mulaw::decode(&[0xFF, 0x7F, 0x00], &mut pcm);
//! assert_eq!(pcm, [0, 0, -32124]);
//! assert_eq!(mulaw::encode_sample(0), 0xFF);
//! ```

/// The tables and the public API of one G.711 law, from its `decode_code` and
/// `encode_reduced` (which takes the sample shifted right by `$shift` bits).
macro_rules! codec_api {
    ($name:literal, $shift:literal) => {
        const DECODE: [i16; 256] = {
            let mut table = [0i16; 256];
            let mut code = 0;
            while code < 256 {
                table[code] = decode_code(code as u8);
                code += 1;
            }
            table
        };

        /// Indexed by `(sample >> SHIFT) + OFFSET`.
        const OFFSET: i32 = 1 << (15 - $shift);
        const ENCODE: [u8; 1 << (16 - $shift)] = {
            let mut table = [0u8; 1 << (16 - $shift)];
            let mut i = 0;
            while i < table.len() {
                table[i] = encode_reduced(i as i32 - OFFSET);
                i += 1;
            }
            table
        };

        #[doc = concat!("Decodes one ", $name, " code byte to a 16-bit linear sample.")]
        #[inline]
        pub fn decode_sample(code: u8) -> i16 {
            DECODE[code as usize]
        }

        #[doc = concat!("Encodes one 16-bit linear sample as ", $name, " (the low ", $shift, " bits are below its precision).")]
        #[inline]
        pub fn encode_sample(sample: i16) -> u8 {
            ENCODE[((i32::from(sample) >> $shift) + OFFSET) as usize]
        }

        /// Decodes `codes`, appending the samples to `out`.
        pub fn decode(codes: &[u8], out: &mut Vec<i16>) {
            out.extend(codes.iter().map(|&c| decode_sample(c)));
        }

        /// Encodes `samples`, appending the code bytes to `out`.
        pub fn encode(samples: &[i16], out: &mut Vec<u8>) {
            out.extend(samples.iter().map(|&s| encode_sample(s)));
        }

        /// Decodes into a slice of the same length.
        ///
        /// # Panics
        /// When `out.len() != codes.len()`.
        pub fn decode_into(codes: &[u8], out: &mut [i16]) {
            assert_eq!(codes.len(), out.len(), concat!($name, " decode_into: length mismatch"));
            for (o, &c) in out.iter_mut().zip(codes) {
                *o = decode_sample(c);
            }
        }

        /// Encodes into a slice of the same length.
        ///
        /// # Panics
        /// When `out.len() != samples.len()`.
        pub fn encode_into(samples: &[i16], out: &mut [u8]) {
            assert_eq!(samples.len(), out.len(), concat!($name, " encode_into: length mismatch"));
            for (o, &s) in out.iter_mut().zip(samples) {
                *o = encode_sample(s);
            }
        }
    };
}

/// G.711 mu-law (North America, Japan; Twilio, Smartflo and Plivo default).
pub mod mulaw {
    /// Magnitudes above this are clipped before encoding (14-bit domain).
    const CLIP: i32 = 8159;
    /// The bias added before segment search (0x84 >> 2 in the 14-bit domain).
    const BIAS: i32 = 0x84 >> 2;

    const fn encode_reduced(sample: i32) -> u8 {
        let (magnitude, mask) = if sample < 0 {
            (-sample, 0x7F)
        } else {
            (sample, 0xFF)
        };
        let magnitude = if magnitude > CLIP { CLIP } else { magnitude } + BIAS;
        // Segment: the first s with magnitude <= (64 << s) - 1.
        let mut segment = 0;
        while segment < 8 && magnitude > (64 << segment) - 1 {
            segment += 1;
        }
        if segment >= 8 {
            return 0x7F ^ mask;
        }
        let code = ((segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)) as u8;
        code ^ mask
    }

    const fn decode_code(code: u8) -> i16 {
        let inverted = !code;
        let t = (((inverted & 0x0F) as i32) << 3) + 0x84;
        let t = t << ((inverted & 0x70) >> 4);
        (if inverted & 0x80 != 0 {
            0x84 - t
        } else {
            t - 0x84
        }) as i16
    }

    codec_api!("mu-law", 2);
}

/// G.711 A-law (Europe and most of the world's E1 trunks).
pub mod alaw {
    const fn encode_reduced(sample: i32) -> u8 {
        let (magnitude, mask) = if sample >= 0 {
            (sample, 0xD5)
        } else {
            (-sample - 1, 0x55)
        };
        // Segment: the first s with magnitude <= (32 << s) - 1.
        let mut segment = 0;
        while segment < 8 && magnitude > (32 << segment) - 1 {
            segment += 1;
        }
        if segment >= 8 {
            return 0x7F ^ mask;
        }
        let shift = if segment < 2 { 1 } else { segment };
        let code = ((segment << 4) | ((magnitude >> shift) & 0x0F)) as u8;
        code ^ mask
    }

    const fn decode_code(code: u8) -> i16 {
        let a = code ^ 0x55;
        let mut t = ((a & 0x0F) as i32) << 4;
        let segment = ((a & 0x70) >> 4) as i32;
        match segment {
            0 => t += 8,
            1 => t += 0x108,
            _ => t = (t + 0x108) << (segment - 1),
        }
        (if a & 0x80 != 0 { t } else { -t }) as i16
    }

    codec_api!("A-law", 3);
}
