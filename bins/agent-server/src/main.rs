//! Voxline's voice agent server (being built for issue 6).

fn main() {}
