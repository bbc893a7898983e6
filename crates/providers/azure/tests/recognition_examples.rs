//! The recognition parser on the response examples of the short-audio REST
//! documentation (providers.md §3.3).

use std::time::Duration;

use voxline_azure::RecognitionStatus;
use voxline_azure::recognition::{ParseError, parse};

#[test]
fn simple_example_with_ticks_as_strings() {
    // As printed in the documentation: Offset and Duration are strings there.
    let r = parse(
        r#"{
          "RecognitionStatus": "Success",
          "DisplayText": "Remind me to buy 5 pencils.",
          "Offset": "1236645672289",
          "Duration": "1236645672289"
        }"#,
    )
    .expect("parses");
    assert_eq!(r.status, RecognitionStatus::Success);
    assert_eq!(r.text, "Remind me to buy 5 pencils.");
    // 1236645672289 ticks of 100 ns.
    let expected = Duration::from_secs(123_664) + Duration::from_nanos(5_672_289 * 100);
    assert_eq!(r.offset, expected);
    assert_eq!(r.duration, expected);
    assert!(r.alternatives.is_empty());
    assert_eq!(r.confidence(), None);
}

#[test]
fn simple_example_with_ticks_as_numbers() {
    let r = parse(
        r#"{"RecognitionStatus":"Success","DisplayText":"Remind me to buy 5 pencils.","Offset":1236645672289,"Duration":1236645672289}"#,
    )
    .expect("parses");
    assert_eq!(r.offset.as_nanos(), 123_664_567_228_900);
}

#[test]
fn detailed_example_takes_the_first_nbest_display() {
    let r = parse(
        r#"{
          "RecognitionStatus": "Success",
          "Offset": "1236645672289",
          "Duration": "1236645672289",
          "NBest": [
            {
              "Confidence": 0.9052885,
              "Display": "What's the weather like?",
              "ITN": "what's the weather like",
              "Lexical": "what's the weather like",
              "MaskedITN": "what's the weather like"
            },
            {
              "Confidence": 0.92459863,
              "Display": "what is the weather like",
              "ITN": "what is the weather like",
              "Lexical": "what is the weather like",
              "MaskedITN": "what is the weather like"
            }
          ]
        }"#,
    )
    .expect("parses");
    assert_eq!(r.text, "What's the weather like?");
    assert_eq!(r.alternatives.len(), 2);
    assert_eq!(r.confidence(), Some(0.9052885));
    assert_eq!(r.alternatives[1].lexical, "what is the weather like");
    assert_eq!(r.alternatives[0].itn, "what's the weather like");
}

#[test]
fn pronunciation_example_has_words_in_ticks() {
    let r = parse(
        r#"{
          "RecognitionStatus": "Success",
          "Offset": 700000,
          "Duration": 8400000,
          "DisplayText": "Good morning.",
          "SNR": 38.76819,
          "NBest": [
            {
              "Confidence": 0.98503506,
              "Lexical": "good morning",
              "ITN": "good morning",
              "MaskedITN": "good morning",
              "Display": "Good morning.",
              "AccuracyScore": 100.0,
              "Words": [
                {"Word": "good", "Offset": 700000, "Duration": 2600000, "Confidence": 0.0,
                 "AccuracyScore": 100.0, "ErrorType": "None"},
                {"Word": "morning", "Offset": 3400000, "Duration": 5700000, "Confidence": 0.0,
                 "AccuracyScore": 100.0, "ErrorType": "None"}
              ]
            }
          ]
        }"#,
    )
    .expect("parses");
    assert_eq!(r.text, "Good morning.");
    assert_eq!(r.offset, Duration::from_millis(70));
    assert_eq!(r.duration, Duration::from_millis(840));
    let words = &r.alternatives[0].words;
    assert_eq!(words.len(), 2);
    assert_eq!(words[1].word, "morning");
    assert_eq!(words[1].offset, Duration::from_millis(340));
    assert_eq!(words[1].duration, Duration::from_millis(570));
    assert_eq!(words[0].confidence, None, "0.0 means not given");
}

#[test]
fn every_documented_status() {
    for (wire, status) in [
        ("NoMatch", RecognitionStatus::NoMatch),
        (
            "InitialSilenceTimeout",
            RecognitionStatus::InitialSilenceTimeout,
        ),
        ("BabbleTimeout", RecognitionStatus::BabbleTimeout),
        ("Error", RecognitionStatus::Error),
    ] {
        let r = parse(&format!(
            r#"{{"RecognitionStatus":"{wire}","Offset":0,"Duration":0}}"#
        ))
        .expect("parses");
        assert_eq!(r.status, status);
        assert_eq!(r.status.as_str(), wire);
        assert_eq!(r.text, "", "no text unless Success");
    }
    let r = parse(r#"{"RecognitionStatus":"EndOfDictation"}"#).expect("parses");
    assert_eq!(r.status, RecognitionStatus::Other("EndOfDictation".into()));
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    assert!(matches!(parse(""), Err(ParseError::NotJson(_))));
    assert!(matches!(
        parse("{\"RecognitionStatus\":"),
        Err(ParseError::NotJson(_))
    ));
    assert_eq!(
        parse(r#"{"RecognitionStatus":5}"#),
        Err(ParseError::NoStatus)
    );
    assert_eq!(parse("null"), Err(ParseError::NoStatus));
}
