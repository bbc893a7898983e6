//! Run with `cargo run --example gemini_live` (work in progress: issue 7).

fn main() {}
