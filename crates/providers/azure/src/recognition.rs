//! The short-audio recognition response: `RecognitionStatus`, `DisplayText`, `Offset`
//! and `Duration` (100-ns ticks), and with `format=detailed` the `NBest` list.
//!
//! Parsed from a `serde_json::Value` by hand so that unexpected shapes (ticks as
//! strings, as the documentation's own examples show them, missing fields, extra
//! pronunciation-assessment fields) never fail the whole response.

use std::time::Duration;

use serde_json::Value;

/// Why a response body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not JSON.
    #[error("recognition response is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object with a `RecognitionStatus` string.
    #[error("recognition response has no RecognitionStatus")]
    NoStatus,
}

/// The `RecognitionStatus` field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecognitionStatus {
    /// Recognised; the text is present.
    Success,
    /// Speech was heard but no words of the language matched.
    NoMatch,
    /// Only silence at the start of the audio.
    InitialSilenceTimeout,
    /// Only noise at the start of the audio.
    BabbleTimeout,
    /// The service failed internally; trying again may help.
    Error,
    /// A value this adapter does not know.
    Other(String),
}

impl RecognitionStatus {
    fn parse(value: &str) -> Self {
        match value {
            "Success" => Self::Success,
            "NoMatch" => Self::NoMatch,
            "InitialSilenceTimeout" => Self::InitialSilenceTimeout,
            "BabbleTimeout" => Self::BabbleTimeout,
            "Error" => Self::Error,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "Success",
            Self::NoMatch => "NoMatch",
            Self::InitialSilenceTimeout => "InitialSilenceTimeout",
            Self::BabbleTimeout => "BabbleTimeout",
            Self::Error => "Error",
            Self::Other(other) => other,
        }
    }
}

/// One recognised word (detailed results with word timings).
#[derive(Debug, Clone, PartialEq)]
pub struct RecognizedWord {
    /// The word.
    pub word: String,
    /// Start in the request's audio.
    pub offset: Duration,
    /// Length.
    pub duration: Duration,
    /// Confidence, when given and non-zero.
    pub confidence: Option<f32>,
}

/// One entry of the `NBest` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternative {
    /// `Confidence`, 0 to 1.
    pub confidence: Option<f32>,
    /// `Lexical`: the words as recognised, no punctuation.
    pub lexical: String,
    /// `ITN`: inverse-text-normalised form.
    pub itn: String,
    /// `MaskedITN`: ITN with profanity masked.
    pub masked_itn: String,
    /// `Display`: punctuated and capitalised, as `DisplayText` in simple results.
    pub display: String,
    /// `Words`, when the service gave word timings.
    pub words: Vec<RecognizedWord>,
}

/// A parsed recognition response.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// `RecognitionStatus`.
    pub status: RecognitionStatus,
    /// `DisplayText`, or the first `NBest` entry's `Display` in detailed results;
    /// empty unless the status is `Success`.
    pub text: String,
    /// `Offset`: where the speech starts in the request's audio.
    pub offset: Duration,
    /// `Duration`: how long the speech lasts.
    pub duration: Duration,
    /// `NBest`, best first as the service orders it (empty in simple results).
    pub alternatives: Vec<Alternative>,
}

impl Recognition {
    /// The confidence of the text: the first alternative's.
    pub fn confidence(&self) -> Option<f32> {
        self.alternatives.first().and_then(|a| a.confidence)
    }
}

/// Parses a response body of the short-audio recognition API (simple or detailed).
///
/// # Errors
/// When the body is not JSON or has no `RecognitionStatus`.
pub fn parse(body: &str) -> Result<Recognition, ParseError> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let status = value
        .get("RecognitionStatus")
        .and_then(Value::as_str)
        .map(RecognitionStatus::parse)
        .ok_or(ParseError::NoStatus)?;
    let alternatives: Vec<Alternative> = value
        .get("NBest")
        .and_then(Value::as_array)
        .map(|list| list.iter().map(alternative).collect())
        .unwrap_or_default();
    let text = value
        .get("DisplayText")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| alternatives.first().map(|a| a.display.clone()))
        .unwrap_or_default();
    Ok(Recognition {
        text: if status == RecognitionStatus::Success {
            text
        } else {
            String::new()
        },
        status,
        offset: ticks(value.get("Offset")),
        duration: ticks(value.get("Duration")),
        alternatives,
    })
}

fn alternative(value: &Value) -> Alternative {
    let text = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Alternative {
        confidence: confidence(value.get("Confidence")),
        lexical: text("Lexical"),
        itn: text("ITN"),
        masked_itn: text("MaskedITN"),
        display: text("Display"),
        words: value
            .get("Words")
            .and_then(Value::as_array)
            .map(|words| {
                words
                    .iter()
                    .filter_map(|w| {
                        Some(RecognizedWord {
                            word: w.get("Word")?.as_str()?.to_owned(),
                            offset: ticks(w.get("Offset")),
                            duration: ticks(w.get("Duration")),
                            // Pronunciation assessment reports 0.0 for every word.
                            confidence: confidence(w.get("Confidence")).filter(|c| *c > 0.0),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn confidence(value: Option<&Value>) -> Option<f32> {
    let c = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (c.is_finite() && (0.0..=1.0).contains(&c)).then_some(c as f32)
}

/// 100-ns ticks, given as a number or (in the documentation's examples) a string.
fn ticks(value: Option<&Value>) -> Duration {
    let ticks = match value {
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    ticks.map_or(Duration::ZERO, |t| {
        Duration::from_secs(t / 10_000_000) + Duration::from_nanos((t % 10_000_000) * 100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_values_do_not_fail() {
        let r = parse(r#"{"RecognitionStatus":"Success","Offset":-5,"Duration":"x","NBest":[{"Confidence":7}]}"#)
            .expect("parses");
        assert_eq!(r.offset, Duration::ZERO);
        assert_eq!(r.duration, Duration::ZERO);
        assert_eq!(r.confidence(), None);
        assert_eq!(r.text, "");
    }

    #[test]
    fn not_json_and_no_status_are_errors() {
        assert!(matches!(parse("<html>"), Err(ParseError::NotJson(_))));
        assert_eq!(parse("{}"), Err(ParseError::NoStatus));
        assert_eq!(parse("[1]"), Err(ParseError::NoStatus));
    }
}
