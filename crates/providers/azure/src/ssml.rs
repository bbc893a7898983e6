//! SSML for the TTS REST API: the `<speak>` document around one piece of text, with the
//! voice, optional speaking style and prosody, and the text escaped.
//!
//! An unescaped `&` or `<` makes the service answer 400 with an empty body, so every
//! piece of text and every attribute value goes through [`escape`].

use std::fmt::Write as _;

/// The SSML namespace the `speak` element must declare.
pub const SSML_NAMESPACE: &str = "http://www.w3.org/2001/10/synthesis";
/// Microsoft's extension namespace (`mstts:express-as` and friends).
pub const MSTTS_NAMESPACE: &str = "http://www.w3.org/2001/mstts";
/// The voice used when neither the session nor [`VoiceOptions`] names one.
pub const DEFAULT_VOICE: &str = "en-US-JennyNeural";
/// The language used when neither the session nor [`VoiceOptions`] names one.
pub const DEFAULT_LANGUAGE: &str = "en-US";

/// The voice and how it speaks: the `<voice>`, `<mstts:express-as>` and `<prosody>`
/// elements of each request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VoiceOptions {
    /// Voice name, e.g. `en-US-JennyNeural` (a session's `TtsConfig::voice` wins).
    pub voice: String,
    /// `xml:lang` of the document (a session's `TtsConfig::language` wins).
    pub language: String,
    /// `<prosody rate>`: `+10%`, `slow`, `1.2`...
    pub rate: Option<String>,
    /// `<prosody pitch>`: `-2st`, `high`, `+5%`...
    pub pitch: Option<String>,
    /// `<prosody volume>`: `loud`, `+20%`...
    pub volume: Option<String>,
    /// `<mstts:express-as style>`: `customerservice`, `cheerful`... (voice-dependent).
    pub style: Option<String>,
    /// `<mstts:express-as styledegree>`, 0.01 to 2.
    pub style_degree: Option<f32>,
}

impl Default for VoiceOptions {
    fn default() -> Self {
        Self {
            voice: DEFAULT_VOICE.to_owned(),
            language: DEFAULT_LANGUAGE.to_owned(),
            rate: None,
            pitch: None,
            volume: None,
            style: None,
            style_degree: None,
        }
    }
}

impl VoiceOptions {
    /// The default voice and language, no style or prosody.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same options with `voice`.
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = voice.into();
        self
    }

    /// The same options with `language`.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = language.into();
        self
    }

    /// The same options with a speaking rate.
    pub fn rate(mut self, rate: impl Into<String>) -> Self {
        self.rate = Some(rate.into());
        self
    }

    /// The same options with a pitch.
    pub fn pitch(mut self, pitch: impl Into<String>) -> Self {
        self.pitch = Some(pitch.into());
        self
    }

    /// The same options with a volume.
    pub fn volume(mut self, volume: impl Into<String>) -> Self {
        self.volume = Some(volume.into());
        self
    }

    /// The same options with a speaking style (and no explicit degree).
    pub fn style(mut self, style: impl Into<String>) -> Self {
        self.style = Some(style.into());
        self
    }

    /// The same options with a style degree.
    pub fn style_degree(mut self, degree: f32) -> Self {
        self.style_degree = Some(degree);
        self
    }
}

/// Escapes text for SSML element content or a quoted attribute value: `&`, `<`, `>`,
/// `"` and `'` become entities; characters XML 1.0 does not allow (control
/// characters other than tab, newline and carriage return, U+FFFE, U+FFFF) and the C1
/// controls are removed.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The text as it will be spoken: [`escape`]'s removals without the escaping. Used to
/// count billable characters.
pub fn spoken_text(text: &str) -> String {
    text.chars()
        .filter(|c| {
            matches!(c, '\t' | '\n' | '\r')
                || !(c.is_control() || *c == '\u{FFFE}' || *c == '\u{FFFF}')
        })
        .collect()
}

/// The SSML document speaking `text` with `options`.
pub fn build(options: &VoiceOptions, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 320);
    let _ = write!(
        out,
        "<speak version=\"1.0\" xmlns=\"{SSML_NAMESPACE}\" xmlns:mstts=\"{MSTTS_NAMESPACE}\" xml:lang=\"{}\">",
        escape(&options.language)
    );
    let _ = write!(out, "<voice name=\"{}\">", escape(&options.voice));
    let styled = options.style.as_deref().filter(|s| !s.trim().is_empty());
    if let Some(style) = styled {
        let _ = write!(out, "<mstts:express-as style=\"{}\"", escape(style));
        if let Some(degree) = options.style_degree.filter(|d| d.is_finite()) {
            let _ = write!(out, " styledegree=\"{}\"", degree.clamp(0.01, 2.0));
        }
        out.push('>');
    }
    let prosody: Vec<(&str, &str)> = [
        ("rate", options.rate.as_deref()),
        ("pitch", options.pitch.as_deref()),
        ("volume", options.volume.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
    .collect();
    if !prosody.is_empty() {
        out.push_str("<prosody");
        for (name, value) in &prosody {
            let _ = write!(out, " {name}=\"{}\"", escape(value));
        }
        out.push('>');
    }
    out.push_str(&escape(text));
    if !prosody.is_empty() {
        out.push_str("</prosody>");
    }
    if styled.is_some() {
        out.push_str("</mstts:express-as>");
    }
    out.push_str("</voice></speak>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_entities() {
        assert_eq!(
            escape(r#"Tom & Jerry <3 "quotes" 'single' a>b"#),
            "Tom &amp; Jerry &lt;3 &quot;quotes&quot; &apos;single&apos; a&gt;b"
        );
    }

    #[test]
    fn control_characters_are_removed_but_whitespace_kept() {
        assert_eq!(
            escape("a\u{0}b\u{7}c\u{1b}d\te\nf\u{85}g\u{FFFF}"),
            "abcd\te\nfg"
        );
        assert_eq!(spoken_text("a\u{0}b\tc"), "ab\tc");
    }

    #[test]
    fn non_ascii_is_kept() {
        assert_eq!(escape("Café 😀 नमस्ते"), "Café 😀 नमस्ते");
    }

    #[test]
    fn minimal_document() {
        let ssml = build(&VoiceOptions::new(), "Hello & bye");
        assert_eq!(
            ssml,
            "<speak version=\"1.0\" xmlns=\"http://www.w3.org/2001/10/synthesis\" \
             xmlns:mstts=\"http://www.w3.org/2001/mstts\" xml:lang=\"en-US\">\
             <voice name=\"en-US-JennyNeural\">Hello &amp; bye</voice></speak>"
        );
    }

    #[test]
    fn style_and_prosody_wrap_the_text() {
        let options = VoiceOptions::new()
            .voice("en-GB-SoniaNeural")
            .language("en-GB")
            .style("customerservice")
            .style_degree(1.5)
            .rate("+5%")
            .pitch("-2st");
        let ssml = build(&options, "Hi");
        assert!(ssml.contains("xml:lang=\"en-GB\""));
        assert!(ssml.contains(
            "<voice name=\"en-GB-SoniaNeural\"><mstts:express-as style=\"customerservice\" \
             styledegree=\"1.5\"><prosody rate=\"+5%\" pitch=\"-2st\">Hi</prosody>\
             </mstts:express-as></voice>"
        ));
    }
}
