//! The Gemini Live emulator (work in progress: issue 7).
