//! The openai emulator (work in progress: issue 5).
