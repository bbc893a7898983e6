//! OpenAI and OpenAI-compatible APIs for Voxline: streamed chat completions with tools, batch transcription, speech.
//!
//! Work in progress: see issue 5.
