//! Which dialect a connection speaks: from its URL, then from its first frames.

use crate::event::{Dialect, WsFrame};

/// The dialect a connection URL names, if any: a path segment naming a dialect
/// (`/twilio`, `/exotel/...`, `/smartflo/audio`), `?dialect=...`, or Exotel's
/// `sample-rate` query parameter.
pub fn from_url(path: &str, query: Option<&str>) -> Option<Dialect> {
    let _ = (path, query);
    unimplemented!()
}

/// What the first frames say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// The frames so far identify the dialect.
    Decided(Dialect),
    /// Not yet: keep the frames and show the detector the next one.
    NeedMore,
    /// The frames match no dialect.
    Unknown,
}

/// Identifies a dialect from a connection's first frames (at most a few: `connected`
/// then `start`).
#[derive(Debug, Default)]
pub struct Detector {
    seen: usize,
}

impl Detector {
    /// A detector for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at the next frame.
    pub fn observe(&mut self, frame: &WsFrame) -> Detection {
        let _ = frame;
        self.seen += 1;
        unimplemented!()
    }
}
