//! Run with `cargo run --example azure` (work in progress: issue 5).

fn main() {}
