//! Voxline's own protocol for browser and app clients: JSON text frames with an
//! `event` field, audio as base64 in `media` or as binary frames, text messages and
//! mode changes. The client must send `start` first.

use bytes::Bytes;
use serde_json::{Map, Value};
use voxline_audio::{AudioFormat, Encoding};

use super::kind_of;
use crate::error::DecodeError;
use crate::event::{AudioChunk, CallEvent, CallInfo, Decoded, Dialect, ModeChange, Stop};
use crate::session::SessionConfig;
use crate::wire::{self, Ctx, Envelope, Obj, View};

/// The format when `start` names none: PCM16 at 16 kHz.
pub(crate) const DEFAULT_FORMAT: AudioFormat = AudioFormat::PCM16_16K;

/// The rates a PCM16 client may stream at.
const PCM_RATES: [u32; 4] = [8000, 16000, 24000, 48000];

/// The four channels, in the order messages list them.
const MODES: [&str; 4] = ["voice_input", "text_input", "voice_output", "text_output"];

/// The events this dialect knows; anything else is `Ignored`, even before `start`.
const KNOWN: [&str; 7] = [
    "start",
    "media",
    "text_message",
    "mode_change",
    "dtmf",
    "mark",
    "stop",
];

/// A binary frame: raw audio in the call's format, once the call has started.
pub(crate) fn decode_binary(started: bool, bytes: &Bytes) -> Result<Decoded, DecodeError> {
    if !started {
        return Err(DecodeError::BeforeStart {
            dialect: Dialect::Voxline,
            event: "media".to_owned(),
        });
    }
    Ok(media(bytes.clone()))
}

/// A text frame: `media` through the borrowed envelope, the rest through a parsed
/// object.
pub(crate) fn decode_text(
    config: &SessionConfig,
    started: bool,
    text: &str,
) -> Result<Decoded, DecodeError> {
    let dialect = Dialect::Voxline;
    if !text.trim_start().starts_with('{') {
        return Err(wire::parse_object(dialect, text)
            .err()
            .unwrap_or_else(|| wire::json_error_text(dialect, "expected a JSON object")));
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| wire::json_error(dialect, &e))?;
    let event = wire::event_name(dialect, envelope.event.as_ref().map(View::of_scalar))?;
    let ctx = Ctx { dialect, event };
    if !KNOWN.contains(&event) {
        return Ok(Decoded::Ignored {
            event: event.to_owned(),
        });
    }
    if event != "start" && !started {
        return Err(DecodeError::BeforeStart {
            dialect,
            event: event.to_owned(),
        });
    }
    if event == "media" {
        let audio = match envelope.audio.as_ref().map(View::of_scalar) {
            None | Some(View::Null) => return Err(ctx.missing("audio")),
            Some(v) => v
                .as_str()
                .map_err(|p| ctx.invalid("audio", p))?
                .unwrap_or_default(),
        };
        let payload = wire::decode_base64(&ctx, audio, "audio")?;
        return Ok(media(Bytes::from(payload)));
    }
    let map = wire::parse_object(dialect, text)?;
    let top = Obj { map: &map };
    match event {
        "start" => {
            decode_start(config, &ctx, top).map(|info| Decoded::Event(CallEvent::Start(info)))
        }
        "text_message" => {
            let text = top
                .str(&ctx, &["text"], "text")?
                .ok_or_else(|| ctx.missing("text"))?;
            if text.is_empty() {
                return Err(ctx.invalid("text", "is empty"));
            }
            Ok(Decoded::Event(CallEvent::Text {
                text: text.to_owned(),
            }))
        }
        "mode_change" => {
            let [voice_input, text_input, voice_output, text_output] = mode_fields(
                &ctx,
                top,
                ["voice_input", "text_input", "voice_output", "text_output"],
            )?;
            Ok(Decoded::Event(CallEvent::ModeChange(ModeChange {
                voice_input,
                text_input,
                voice_output,
                text_output,
            })))
        }
        "dtmf" => {
            let dtmf = wire::dtmf(&ctx, top, "digit", "duration")?;
            Ok(Decoded::Event(CallEvent::Dtmf(dtmf)))
        }
        "mark" => {
            let name = top
                .str(&ctx, &["name"], "name")?
                .ok_or_else(|| ctx.missing("name"))?;
            Ok(Decoded::Event(CallEvent::Mark {
                name: name.to_owned(),
            }))
        }
        "stop" => {
            let reason = top.str(&ctx, &["reason"], "reason")?.map(str::to_owned);
            Ok(Decoded::Event(CallEvent::Stop(Stop { reason })))
        }
        other => Ok(Decoded::Ignored {
            event: other.to_owned(),
        }),
    }
}

