//! Run with `cargo run --example elevenlabs` (work in progress: issue 5).

fn main() {}
