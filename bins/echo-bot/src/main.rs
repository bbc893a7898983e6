//! The echo bot.
fn main() {}
