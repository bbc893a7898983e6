//! The resamplers compared with ours, behind one interface: rubato 5 (FFT, sinc and
//! polynomial) and dasp 0.11 (sinc and linear). Shared by the `resampler_comparison`
//! bench and the `resampler_report` example, so speed and quality are measured on the
//! same configurations.
//!
//! Every contender is fed the same 16-bit signal and its output is rounded to 16 bits,
//! as on the phone path; rubato is given fixed 20 ms input chunks, the way carrier
//! audio arrives.

#![allow(dead_code, unreachable_pub, missing_docs)]

use audioadapter_buffers::direct::InterleavedSlice;
use dasp::{Signal, interpolate::linear::Linear, interpolate::sinc::Sinc, ring_buffer, signal};
use rubato::{
    Async, Fft, FixedAsync, FixedSync, PolynomialDegree, Resampler as _,
    SincInterpolationParameters, WindowFunction,
};
use voxline_audio::Resampler;

/// Which implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Voxline,
    RubatoFft,
    /// rubato's FFT resampler with its chunk cut until its delay is at most 2 ms.
    RubatoFftLowLatency,
    RubatoSinc(usize),
    RubatoPolyCubic,
    DaspSinc64,
    DaspLinear,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Voxline,
        Kind::RubatoFft,
        Kind::RubatoFftLowLatency,
        Kind::RubatoSinc(256),
        Kind::RubatoSinc(64),
        Kind::RubatoSinc(32),
        Kind::RubatoPolyCubic,
        Kind::DaspSinc64,
        Kind::DaspLinear,
    ];

    pub fn name(self) -> String {
        match self {
            Kind::Voxline => "voxline polyphase FIR".into(),
            Kind::RubatoFft => "rubato Fft (20 ms chunks)".into(),
            Kind::RubatoFftLowLatency => "rubato Fft (chunk cut to <= 2 ms delay)".into(),
            Kind::RubatoSinc(len) => format!("rubato Async sinc (sinc_len {len})"),
            Kind::RubatoPolyCubic => "rubato Async poly (cubic)".into(),
            Kind::DaspSinc64 => "dasp Sinc (64 frames)".into(),
            Kind::DaspLinear => "dasp Linear".into(),
        }
    }

    /// Whether it can take audio chunk by chunk as it arrives.
    pub fn streams(self) -> bool {
        !matches!(self, Kind::DaspSinc64 | Kind::DaspLinear)
    }
}

/// A ready-to-run conversion.
pub enum Contender {
    Voxline(Resampler),
    /// The resampler, its output buffer, and input waiting for a whole chunk.
    Rubato(Box<dyn rubato::Resampler<f32>>, Vec<f32>, Vec<f32>),
    Dasp(Kind, u32, u32),
}

pub fn chunk_len(rate: u32) -> usize {
    rate as usize / 50 // 20 ms
}

impl Contender {
    pub fn new(kind: Kind, from: u32, to: u32) -> Self {
        let chunk = chunk_len(from);
        let ratio = f64::from(to) / f64::from(from);
        let rubato = |r: Box<dyn rubato::Resampler<f32>>| {
            let out = vec![0.0; r.output_frames_max()];
            Contender::Rubato(r, out, Vec::with_capacity(chunk))
        };
        match kind {
            Kind::Voxline => Contender::Voxline(Resampler::new(from, to).expect("supported")),
            Kind::RubatoFft => rubato(Box::new(
                Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
                    .expect("fft"),
            )),
            Kind::RubatoFftLowLatency => {
                let fft = (1..=chunk)
                    .rev()
                    .filter_map(|c| {
                        Fft::<f32>::new(from as usize, to as usize, c, 1, FixedSync::Input).ok()
                    })
                    .find(|r| r.output_delay() as u64 * 1000 <= 2 * u64::from(to))
                    .expect("some chunk size meets 2 ms");
                rubato(Box::new(fft))
            }
            Kind::RubatoSinc(len) => {
                let params = SincInterpolationParameters::new(len, WindowFunction::BlackmanHarris2);
                rubato(Box::new(
                    Async::<f32>::new_sinc(ratio, 1.0, &params, chunk, 1, FixedAsync::Input)
                        .expect("sinc"),
                ))
            }
            Kind::RubatoPolyCubic => rubato(Box::new(
                Async::<f32>::new_poly(
                    ratio,
                    1.0,
                    PolynomialDegree::Cubic,
                    chunk,
                    1,
                    FixedAsync::Input,
                )
                .expect("poly"),
            )),
            Kind::DaspSinc64 | Kind::DaspLinear => Contender::Dasp(kind, from, to),
        }
    }

