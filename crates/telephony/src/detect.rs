//! Which dialect a connection speaks: from its URL, then from its first frames.
//!
//! ```
//! use voxline_telephony::Dialect;
//! use voxline_telephony::detect::{self, Detection, Detector};
//! use voxline_telephony::WsFrame;
//!
//! assert_eq!(detect::from_url("/twilio/media", None), Some(Dialect::Twilio));
//! assert_eq!(detect::from_url("/ws", Some("sample-rate=16000")), Some(Dialect::Exotel));
//! assert_eq!(detect::from_url("/media", None), None);
//! assert_eq!(detect::from_url("/ws/flexible", Some("text_input=true")), Some(Dialect::Voxline));
//! assert_eq!(detect::url_sample_rate("sample-rate=16000"), Some(16000));
//!
//! let mut detector = Detector::new();
//! let connected = WsFrame::Text(r#"{"event":"connected"}"#.into());
//! assert_eq!(detector.observe(&connected), Detection::NeedMore);
//! let start = WsFrame::Text(r#"{"event":"start","start":{"stream_sid":"MZ1","call_sid":"CA1"}}"#.into());
//! assert_eq!(detector.observe(&start), Detection::Decided(Dialect::Exotel));
//! ```

use serde_json::{Map, Value};

use crate::dialect::is_mulaw;
use crate::event::{Dialect, WsFrame};

/// How many undecided frames the [`Detector`] looks at before it gives up.
pub const MAX_UNDECIDED_FRAMES: usize = 4;

/// The dialect a connection URL names, if any: a path segment naming a dialect
/// (`/twilio`, `/exotel/...`, `/smartflo/audio`, `/ws/flexible`), `?dialect=...`, or
/// Exotel's `sample-rate` query parameter.
///
/// In order: a `dialect=` or `provider=` query parameter naming a dialect; the first
/// path segment that is a dialect's name (any case), or `flexible` for Voxline; a
/// `sample-rate` or `sample_rate` query parameter, which only Exotel puts on its URLs.
/// Generic paths (`/`, `/media`, `/ws`, `/ws/stream/{call_sid}`) name none.
pub fn from_url(path: &str, query: Option<&str>) -> Option<Dialect> {
    let pairs = || query_pairs(query.unwrap_or_default());
    if let Some(dialect) = pairs()
        .filter(|(key, _)| matches!(*key, "dialect" | "provider"))
        .find_map(|(_, value)| value.parse::<Dialect>().ok())
    {
        return Some(dialect);
    }
    if let Some(dialect) = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .find_map(path_dialect)
    {
        return Some(dialect);
    }
    pairs()
        .any(|(key, _)| is_sample_rate_key(key))
        .then_some(Dialect::Exotel)
}

/// The sample rate a connection URL's query asks for (Exotel's `sample-rate=16000`,
/// also spelled `sample_rate`), when it is a number; for
/// [`crate::SessionConfig::url_sample_rate`], which ignores rates other than 8000,
/// 16000 and 24000.
pub fn url_sample_rate(query: &str) -> Option<u32> {
    query_pairs(query)
        .filter(|(key, _)| is_sample_rate_key(key))
        .find_map(|(_, value)| value.trim().parse().ok())
}

/// A path segment naming a dialect: its name, or `flexible` (Voxline's browser and app
/// endpoint, `/ws/flexible`).
fn path_dialect(segment: &str) -> Option<Dialect> {
    if segment.eq_ignore_ascii_case("flexible") {
        return Some(Dialect::Voxline);
    }
    segment.parse().ok()
}

fn is_sample_rate_key(key: &str) -> bool {
    matches!(key, "sample-rate" | "sample_rate")
}

/// `key=value` pairs of a query string (a leading `?` is skipped; no decoding).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
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
///
/// - a binary frame or a `websocket:*` event: Vonage;
/// - `connected` with `protocol`: Twilio; with `version` only: Telnyx; bare
///   `connected` (Exotel and Smartflo both send it): need more;
/// - `start` with a top-level `stream_id` or `start.call_control_id`: Telnyx;
///   `start.callId` or `start.streamId`: Plivo; snake_case keys (`stream_sid`,
///   `call_sid`, `sequence_number`): Exotel; camelCase with `start.tracks`: Twilio;
///   camelCase whose `mediaFormat.encoding` is linear PCM (not mu-law): Exotel (its
///   camelCase variant); other camelCase: Smartflo; a `start` with none of these:
///   unknown;
/// - `media` first, by its keys: `stream_id` Telnyx, `streamId` Plivo, `stream_sid`
///   or `sequence_number` Exotel, camelCase with `media.track` Twilio, other
///   camelCase Smartflo;
/// - `playedStream`, `played`, `clearedAudio`: Plivo;
/// - Voxline: a `start` with none of the carriers' keys (and no nested `start`
///   object) but a top-level `modes` or `sample_rate`, or a `text_message`.
///
/// Text that is not a JSON object is unknown at once; after
/// [`MAX_UNDECIDED_FRAMES`] undecided frames the detector gives up. Once it has
/// answered `Decided` or `Unknown`, it gives the same answer for every later frame.
#[derive(Debug, Default)]
pub struct Detector {
    seen: usize,
    verdict: Option<Detection>,
}