fn media(payload: Bytes) -> Decoded {
    Decoded::Event(CallEvent::Media(AudioChunk {
        payload,
        sequence: None,
        chunk: None,
        timestamp_ms: None,
    }))
}

/// The four optional booleans of `obj`; `fields` are the paths errors name.
fn mode_fields(
    ctx: &Ctx<'_>,
    obj: Obj<'_>,
    fields: [&'static str; 4],
) -> Result<[Option<bool>; 4], DecodeError> {
    let mut out = [None; 4];
    for ((slot, key), field) in out.iter_mut().zip(MODES).zip(fields) {
        *slot = match obj.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(ctx.invalid(
                    field,
                    format!("expected true or false, found {}", kind_of(other)),
                ));
            }
        };
    }
    Ok(out)
}

fn decode_start(
    config: &SessionConfig,
    ctx: &Ctx<'_>,
    top: Obj<'_>,
) -> Result<CallInfo, DecodeError> {
    let call_id = top
        .id(ctx, &["call_id"], "call_id")?
        .unwrap_or(&config.fallback_call_id)
        .to_owned();
    let format = start_format(ctx, top)?;
    let modes = match top.obj(ctx, &["modes"], "modes")? {
        Some(modes) => mode_fields(
            ctx,
            modes,
            [
                "modes.voice_input",
                "modes.text_input",
                "modes.voice_output",
                "modes.text_output",
            ],
        )?,
        None => [None; 4],
    };
    let mut custom = config
        .url_query
        .as_deref()
        .map(query_map)
        .unwrap_or_default();
    match top.map.get("custom") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => custom.extend(map.iter().map(|(k, v)| (k.clone(), v.clone()))),
        Some(other) => {
            return Err(ctx.invalid(
                "custom",
                format!("expected an object, found {}", kind_of(other)),
            ));
        }
    }
    for (key, value) in MODES.iter().zip(modes) {
        if let Some(on) = value {
            custom.insert((*key).to_owned(), Value::Bool(on));
        }
    }
    Ok(CallInfo {
        dialect: Dialect::Voxline,
        call_id,
        stream_id: None,
        from: None,
        to: None,
        account: None,
        direction: None,
        custom,
        format,
    })
}

/// `encoding` (`pcm16`, `mulaw`, `alaw`; PCM16 when absent) at `sample_rate` (PCM16:
/// 8000, 16000, 24000 or 48000, default 16000; G.711: 8000 only, the default).
fn start_format(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<AudioFormat, DecodeError> {
    let encoding = match top.str(ctx, &["encoding"], "encoding")? {
        None => Encoding::Pcm16,
        Some(name) if name.eq_ignore_ascii_case("pcm16") => Encoding::Pcm16,
        Some(name) if name.eq_ignore_ascii_case("mulaw") => Encoding::Mulaw,
        Some(name) if name.eq_ignore_ascii_case("alaw") => Encoding::Alaw,
        Some(name) => {
            return Err(ctx.invalid(
                "encoding",
                format!(
                    "unsupported encoding {:?}: expected pcm16, mulaw or alaw",
                    wire::clip(name)
                ),
            ));
        }
    };
    let rate = top.u64(ctx, &["sample_rate"], "sample_rate")?;
    let (allowed, default): (&[u32], u32) = match encoding {
        Encoding::Pcm16 => (&PCM_RATES, DEFAULT_FORMAT.sample_rate),
        Encoding::Mulaw | Encoding::Alaw => (&[8000], 8000),
    };
    let rate = match rate {
        None => default,
        Some(rate) => allowed
            .iter()
            .copied()
            .find(|&r| u64::from(r) == rate)
            .ok_or_else(|| {
                let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
                ctx.invalid(
                    "sample_rate",
                    format!(
                        "{rate} Hz: {} streams at {} Hz",
                        encoding.name(),
                        list.join(", ")
                    ),
                )
            })?,
    };
    Ok(AudioFormat::new(encoding, rate))
}

/// A URL query's `key=value` pairs, percent-decoded (`+` is a space), as strings; a
/// key without `=` gets an empty value and a later pair replaces an earlier one.
pub(crate) fn query_map(query: &str) -> Map<String, Value> {
    query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key);
            (!key.is_empty()).then(|| (key, Value::String(percent_decode(value))))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (form encoding's space); a `%` not followed by two
/// hex digits is kept as it is, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_percent_decoded() {
        let map = query_map("?voice_input=true&name=J%C3%BCrgen+M&x&=skip&bad=%zz%4&k=1&k=2");
        assert_eq!(
            Value::Object(map),
            serde_json::json!({
                "voice_input": "true", "name": "Jürgen M", "x": "", "bad": "%zz%4", "k": "2"
            })
        );
        assert_eq!(percent_decode("%ff%41"), "\u{fffd}A");
        assert!(query_map("").is_empty());
    }
}
