//! Deepgram live streaming speech-to-text for Voxline (WebSocket /v1/listen).
//!
//! Work in progress: see issue 5.
