//! Reading carrier JSON without trusting it: lenient borrowed scalars for the media
//! hot path, typed lookups with field paths for everything else, and the small
//! writers the encoders share.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::event::{Dialect, Dtmf};

/// What a decoder knows when it reports a problem: the dialect and the message's
/// event name.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) dialect: Dialect,
    pub(crate) event: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn missing(&self, field: &'static str) -> DecodeError {
        DecodeError::MissingField {
            dialect: self.dialect,
            event: self.event.to_owned(),
            field,
        }
    }

    pub(crate) fn invalid(&self, field: &'static str, problem: impl Into<String>) -> DecodeError {
        DecodeError::InvalidField {
            dialect: self.dialect,
            event: self.event.to_owned(),
            field,
            problem: problem.into(),
        }
    }
}

/// The event name reported when a message has none.
pub(crate) const NO_EVENT: &str = "(no event)";

/// A JSON value seen through a narrow window: scalars are kept (strings borrowed
/// when they hold no escapes), objects and arrays are skipped and only their kind is
/// remembered. Deserializing one never fails on a well-formed document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    Object,
    Array,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
            type Value = Scalar<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::I64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Array)
            }
        }

        deserializer.deserialize_any(ScalarVisitor(std::marker::PhantomData))
    }
}

/// An object read as `T`, or the kind of whatever else stood there.
#[derive(Debug)]
pub(crate) enum Nested<T> {
    Object(T),
    Other(&'static str),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nested<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NestedVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for NestedVisitor<T> {
            type Value = Nested<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Nested::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Nested::Other("an array"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Nested::Other("a boolean"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Nested::Other("a number"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Nested::Other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Nested::Other("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Nested::Other("a string"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Nested::Other("null"))
            }
        }

        deserializer.deserialize_any(NestedVisitor(std::marker::PhantomData))
    }
}

/// The top level of a JSON dialect's message, as far as the media hot path needs it.
/// Every key spelling any JSON dialect uses is here; each dialect reads its own.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(borrow)]
    pub(crate) event: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(crate) sequence_number: Option<Scalar<'a>>,
    #[serde(borrow, rename = "sequenceNumber")]
    pub(crate) sequence_number_camel: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(crate) media: Option<Nested<MediaBody<'a>>>,
    /// Voxline's top-level base64 audio.
    #[serde(borrow)]
    pub(crate) audio: Option<Scalar<'a>>,
}

/// The `media` object of an inbound media message.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct MediaBody<'a> {
    #[serde(borrow)]
    pub(crate) payload: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(crate) chunk: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(crate) timestamp: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(crate) track: Option<Scalar<'a>>,
}

/// A borrowed view of a scalar, from either a [`Scalar`] or a [`Value`].
#[derive(Clone, Copy)]
pub(crate) enum View<'a> {
    Str(&'a str),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool,
    Null,
    Object,
    Array,
}

impl<'a> View<'a> {
    pub(crate) fn of_scalar(s: &'a Scalar<'_>) -> Self {
        match s {
            Scalar::Str(s) => View::Str(s),
            Scalar::U64(n) => View::U64(*n),
            Scalar::I64(n) => View::I64(*n),
            Scalar::F64(n) => View::F64(*n),
            Scalar::Bool(_) => View::Bool,
            Scalar::Null => View::Null,
            Scalar::Object => View::Object,
            Scalar::Array => View::Array,
        }
    }

    pub(crate) fn of_value(v: &'a Value) -> Self {
        match v {
            Value::String(s) => View::Str(s),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    View::U64(u)
                } else if let Some(i) = n.as_i64() {
                    View::I64(i)
                } else {
                    View::F64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::Bool(_) => View::Bool,
            Value::Null => View::Null,
            Value::Object(_) => View::Object,
            Value::Array(_) => View::Array,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            View::Str(_) => "a string",
            View::U64(_) | View::I64(_) | View::F64(_) => "a number",
            View::Bool => "a boolean",
            View::Null => "null",
            View::Object => "an object",
            View::Array => "an array",
        }
    }

