//! Decoding, one module per family of dialects. Each decoder reads one message and
//! returns what it means; the [`crate::Session`] applies it (a decoder never changes
//! state, so a refused frame changes nothing).

pub(crate) mod plivo;
pub(crate) mod streams;
pub(crate) mod telnyx;
pub(crate) mod vonage;
pub(crate) mod voxline;

use bytes::Bytes;
use serde_json::{Map, Value};
use voxline_audio::{AudioFormat, Encoding};

use crate::error::DecodeError;
use crate::event::{AudioChunk, CallEvent, Decoded, Stop};
use crate::wire::{self, Ctx, Envelope, Nested, Obj, Scalar, View};

/// The sample rates a linear-PCM call may have.
pub(crate) const PCM_RATES: [u32; 3] = [8000, 16000, 24000];

/// Whether `rate` is one of [`PCM_RATES`].
pub(crate) fn valid_pcm_rate(rate: u64) -> Option<u32> {
    PCM_RATES.into_iter().find(|&r| u64::from(r) == rate)
}

/// How a dialect's media messages are laid out.
pub(crate) struct MediaKeys {
    /// Where the sequence number is and how to name it in errors.
    pub(crate) sequence: Sequence,
    /// Linear PCM arrives big-endian (Telnyx L16) and is swapped to little-endian.
    pub(crate) swap_pcm: bool,
}

/// Which top-level key holds the sequence number.
#[derive(Clone, Copy)]
pub(crate) enum Sequence {
    /// `sequence_number`, or `sequenceNumber` (Exotel).
    SnakeOrCamel,
    /// `sequence_number` only (Telnyx).
    Snake,
    /// `sequenceNumber` only (Smartflo, Twilio, Plivo).
    Camel,
}

/// Decodes a `media` message from the borrowed envelope: the hot path, with no
/// allocation but the payload's.
pub(crate) fn decode_media(
    ctx: &Ctx<'_>,
    env: &Envelope<'_>,
    keys: &MediaKeys,
    format: AudioFormat,
) -> Result<Decoded, DecodeError> {
    let (seq, seq_field): (Option<&Scalar<'_>>, &'static str) = match keys.sequence {
        Sequence::SnakeOrCamel => (
            env.sequence_number
                .as_ref()
                .filter(|s| !matches!(s, Scalar::Null))
                .or(env.sequence_number_camel.as_ref()),
            "sequence_number",
        ),
        Sequence::Snake => (env.sequence_number.as_ref(), "sequence_number"),
        Sequence::Camel => (env.sequence_number_camel.as_ref(), "sequenceNumber"),
    };
    let media = match &env.media {
        None => return Err(ctx.missing("media")),
        Some(Nested::Other(kind)) => {
            return Err(ctx.invalid("media", format!("expected an object, found {kind}")));
        }
        Some(Nested::Object(media)) => media,
    };
    // The other party's own audio (Twilio/Telnyx/Plivo `outbound` track on forked
    // streams) is not caller audio.
    if let Some(Scalar::Str(track)) = &media.track
        && matches!(track.as_ref(), "outbound" | "outbound_track")
    {
        return Ok(Decoded::Ignored {
            event: ctx.event.to_owned(),
        });
    }
    let sequence = wire::scalar_u64(ctx, seq, seq_field)?;
    let chunk = wire::scalar_u64(ctx, media.chunk.as_ref(), "media.chunk")?;
    let timestamp_ms = wire::scalar_u64(ctx, media.timestamp.as_ref(), "media.timestamp")?;
    let text = match media.payload.as_ref().map(View::of_scalar) {
        None | Some(View::Null) => return Err(ctx.missing("media.payload")),
        Some(v) => v
            .as_str()
            .map_err(|p| ctx.invalid("media.payload", p))?
            .unwrap_or_default(),
    };
    let mut payload = wire::decode_base64(ctx, text, "media.payload")?;
    if keys.swap_pcm && format.encoding == Encoding::Pcm16 {
        swap_pcm16(ctx, &mut payload)?;
    }
    Ok(Decoded::Event(CallEvent::Media(AudioChunk {
        payload: Bytes::from(payload),
        sequence,
        chunk,
        timestamp_ms,
    })))
}

