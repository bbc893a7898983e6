//! The deepgram emulator (work in progress: issue 5).
