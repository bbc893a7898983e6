//! Run with `cargo run --example openai` (work in progress: issue 5).

fn main() {}