    /// A non-negative integer, given as a number or as a string of digits; `null` is
    /// absent.
    pub(crate) fn as_u64(self) -> Result<Option<u64>, String> {
        match self {
            View::Null => Ok(None),
            View::U64(n) => Ok(Some(n)),
            View::I64(n) => Err(format!("expected a non-negative integer, found {n}")),
            View::F64(f) => {
                // Integral floats (`8000.0`) are accepted; anything else is not a count.
                if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 {
                    Ok(Some(f as u64))
                } else {
                    Err(format!("expected a non-negative integer, found {f}"))
                }
            }
            View::Str(s) => s.trim().parse::<u64>().map(Some).map_err(|_| {
                format!(
                    "expected a non-negative integer, found the string {:?}",
                    clip(s)
                )
            }),
            other => Err(format!(
                "expected a non-negative integer, found {}",
                other.kind()
            )),
        }
    }

    /// A string; `null` is absent.
    pub(crate) fn as_str(self) -> Result<Option<&'a str>, String> {
        match self {
            View::Null => Ok(None),
            View::Str(s) => Ok(Some(s)),
            other => Err(format!("expected a string, found {}", other.kind())),
        }
    }
}

/// At most 40 characters of `s`, for error messages.
pub(crate) fn clip(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(40) {
        Some((at, _)) => Cow::Owned(format!("{}...", &s[..at])),
        None => Cow::Borrowed(s),
    }
}

/// Reads a number field of the fast path.
pub(crate) fn scalar_u64(
    ctx: &Ctx<'_>,
    value: Option<&Scalar<'_>>,
    field: &'static str,
) -> Result<Option<u64>, DecodeError> {
    match value {
        None => Ok(None),
        Some(s) => View::of_scalar(s)
            .as_u64()
            .map_err(|p| ctx.invalid(field, p)),
    }
}

/// Decodes a strict standard-alphabet, padded base64 payload.
pub(crate) fn decode_base64(
    ctx: &Ctx<'_>,
    text: &str,
    field: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    STANDARD
        .decode(text.as_bytes())
        .map_err(|e| ctx.invalid(field, format!("not valid base64: {e}")))
}

/// Lookups in a JSON object that report the field's path on failure.
#[derive(Clone, Copy)]
pub(crate) struct Obj<'m> {
    pub(crate) map: &'m Map<String, Value>,
}

impl<'m> Obj<'m> {
    /// The first of `keys` present with a non-null value.
    pub(crate) fn get_any(&self, keys: &[&str]) -> Option<&'m Value> {
        keys.iter()
            .filter_map(|k| self.map.get(*k))
            .find(|v| !v.is_null())
    }

    /// A string under any of `keys`; absent or `null` is `None`.
    pub(crate) fn str(
        &self,
        ctx: &Ctx<'_>,
        keys: &[&str],
        field: &'static str,
    ) -> Result<Option<&'m str>, DecodeError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some(v) => View::of_value(v)
                .as_str()
                .map_err(|p| ctx.invalid(field, p)),
        }
    }

    /// An id: a non-empty string under any of `keys`; absent or `null` is `None`.
    pub(crate) fn id(
        &self,
        ctx: &Ctx<'_>,
        keys: &[&str],
        field: &'static str,
    ) -> Result<Option<&'m str>, DecodeError> {
        match self.str(ctx, keys, field)? {
            Some("") => Err(ctx.invalid(field, "is empty")),
            other => Ok(other),
        }
    }

    /// A required id.
    pub(crate) fn required_id(
        &self,
        ctx: &Ctx<'_>,
        keys: &[&str],
        field: &'static str,
    ) -> Result<&'m str, DecodeError> {
        self.id(ctx, keys, field)?.ok_or_else(|| ctx.missing(field))
    }

    /// A non-negative integer (number or digit string) under any of `keys`.
    pub(crate) fn u64(
        &self,
        ctx: &Ctx<'_>,
        keys: &[&str],
        field: &'static str,
    ) -> Result<Option<u64>, DecodeError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some(v) => View::of_value(v)
                .as_u64()
                .map_err(|p| ctx.invalid(field, p)),
        }
    }

    /// A nested object under any of `keys`; absent or `null` is `None`.
    pub(crate) fn obj(
        &self,
        ctx: &Ctx<'_>,
        keys: &[&str],
        field: &'static str,
    ) -> Result<Option<Obj<'m>>, DecodeError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj { map })),
            Some(v) => Err(ctx.invalid(
                field,
                format!("expected an object, found {}", View::of_value(v).kind()),
            )),
        }
    }

    /// A required nested object.
    pub(crate) fn required_obj(
        &self,
        ctx: &Ctx<'_>,
        keys: &[&str],
        field: &'static str,
    ) -> Result<Obj<'m>, DecodeError> {
        self.obj(ctx, keys, field)?
            .ok_or_else(|| ctx.missing(field))
    }
}

