//! The elevenlabs emulator (work in progress: issue 5).
