//! Gemini Live (BidiGenerateContent) realtime speech-to-speech for Voxline.
//!
//! Work in progress: see issue 7.
