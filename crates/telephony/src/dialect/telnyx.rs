//! Telnyx media streaming: snake_case, top-level `stream_id`, the call's codec, an
//! `error` event, and no stream id on what we send.

use serde_json::{Map, Value};
use voxline_audio::AudioFormat;

use super::{
    MediaKeys, Sequence, custom_object, decode_dtmf, decode_mark, decode_stop, is_alaw, is_l16,
    is_mulaw, valid_pcm_rate,
};
use crate::error::DecodeError;
use crate::event::{CallEvent, CallInfo, Decoded, Dialect};
use crate::wire::{Ctx, Obj, View};

/// How Telnyx's media messages are laid out: L16 arrives big-endian, as in RTP.
pub(crate) const MEDIA: MediaKeys = MediaKeys {
    sequence: Sequence::Snake,
    swap_pcm: true,
};

/// Decodes every message but `media`.
pub(crate) fn decode(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<Decoded, DecodeError> {
    match ctx.event {
        "connected" => Ok(Decoded::Event(CallEvent::Connected)),
        "start" => decode_start(ctx, top).map(|info| Decoded::Event(CallEvent::Start(info))),
        "dtmf" => decode_dtmf(ctx, top),
        "mark" => decode_mark(ctx, top),
        "stop" => decode_stop(ctx, top),
        "error" => decode_error(ctx, top),
        other => Ok(Decoded::Ignored {
            event: other.to_owned(),
        }),
    }
}

fn decode_start(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<CallInfo, DecodeError> {
    let start = top.required_obj(ctx, &["start"], "start")?;
    let call_id = start.required_id(ctx, &["call_control_id"], "start.call_control_id")?;
    // Top level in every example; inside `start` accepted as a fallback.
    let stream_id = match top.id(ctx, &["stream_id"], "stream_id")? {
        Some(id) => Some(id),
        None => start.id(ctx, &["stream_id"], "start.stream_id")?,
    };
    let format = match start.obj(ctx, &["media_format"], "start.media_format")? {
        Some(media_format) => telnyx_format(ctx, media_format)?,
        None => AudioFormat::MULAW_8K,
    };
    let mut custom = Map::new();
    if let Some(state) = start.get_any(&["client_state"]) {
        custom.insert("client_state".to_owned(), state.clone());
    }
    match start.get_any(&["custom_parameters"]) {
        Some(Value::Array(items)) => {
            for item in items {
                let pair = item.as_object().and_then(|o| {
                    let name = o.get("name")?.as_str()?;
                    Some((
                        name.to_owned(),
                        o.get("value").cloned().unwrap_or(Value::Null),
                    ))
                });
                let Some((name, value)) = pair else {
                    return Err(ctx.invalid(
                        "start.custom_parameters",
                        "expected a list of {\"name\": ..., \"value\": ...} objects",
                    ));
                };
                custom.insert(name, value);
            }
        }
        other => custom.extend(custom_object(ctx, other, "start.custom_parameters")?),
    }
    Ok(CallInfo {
        dialect: Dialect::Telnyx,
        call_id: call_id.to_owned(),
        stream_id: stream_id.map(str::to_owned),
        from: start.str(ctx, &["from"], "start.from")?.map(str::to_owned),
        to: start.str(ctx, &["to"], "start.to")?.map(str::to_owned),
        account: start
            .id(ctx, &["user_id"], "start.user_id")?
            .map(str::to_owned),
        direction: start
            .str(ctx, &["direction"], "start.direction")?
            .map(str::to_owned),
        custom,
        format,
    })
}

/// `PCMU`/`audio/x-mulaw` -> mu-law 8 kHz, `PCMA` -> A-law 8 kHz, `L16` -> PCM16 at
/// `sample_rate`; other codecs (G722, OPUS, AMR-WB, ...) are refused.
fn telnyx_format(ctx: &Ctx<'_>, media_format: Obj<'_>) -> Result<AudioFormat, DecodeError> {
    let Some(encoding) = media_format.str(ctx, &["encoding"], "start.media_format.encoding")?
    else {
        return Ok(AudioFormat::MULAW_8K);
    };
    if is_mulaw(encoding) {
        return Ok(AudioFormat::MULAW_8K);
    }
    if is_alaw(encoding) {
        return Ok(AudioFormat::ALAW_8K);
    }
    if !is_l16(encoding) {
        return Err(ctx.invalid(
            "start.media_format.encoding",
            format!("unsupported codec {encoding:?}: expected PCMU, PCMA or L16"),
        ));
    }
    let rate = media_format
        .u64(ctx, &["sample_rate"], "start.media_format.sample_rate")?
        .ok_or_else(|| ctx.missing("start.media_format.sample_rate"))?;
    valid_pcm_rate(rate).map(super::pcm16).ok_or_else(|| {
        ctx.invalid(
            "start.media_format.sample_rate",
            format!("{rate} Hz: L16 is decoded at 8000, 16000 or 24000 Hz"),
        )
    })
}

/// `error`: `{title, code, detail}`.
fn decode_error(ctx: &Ctx<'_>, top: Obj<'_>) -> Result<Decoded, DecodeError> {
    let error = top.required_obj(ctx, &["error"], "error")?;
    let code = match error.get_any(&["code"]) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(v) => {
            return Err(ctx.invalid(
                "error.code",
                format!("expected a string or a number, found {}", kind(v)),
            ));
        }
    };
    let title = error.str(ctx, &["title"], "error.title")?;
    let detail = error.str(ctx, &["detail"], "error.detail")?;
    let message = match (title, detail) {
        (Some(t), Some(d)) => format!("{t}: {d}"),
        (Some(m), None) | (None, Some(m)) => m.to_owned(),
        (None, None) => "unspecified error".to_owned(),
    };
    Ok(Decoded::Event(CallEvent::CarrierError { code, message }))
}

fn kind(v: &Value) -> &'static str {
    match View::of_value(v) {
        View::Bool => "a boolean",
        View::Object => "an object",
        View::Array => "an array",
        _ => "another value",
    }
}
