//! Voxline bridge: phone calls joined to a realtime speech model (being built for issue 7).

fn main() {}
