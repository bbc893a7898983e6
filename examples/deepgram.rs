//! Run with `cargo run --example deepgram` (work in progress: issue 5).

fn main() {}