impl Detector {
    /// A detector for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at the next frame.
    pub fn observe(&mut self, frame: &WsFrame) -> Detection {
        if let Some(verdict) = self.verdict {
            return verdict;
        }
        self.seen += 1;
        let detection = match classify(frame) {
            Detection::NeedMore if self.seen >= MAX_UNDECIDED_FRAMES => Detection::Unknown,
            other => other,
        };
        if detection != Detection::NeedMore {
            self.verdict = Some(detection);
        }
        detection
    }
}

fn classify(frame: &WsFrame) -> Detection {
    let text = match frame {
        WsFrame::Binary(_) => return Detection::Decided(Dialect::Vonage),
        WsFrame::Close { .. } => return Detection::Unknown,
        WsFrame::Text(text) => text,
    };
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(text) else {
        return Detection::Unknown;
    };
    let Some(event) = top.get("event").and_then(Value::as_str) else {
        return Detection::NeedMore;
    };
    match event {
        e if e.starts_with("websocket:") => Detection::Decided(Dialect::Vonage),
        "connected" => {
            if top.contains_key("protocol") {
                Detection::Decided(Dialect::Twilio)
            } else if top.contains_key("version") {
                Detection::Decided(Dialect::Telnyx)
            } else {
                Detection::NeedMore
            }
        }
        "start" => classify_start(&top),
        "media" => classify_media(&top),
        "playedStream" | "played" | "clearedAudio" => Detection::Decided(Dialect::Plivo),
        "text_message" => Detection::Decided(Dialect::Voxline),
        _ => Detection::NeedMore,
    }
}

fn has_any(map: &Map<String, Value>, keys: &[&str]) -> bool {
    keys.iter().any(|k| map.contains_key(*k))
}

const SNAKE_TOP: [&str; 3] = ["stream_sid", "call_sid", "sequence_number"];
const SNAKE_START: [&str; 5] = [
    "stream_sid",
    "call_sid",
    "account_sid",
    "media_format",
    "custom_parameters",
];
const CAMEL_TOP: [&str; 3] = ["streamSid", "callSid", "sequenceNumber"];
const CAMEL_START: [&str; 5] = [
    "streamSid",
    "callSid",
    "accountSid",
    "mediaFormat",
    "customParameters",
];

fn classify_start(top: &Map<String, Value>) -> Detection {
    let empty = Map::new();
    let start = top
        .get("start")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if top.contains_key("stream_id") || start.contains_key("call_control_id") {
        return Detection::Decided(Dialect::Telnyx);
    }
    if has_any(start, &["callId", "streamId"]) {
        return Detection::Decided(Dialect::Plivo);
    }
    if has_any(top, &SNAKE_TOP) || has_any(start, &SNAKE_START) {
        return Detection::Decided(Dialect::Exotel);
    }
    if has_any(top, &CAMEL_TOP) || has_any(start, &CAMEL_START) {
        if start.contains_key("tracks") {
            return Detection::Decided(Dialect::Twilio);
        }
        let encoding = start
            .get("mediaFormat")
            .and_then(|f| f.get("encoding"))
            .and_then(Value::as_str);
        if encoding.is_some_and(|e| !is_mulaw(e)) {
            return Detection::Decided(Dialect::Exotel);
        }
        return Detection::Decided(Dialect::Smartflo);
    }
    // Voxline's start is flat: no `start` object, but its own format or modes keys.
    if !top.contains_key("start") && has_any(top, &["modes", "sample_rate"]) {
        return Detection::Decided(Dialect::Voxline);
    }
    Detection::Unknown
}

fn classify_media(top: &Map<String, Value>) -> Detection {
    if top.contains_key("stream_id") {
        Detection::Decided(Dialect::Telnyx)
    } else if top.contains_key("streamId") {
        Detection::Decided(Dialect::Plivo)
    } else if has_any(top, &["stream_sid", "sequence_number"]) {
        Detection::Decided(Dialect::Exotel)
    } else if has_any(top, &["streamSid", "sequenceNumber"]) {
        let track = top.get("media").and_then(|m| m.get("track")).is_some();
        Detection::Decided(if track {
            Dialect::Twilio
        } else {
            Dialect::Smartflo
        })
    } else {
        Detection::NeedMore
    }
}
