//! Vonage Voice API WebSockets: binary L16 audio, `websocket:*` text events, the NCCO
//! headers flattened into the first frame, and no ids on the socket.

use bytes::Bytes;
use serde_json::Map;
use voxline_audio::AudioFormat;

use super::{base_type, rate_param, valid_pcm_rate};
use crate::error::DecodeError;
use crate::event::{AudioChunk, CallEvent, CallInfo, Decoded, Dialect};
use crate::session::SessionConfig;
use crate::wire::{self, Ctx, Obj, View};

/// Vonage's format before `websocket:connected` says otherwise.
pub(crate) const DEFAULT_FORMAT: AudioFormat = AudioFormat::PCM16_16K;

/// Headers that may carry the call's id, in order of preference.
const CALL_ID_HEADERS: [&str; 3] = ["call_id", "uuid", "conversation_uuid"];

/// A binary frame: 16-bit linear PCM as it is (no copy).
pub(crate) fn decode_binary(bytes: &Bytes) -> Decoded {
    Decoded::Event(CallEvent::Media(AudioChunk {
        payload: bytes.clone(),
        sequence: None,
        chunk: None,
        timestamp_ms: None,
    }))
}

/// A text frame.
pub(crate) fn decode_text(config: &SessionConfig, text: &str) -> Result<Decoded, DecodeError> {
    let map = wire::parse_object(Dialect::Vonage, text)?;
    let event = wire::event_name(Dialect::Vonage, map.get("event").map(View::of_value))?;
    let ctx = Ctx {
        dialect: Dialect::Vonage,
        event,
    };
    let top = Obj { map: &map };
    match event {
        "websocket:connected" => {
            decode_connected(config, &ctx, top).map(|info| Decoded::Event(CallEvent::Start(info)))
        }
        "websocket:dtmf" => {
            let dtmf = wire::dtmf(&ctx, top, "digit", "duration")?;
            Ok(Decoded::Event(CallEvent::Dtmf(dtmf)))
        }
        "websocket:cleared" => Ok(Decoded::Event(CallEvent::Cleared)),
        other => Ok(Decoded::Ignored {
            event: other.to_owned(),
        }),
    }
}

fn decode_connected(
    config: &SessionConfig,
    ctx: &Ctx<'_>,
    top: Obj<'_>,
) -> Result<CallInfo, DecodeError> {
    let content_type = top
        .str(ctx, &["content-type"], "content-type")?
        .ok_or_else(|| ctx.missing("content-type"))?;
    let format = vonage_format(ctx, content_type)?;
    let header_id = CALL_ID_HEADERS.iter().find_map(|key| {
        top.map
            .get(*key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    });
    let call_id = header_id.unwrap_or(&config.fallback_call_id).to_owned();
    let custom: Map<_, _> = top
        .map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "event" | "content-type"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(CallInfo {
        dialect: Dialect::Vonage,
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

/// `audio/l16;rate=16000` -> PCM16 at 16 kHz (8, 16 or 24 kHz).
fn vonage_format(ctx: &Ctx<'_>, content_type: &str) -> Result<AudioFormat, DecodeError> {
    if base_type(content_type) != "audio/l16" {
        return Err(ctx.invalid(
            "content-type",
            format!(
                "unsupported content type {:?}: expected audio/l16;rate=8000|16000|24000",
                wire::clip(content_type)
            ),
        ));
    }
    let rate = rate_param(content_type)
        .ok_or_else(|| ctx.invalid("content-type", "no `rate=` parameter"))?;
    rate.parse::<u64>()
        .ok()
        .and_then(valid_pcm_rate)
        .map(super::pcm16)
        .ok_or_else(|| {
            ctx.invalid(
                "content-type",
                format!("rate {:?}: expected 8000, 16000 or 24000", wire::clip(rate)),
            )
        })
}