    /// Processes one 20 ms chunk (streaming contenders only), appending raw output.
    pub fn process_chunk(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match self {
            Contender::Voxline(r) => r.process(input, out),
            Contender::Rubato(r, buf, pending) => {
                // rubato takes exactly `input_frames_next` frames per call; keep the rest.
                pending.extend(input.iter().map(|&s| f32::from(s)));
                let mut used = 0;
                while pending.len() - used >= r.input_frames_next() {
                    let need = r.input_frames_next();
                    let adapter = InterleavedSlice::new(&pending[used..used + need], 1, need)
                        .expect("adapter");
                    let len = buf.len();
                    let mut output = InterleavedSlice::new_mut(buf, 1, len).expect("adapter");
                    let (_, produced) = r
                        .process_into_buffer(&adapter, &mut output, None)
                        .expect("process");
                    out.extend(buf[..produced].iter().map(|&v| round(v)));
                    used += need;
                }
                pending.drain(..used);
            }
            Contender::Dasp(..) => {
                panic!("dasp's converter pulls from a whole signal; it cannot take chunks")
            }
        }
    }

    /// The filter delay in output samples that a streaming caller waits for.
    pub fn delay_out(&self) -> usize {
        match self {
            Contender::Voxline(_) => 0, // output is aligned: the delay is held back internally
            Contender::Rubato(r, ..) => r.output_delay(),
            Contender::Dasp(..) => 0,
        }
    }

    /// Resamples a whole signal, in 20 ms chunks where the contender streams, and
    /// returns output aligned with the input, `ceil(len * to / from)` samples long.
    pub fn run(&mut self, input: &[i16], from: u32, to: u32) -> Vec<i16> {
        let expected = (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
        let chunk = chunk_len(from);
        match self {
            Contender::Voxline(r) => {
                let mut out = Vec::with_capacity(expected);
                for c in input.chunks(chunk) {
                    r.process(c, &mut out);
                }
                r.flush(&mut out);
                out
            }
            Contender::Rubato(..) => {
                let delay = self.delay_out();
                let mut out = Vec::with_capacity(expected + delay + chunk * 4);
                let mut padded = input.to_vec();
                padded.resize(input.len().div_ceil(chunk) * chunk, 0);
                for c in padded.chunks(chunk) {
                    self.process_chunk(c, &mut out);
                }
                let silence = vec![0i16; chunk];
                while out.len() < expected + delay {
                    self.process_chunk(&silence, &mut out);
                }
                out.drain(..delay);
                out.truncate(expected);
                out
            }
            Contender::Dasp(kind, ..) => {
                let frames = input
                    .iter()
                    .map(|&s| f64::from(s))
                    .chain(std::iter::repeat(0.0));
                let source = signal::from_iter(frames);
                let raw: Vec<f64> = match kind {
                    Kind::DaspSinc64 => {
                        let sinc = Sinc::new(ring_buffer::Fixed::from([0.0f64; 64]));
                        source
                            .from_hz_to_hz(sinc, f64::from(from), f64::from(to))
                            .take(expected + 64 * to as usize / from as usize)
                            .collect()
                    }
                    _ => {
                        let mut source = source;
                        let (left, right) = (source.next(), source.next());
                        source
                            .from_hz_to_hz(Linear::new(left, right), f64::from(from), f64::from(to))
                            .take(expected)
                            .collect()
                    }
                };
                let delay = if *kind == Kind::DaspSinc64 {
                    dasp_sinc_delay(from, to)
                } else {
                    0
                };
                let mut out: Vec<i16> = raw
                    .iter()
                    .skip(delay)
                    .take(expected)
                    .map(|&v| round(v as f32))
                    .collect();
                out.resize(expected, 0);
                out
            }
        }
    }
}

/// Where dasp's sinc interpolator puts an impulse, in output samples: its delay,
/// measured rather than assumed.
pub fn dasp_sinc_delay(from: u32, to: u32) -> usize {
    let impulse = std::iter::once(10_000.0f64).chain(std::iter::repeat(0.0));
    let sinc = Sinc::new(ring_buffer::Fixed::from([0.0f64; 64]));
    let response: Vec<f64> = signal::from_iter(impulse)
        .from_hz_to_hz(sinc, f64::from(from), f64::from(to))
        .take(256 * to as usize / from as usize)
        .collect();
    response
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map_or(0, |(i, _)| i)
}

fn round(v: f32) -> i16 {
    v.round().clamp(-32768.0, 32767.0) as i16
}
