//! Run with `cargo run --example transcode`.
fn main() {}
