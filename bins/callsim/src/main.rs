//! callsim.
fn main() {}
