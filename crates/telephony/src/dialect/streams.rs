//! The media-streams family: Exotel (snake_case, tolerant of camelCase), Smartflo and
//! Twilio (camelCase). Same events, same shape; they differ in key spelling, audio
//! format and a few fields.

use serde_json::Value;
use voxline_audio::AudioFormat;

use super::{
    MediaKeys, Sequence, custom_object, decode_dtmf, decode_mark, decode_stop, is_mulaw,
    valid_pcm_rate,
};
use crate::error::DecodeError;
use crate::event::{CallEvent, CallInfo, Decoded, Dialect};
use crate::session::SessionConfig;
use crate::wire::{Ctx, Obj, View};

/// Key spellings and the paths errors name, per dialect.
struct Keys {
    stream: &'static [&'static str],
    stream_field: &'static str,
    call: &'static [&'static str],
    call_field: &'static str,
    account: &'static [&'static str],
    account_field: &'static str,
    custom: &'static [&'static str],
    custom_field: &'static str,
    media_format: &'static [&'static str],
    media_format_field: &'static str,
    encoding_field: &'static str,
    sample_rate: &'static [&'static str],
}

const EXOTEL: Keys = Keys {
    stream: &["stream_sid", "streamSid"],
    stream_field: "start.stream_sid",
    call: &["call_sid", "callSid"],
    call_field: "start.call_sid",
    account: &["account_sid", "accountSid"],
    account_field: "start.account_sid",
    custom: &["custom_parameters", "customParameters"],
    custom_field: "start.custom_parameters",
    media_format: &["media_format", "mediaFormat"],
    media_format_field: "start.media_format",
    encoding_field: "start.media_format.encoding",
    sample_rate: &["sample_rate", "sampleRate"],
};

const CAMEL: Keys = Keys {
    stream: &["streamSid"],
    stream_field: "start.streamSid",
    call: &["callSid"],
    call_field: "start.callSid",
    account: &["accountSid"],
    account_field: "start.accountSid",
    custom: &["customParameters"],
    custom_field: "start.customParameters",
    media_format: &["mediaFormat"],
    media_format_field: "start.mediaFormat",
    encoding_field: "start.mediaFormat.encoding",
    sample_rate: &["sampleRate"],
};

fn keys(dialect: Dialect) -> &'static Keys {
    match dialect {
        Dialect::Exotel => &EXOTEL,
        _ => &CAMEL,
    }
}

/// How media messages of `dialect` are laid out.
pub(crate) fn media_keys(dialect: Dialect) -> MediaKeys {
    MediaKeys {
        sequence: match dialect {
            Dialect::Exotel => Sequence::SnakeOrCamel,
            _ => Sequence::Camel,
        },
        swap_pcm: false,
    }
}

/// Exotel's format before `start`: PCM16 at the URL's rate, else 8 kHz.
pub(crate) fn exotel_default_format(config: &SessionConfig) -> AudioFormat {
    let rate = config
        .url_sample_rate
        .and_then(|r| valid_pcm_rate(u64::from(r)))
        .unwrap_or(8000);
    super::pcm16(rate)
}

/// Decodes every message but `media`.
pub(crate) fn decode(
    config: &SessionConfig,
    ctx: &Ctx<'_>,
    top: Obj<'_>,
) -> Result<Decoded, DecodeError> {
    match ctx.event {
        "connected" => Ok(Decoded::Event(CallEvent::Connected)),
        "start" => {
            decode_start(config, ctx, top).map(|info| Decoded::Event(CallEvent::Start(info)))
        }
        "dtmf" => decode_dtmf(ctx, top),
        "mark" => decode_mark(ctx, top),
        "clear" => Ok(Decoded::Event(CallEvent::Clear)),
        "stop" => decode_stop(ctx, top),
        other => Ok(Decoded::Ignored {
            event: other.to_owned(),
        }),
    }
}

fn decode_start(
    config: &SessionConfig,
    ctx: &Ctx<'_>,
    top: Obj<'_>,
) -> Result<CallInfo, DecodeError> {
    let dialect = ctx.dialect;
    let k = keys(dialect);
    let start = top.required_obj(ctx, &["start"], "start")?;
    // Ids live in `start`; the top level is a fallback (Twilio repeats the stream id
    // there, Exotel's docs list it there too).
    let stream_id = match start.id(ctx, k.stream, k.stream_field)? {
        Some(id) => id,
        None => top
            .id(ctx, k.stream, k.stream_field)?
            .ok_or_else(|| ctx.missing(k.stream_field))?,
    };
    let call_id = match start.id(ctx, k.call, k.call_field)? {
        Some(id) => id,
        None => top
            .id(ctx, k.call, k.call_field)?
            .ok_or_else(|| ctx.missing(k.call_field))?,
    };
    let account = start.id(ctx, k.account, k.account_field)?;
    let mut from = start.str(ctx, &["from"], "start.from")?.map(str::to_owned);
    let mut to = start.str(ctx, &["to"], "start.to")?.map(str::to_owned);
    let direction = start
        .str(ctx, &["direction"], "start.direction")?
        .map(str::to_owned);
    let custom = custom_object(ctx, start.get_any(k.custom), k.custom_field)?;
    let media_format = start.obj(ctx, k.media_format, k.media_format_field)?;

    let format = match dialect {
        Dialect::Exotel => exotel_format(config, ctx, media_format, k)?,
        // Smartflo and Twilio send mu-law 8 kHz only; `mediaFormat` just says so.
        _ => AudioFormat::MULAW_8K,
    };

    if dialect == Dialect::Twilio {
        // Twilio's `start` has no numbers; by convention the TwiML passes them as
        // `<Parameter>`s named `from_number` and `to_number`.
        let promoted = |key: &str| custom.get(key).and_then(Value::as_str).map(str::to_owned);
        if from.is_none() {
            from = promoted("from_number");
        }
        if to.is_none() {
            to = promoted("to_number");
        }
    }

    Ok(CallInfo {
        dialect,
        call_id: call_id.to_owned(),
        stream_id: Some(stream_id.to_owned()),
        from,
        to,
        account: account.map(str::to_owned),
        direction,
        custom,
        format,
    })
}

/// Exotel's format: mu-law 8 kHz if `media_format.encoding` says mu-law; otherwise
/// PCM16 at the URL's rate, else `media_format.sample_rate`, else 8 kHz. The rate in
/// `start` is informative only (its type varies), so an odd value is ignored, not
/// refused.
fn exotel_format(
    config: &SessionConfig,
    ctx: &Ctx<'_>,
    media_format: Option<Obj<'_>>,
    k: &Keys,
) -> Result<AudioFormat, DecodeError> {
    let Some(media_format) = media_format else {
        return Ok(exotel_default_format(config));
    };
    let encoding = media_format.str(ctx, &["encoding"], k.encoding_field)?;
    if encoding.is_some_and(is_mulaw) {
        return Ok(AudioFormat::MULAW_8K);
    }
    let url_rate = config
        .url_sample_rate
        .and_then(|r| valid_pcm_rate(u64::from(r)));
    let start_rate = media_format
        .get_any(k.sample_rate)
        .and_then(|v| View::of_value(v).as_u64().ok().flatten())
        .and_then(valid_pcm_rate);
    Ok(super::pcm16(url_rate.or(start_rate).unwrap_or(8000)))
}
