//! ElevenLabs text-to-speech for Voxline: WebSocket multi-context stream input, HTTP streaming fallback.
//!
//! Work in progress: see issue 5.