/// Swaps big-endian 16-bit samples to little-endian (and back: the swap is its own
/// inverse).
pub(crate) fn swap_pcm16(ctx: &Ctx<'_>, bytes: &mut [u8]) -> Result<(), DecodeError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ctx.invalid(
            "media.payload",
            format!(
                "{} bytes of 16-bit audio is not a whole number of samples",
                bytes.len()
            ),
        ));
    }
    for pair in bytes.chunks_exact_mut(2) {
        pair.swap(0, 1);
    }
    Ok(())
}

/// Custom parameters given as an object, or as a string holding a JSON object (an
/// empty string is no parameters).
pub(crate) fn custom_object(
    ctx: &Ctx<'_>,
    value: Option<&Value>,
    field: &'static str,
) -> Result<Map<String, Value>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Map::new()),
        // A string: a JSON object, or `k=v` pairs (`&` or `;`); anything else is kept
        // whole under `raw`. Refusing the `start` would lose the call over a label.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Ok(pairs_or_raw(s)),
        },
        Some(other) => Err(ctx.invalid(
            field,
            format!(
                "expected an object or a JSON string, found {}",
                kind_of(other)
            ),
        )),
    }
}

/// `k=v` pairs separated by `&` or `;`, or `{"raw": s}` when `s` is not that.
fn pairs_or_raw(s: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for pair in s.split(['&', ';']).filter(|p| !p.trim().is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
            }
            _ => {
                let mut raw = Map::new();
                raw.insert("raw".to_owned(), Value::String(s.to_owned()));
                return raw;
            }
        }
    }
    map
}

/// `stop`: the carrier's reason, when it gives one.
pub(crate) fn decode_stop(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<Decoded, DecodeError> {
    let reason = match top.obj(ctx, &["stop"], "stop")? {
        Some(stop) => stop
            .str(ctx, &["reason"], "stop.reason")?
            .map(str::to_owned),
        None => None,
    };
    Ok(Decoded::Event(CallEvent::Stop(Stop { reason })))
}

/// `mark` with a `mark.name`.
pub(crate) fn decode_mark(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<Decoded, DecodeError> {
    let mark = top.required_obj(ctx, &["mark"], "mark")?;
    let name = mark
        .str(ctx, &["name"], "mark.name")?
        .ok_or_else(|| ctx.missing("mark.name"))?;
    Ok(Decoded::Event(CallEvent::Mark {
        name: name.to_owned(),
    }))
}

/// `dtmf` with `dtmf.digit` and an optional `dtmf.duration`.
pub(crate) fn decode_dtmf(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<Decoded, DecodeError> {
    let dtmf = top.required_obj(ctx, &["dtmf"], "dtmf")?;
    let dtmf = wire::dtmf(ctx, dtmf, "dtmf.digit", "dtmf.duration")?;
    Ok(Decoded::Event(CallEvent::Dtmf(dtmf)))
}

/// `encoding` names that mean G.711 mu-law.
pub(crate) fn is_mulaw(encoding: &str) -> bool {
    matches!(
        base_type(encoding).as_str(),
        "audio/x-mulaw" | "audio/mulaw" | "audio/pcmu" | "mulaw" | "ulaw" | "pcmu" | "mu-law"
    )
}

/// `encoding` names that mean G.711 A-law.
pub(crate) fn is_alaw(encoding: &str) -> bool {
    matches!(
        base_type(encoding).as_str(),
        "audio/x-alaw" | "audio/alaw" | "audio/pcma" | "alaw" | "pcma" | "a-law"
    )
}

/// `encoding` names that mean 16-bit linear PCM.
pub(crate) fn is_l16(encoding: &str) -> bool {
    matches!(
        base_type(encoding).as_str(),
        "audio/x-l16" | "audio/l16" | "l16" | "audio/x-raw" | "raw" | "raw/slin" | "slin"
    )
}

/// The media type without parameters, lowercased: `audio/x-l16;rate=8000` ->
/// `audio/x-l16`.
pub(crate) fn base_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The `rate=` parameter of a content type such as `audio/l16;rate=16000`.
pub(crate) fn rate_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("rate")
            .then_some(value.trim())
    })
}

/// The format of an encoding known to be linear PCM at a validated rate.
pub(crate) fn pcm16(rate: u32) -> AudioFormat {
    AudioFormat::new(Encoding::Pcm16, rate)
}

/// How errors name a JSON value's type: `a string`, `an object`, ...
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
