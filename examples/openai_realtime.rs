//! Run with `cargo run --example openai_realtime` (work in progress: issue 7).

fn main() {}
