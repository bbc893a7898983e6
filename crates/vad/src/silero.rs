//! Silero VAD v5, run in pure Rust by tract.
//!
//! tract 0.23 cannot analyse the standard `silero_vad.onnx` (its `If` nodes), but runs
//! the `silero_vad_openvino_16k.onnx` export from the same `silero-vad` 6.2.3 package,
//! which is 16 kHz only: phone audio is resampled 8 -> 16 kHz by
//! [`crate::TurnDetector`] (or by the caller) first. Checked against ONNX Runtime on the
//! standard model: probabilities agree within 1e-5 at 16 kHz.
//!
//! The model is loaded and optimised once ([`SileroModel::load`], about 20 ms) and
//! shared by every call; each [`SileroVad`] holds only the recurrent state (2 x 128
//! floats), 64 samples of context and tract's scratch state.
//!
//! Model layout: inputs `input [1, 576]` (64 samples of context from the previous
//! window, then 512 new samples, as floats in [-1, 1)), `state [2, 1, 128]` and
//! `sr` (i64 scalar, 16000); outputs the speech probability `[1, 1]` and the new
//! state. `cargo xtask models` fetches the file.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::detector::{Vad, check_frame};
use crate::error::VadError;

/// New samples per inference: 32 ms at 16 kHz.
const WINDOW: usize = 512;
/// Samples of the previous window prepended to each input.
const CONTEXT: usize = 64;
const STATE_LEN: usize = 2 * 128;
const SAMPLE_RATE: u32 = 16_000;

/// The file name of the model this module runs.
pub const MODEL_FILE: &str = "silero_vad_openvino_16k.onnx";

/// A loaded, optimised Silero model; cheap to clone and share between calls.
#[derive(Clone)]
pub struct SileroModel {
    plan: Arc<TypedRunnableModel>,
    /// What each model input is, in the model's order (tract may drop `sr` when
    /// optimising a 16 kHz-only export).
    inputs: Arc<[Input]>,
}

#[derive(Debug, Clone, Copy)]
enum Input {
    Audio,
    State,
    SampleRate,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel").finish_non_exhaustive()
    }
}

impl SileroModel {
    /// Loads `silero_vad_openvino_16k.onnx` (or a file with the same layout).
    ///
    /// # Errors
    /// [`VadError::Model`] when the file is missing or tract cannot run it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, VadError> {
        let path = path.as_ref();
        let error = |e: TractError| VadError::Model {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        if !path.is_file() {
            return Err(VadError::Model {
                path: path.to_owned(),
                reason: "no such file (fetch it with `cargo xtask models`)".into(),
            });
        }
        // No input facts: the model's own symbolic shapes are what tract can analyse.
        let mut model = tract_onnx::onnx().model_for_path(path).map_err(error)?;
        for output in 0..model.output_outlets().map_err(error)?.len() {
            model = model
                .with_output_fact(output, InferenceFact::default())
                .map_err(error)?;
        }
        let plan = model
            .into_optimized()
            .map_err(error)?
            .into_runnable()
            .map_err(error)?;
        let graph = plan.model();
        let inputs = graph
            .input_outlets()
            .map_err(error)?
            .iter()
            .map(|outlet| match graph.node(outlet.node).name.as_str() {
                "input" => Ok(Input::Audio),
                "state" => Ok(Input::State),
                "sr" => Ok(Input::SampleRate),
                other => Err(VadError::Model {
                    path: path.to_owned(),
                    reason: format!(
                        "unexpected model input {other:?}; expected input, state and sr"
                    ),
                }),
            })
            .collect::<Result<Arc<[Input]>, _>>()?;
        let model = Self { plan, inputs };
        // Fail now, not on the first call, if the file is some other model.
        SileroVad::new(&model)
            .speech_probability(&[0; WINDOW])
            .map_err(|e| VadError::Model {
                path: path.to_owned(),
                reason: format!("loaded, but does not run as Silero VAD: {e}"),
            })?;
        Ok(model)
    }
}

/// One stream's Silero detector: 16 kHz, 512-sample (32 ms) frames.
pub struct SileroVad {
    /// Holds its own reference to the shared plan.
    runner: TypedSimpleState,
    inputs: Arc<[Input]>,
    state: Tensor,
    input: Vec<f32>,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroVad").finish_non_exhaustive()
    }
}

impl SileroVad {
    /// A detector for one stream, sharing `model`.
    ///
    /// # Panics
    /// Never in practice: tract's state for a plan it built cannot fail to allocate
    /// except on memory exhaustion.
    pub fn new(model: &SileroModel) -> Self {
        let runner = TypedSimpleState::new(&model.plan)
            .unwrap_or_else(|e| panic!("tract state for a built plan: {e}"));
        Self {
            runner,
            inputs: Arc::clone(&model.inputs),
            state: Tensor::zero::<f32>(&[2, 1, 128]).unwrap_or_else(|_| Tensor::default()),
            input: vec![0.0; CONTEXT + WINDOW],
        }
    }

    fn infer(&mut self) -> TractResult<f32> {
        let mut values = TVec::with_capacity(self.inputs.len());
        for input in self.inputs.iter() {
            values.push(match input {
                Input::Audio => {
                    Tensor::from_shape(&[1, CONTEXT + WINDOW], &self.input)?.into_tvalue()
                }
                Input::State => self.state.clone().into_tvalue(),
                Input::SampleRate => tensor0(i64::from(SAMPLE_RATE)).into_tvalue(),
            });
        }
        let outputs = self.runner.run(values)?;
        let probability = *outputs[0]
            .to_plain_array_view::<f32>()?
            .iter()
            .next()
            .ok_or_else(|| TractError::msg("empty probability output"))?;
        let state = outputs[1].clone().into_tensor();
        if state.len() != STATE_LEN {
            return Err(TractError::msg(format!(
                "state output has {} values",
                state.len()
            )));
        }
        self.state = state;
        Ok(probability)
    }
}

impl Vad for SileroVad {
    fn name(&self) -> &'static str {
        "silero"
    }

    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    fn frame_len(&self) -> usize {
        WINDOW
    }

    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32, VadError> {
        check_frame("silero", WINDOW, frame)?;
        // Keep the last 64 samples of the previous window as context.
        self.input.copy_within(WINDOW.., 0);
        for (slot, &s) in self.input[CONTEXT..].iter_mut().zip(frame) {
            *slot = f32::from(s) / 32768.0;
        }
        self.infer().map_err(|e| VadError::Inference {
            detector: "silero",
            reason: format!("{e:#}"),
        })
    }

    fn reset(&mut self) {
        self.input.fill(0.0);
        if let Ok(zero) = Tensor::zero::<f32>(&[2, 1, 128]) {
            self.state = zero;
        }
    }
}
