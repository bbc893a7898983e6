//! The OpenAI Realtime emulator (work in progress: issue 7).