/// The message's `event` name.
pub(crate) fn event_name<'v>(
    dialect: Dialect,
    value: Option<View<'v>>,
) -> Result<&'v str, DecodeError> {
    let ctx = Ctx {
        dialect,
        event: NO_EVENT,
    };
    match value {
        None | Some(View::Null) => Err(ctx.missing("event")),
        Some(v) => v
            .as_str()
            .map_err(|p| ctx.invalid("event", p))?
            .ok_or_else(|| ctx.missing("event")),
    }
}

/// A key press: one of `0-9*#A-D` (lowercase accepted), given as a one-character
/// string or a single-digit number.
pub(crate) fn dtmf_digit(
    ctx: &Ctx<'_>,
    value: Option<&Value>,
    field: &'static str,
) -> Result<char, DecodeError> {
    let value = match value {
        None | Some(Value::Null) => return Err(ctx.missing(field)),
        Some(v) => v,
    };
    let c = match View::of_value(value) {
        View::Str(s) => {
            let mut chars = s.trim().chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(
                        ctx.invalid(field, format!("expected one key, found {:?}", clip(s)))
                    );
                }
            }
        }
        View::U64(n) if n <= 9 => char::from(b'0' + n as u8),
        other => {
            return Err(ctx.invalid(
                field,
                format!("expected a key such as \"5\", found {}", other.kind()),
            ));
        }
    };
    match c {
        '0'..='9' | '*' | '#' | 'A'..='D' => Ok(c),
        'a'..='d' => Ok(c.to_ascii_uppercase()),
        _ => Err(ctx.invalid(
            field,
            format!("{c:?} is not a key: expected 0-9, *, #, A-D"),
        )),
    }
}

/// A DTMF event from an object holding the digit and an optional duration.
pub(crate) fn dtmf(
    ctx: &Ctx<'_>,
    obj: Obj<'_>,
    digit_field: &'static str,
    duration_field: &'static str,
) -> Result<Dtmf, DecodeError> {
    let digit = dtmf_digit(ctx, obj.get_any(&["digit"]), digit_field)?;
    let duration_ms = obj.u64(ctx, &["duration"], duration_field)?;
    Ok(Dtmf { digit, duration_ms })
}

/// Parses the whole text as a JSON object.
pub(crate) fn parse_object(
    dialect: Dialect,
    text: &str,
) -> Result<Map<String, Value>, DecodeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(DecodeError::Json {
            dialect,
            detail: format!(
                "expected an object, found {}",
                View::of_value(&other).kind()
            ),
        }),
        Err(e) => Err(json_error(dialect, &e)),
    }
}

pub(crate) fn json_error_text(dialect: Dialect, detail: &str) -> DecodeError {
    DecodeError::Json {
        dialect,
        detail: detail.to_owned(),
    }
}

pub(crate) fn json_error(dialect: Dialect, e: &serde_json::Error) -> DecodeError {
    DecodeError::Json {
        dialect,
        detail: e.to_string(),
    }
}

/// Appends `s` to `out` as the inside of a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    let clean = s
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f);
    if clean {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Appends `bytes` as standard padded base64.
pub(crate) fn push_base64(out: &mut String, bytes: &[u8]) {
    STANDARD.encode_string(bytes, out);
}

/// The length of `n` bytes as padded base64.
pub(crate) fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n\t\r",
            "\u{1}\u{7f}é😀",
            "",
        ] {
            let mut out = String::from("\"");
            push_json_str(&mut out, s);
            out.push('"');
            let back: String = serde_json::from_str(&out).expect("valid JSON string");
            assert_eq!(back, s);
        }
    }

    #[test]
    fn numbers_from_strings_and_numbers() {
        assert_eq!(View::Str("42").as_u64(), Ok(Some(42)));
        assert_eq!(View::U64(42).as_u64(), Ok(Some(42)));
        assert_eq!(View::F64(8000.0).as_u64(), Ok(Some(8000)));
        assert!(View::F64(1.5).as_u64().is_err());
        assert!(View::I64(-1).as_u64().is_err());
        assert!(View::Str("99999999999999999999999").as_u64().is_err());
        assert_eq!(View::Null.as_u64(), Ok(None));
    }

    #[test]
    fn base64_length_matches_the_encoder() {
        for n in 0..20 {
            let mut s = String::new();
            push_base64(&mut s, &vec![7u8; n]);
            assert_eq!(s.len(), base64_len(n));
        }
    }
}
