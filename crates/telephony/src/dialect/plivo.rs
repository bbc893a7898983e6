//! Plivo AudioStream: camelCase, `start` first (no `connected`), `extra_headers`,
//! `playedStream` for checkpoints, no `stop` (the socket closes).

use serde_json::{Map, Value};
use voxline_audio::AudioFormat;

use super::{
    MediaKeys, Sequence, decode_dtmf, decode_stop, is_l16, is_mulaw, rate_param, valid_pcm_rate,
};
use crate::error::DecodeError;
use crate::event::{CallEvent, CallInfo, Decoded, Dialect};
use crate::wire::{Ctx, Obj, View};

/// How Plivo's media messages are laid out.
pub(crate) const MEDIA: MediaKeys = MediaKeys {
    sequence: Sequence::Camel,
    swap_pcm: false,
};

/// Decodes every message but `media`.
pub(crate) fn decode(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<Decoded, DecodeError> {
    match ctx.event {
        "start" => decode_start(ctx, top).map(|info| Decoded::Event(CallEvent::Start(info))),
        "dtmf" => decode_dtmf(ctx, top),
        // The documented name and the one a support article uses.
        "playedStream" | "played" => {
            let name = top
                .str(ctx, &["name"], "name")?
                .ok_or_else(|| ctx.missing("name"))?;
            Ok(Decoded::Event(CallEvent::Mark {
                name: name.to_owned(),
            }))
        }
        "clearedAudio" => Ok(Decoded::Event(CallEvent::Cleared)),
        // Neither is in Plivo's protocol; understood if they ever come.
        "connected" => Ok(Decoded::Event(CallEvent::Connected)),
        "stop" => decode_stop(ctx, top),
        other => Ok(Decoded::Ignored {
            event: other.to_owned(),
        }),
    }
}

fn decode_start(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<CallInfo, DecodeError> {
    let start = top.required_obj(ctx, &["start"], "start")?;
    let call_id = start.required_id(ctx, &["callId"], "start.callId")?;
    let stream_id = start.required_id(ctx, &["streamId"], "start.streamId")?;
    let account = start.id(ctx, &["accountId"], "start.accountId")?;
    let media_format = start.required_obj(ctx, &["mediaFormat"], "start.mediaFormat")?;
    let format = plivo_format(ctx, media_format)?;
    let mut custom = Map::new();
    // Repeated on every event at the top level; accepted inside `start` too.
    let headers = match top.get_any(&["extra_headers"]) {
        Some(v) => Some(v),
        None => start.get_any(&["extra_headers"]),
    };
    if let Some(headers) = headers {
        match headers {
            Value::String(raw) => {
                for pair in raw.split(';') {
                    let pair = pair.trim();
                    if pair.is_empty() {
                        continue;
                    }
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    custom.insert(
                        key.trim().to_owned(),
                        Value::String(value.trim().to_owned()),
                    );
                }
            }
            Value::Object(map) => {
                custom.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            _ => {
                return Err(ctx.invalid(
                    "extra_headers",
                    "expected a string of `key=value` pairs separated by `;`",
                ));
            }
        }
        custom.insert("extra_headers".to_owned(), headers.clone());
    }
    Ok(CallInfo {
        dialect: Dialect::Plivo,
        call_id: call_id.to_owned(),
        stream_id: Some(stream_id.to_owned()),
        from: start.str(ctx, &["from"], "start.from")?.map(str::to_owned),
        to: start.str(ctx, &["to"], "start.to")?.map(str::to_owned),
        account: account.map(str::to_owned),
        direction: start
            .str(ctx, &["direction"], "start.direction")?
            .map(str::to_owned),
        custom,
        format,
    })
}

/// `audio/x-mulaw` (8 kHz) or `audio/x-l16` at 8 or 16 kHz. The format decides how
/// every byte is heard, so a format we cannot name is refused rather than guessed.
fn plivo_format(ctx: &Ctx<'_>, media_format: Obj<'_>) -> Result<AudioFormat, DecodeError> {
    let encoding = media_format
        .str(ctx, &["encoding"], "start.mediaFormat.encoding")?
        .ok_or_else(|| ctx.missing("start.mediaFormat.encoding"))?;
    if is_mulaw(encoding) {
        return Ok(AudioFormat::MULAW_8K);
    }
    if !is_l16(encoding) {
        return Err(ctx.invalid(
            "start.mediaFormat.encoding",
            format!("unsupported encoding {encoding:?}: expected audio/x-mulaw or audio/x-l16"),
        ));
    }
    let rate = match media_format.get_any(&["sampleRate"]) {
        Some(v) => View::of_value(v)
            .as_u64()
            .map_err(|p| ctx.invalid("start.mediaFormat.sampleRate", p))?,
        None => rate_param(encoding).and_then(|r| r.parse().ok()),
    };
    let rate = rate.ok_or_else(|| ctx.missing("start.mediaFormat.sampleRate"))?;
    match valid_pcm_rate(rate) {
        Some(rate @ (8000 | 16000)) => Ok(super::pcm16(rate)),
        _ => Err(ctx.invalid(
            "start.mediaFormat.sampleRate",
            format!("{rate} Hz: audio/x-l16 streams are 8000 or 16000 Hz"),
        )),
    }
}
