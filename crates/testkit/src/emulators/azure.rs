//! The azure emulator (work in progress: issue 5).
