//! What a Deepgram session asks for, and the `/v1/listen` URL that carries it.

use std::time::Duration;

use reqwest::Url;
use voxline_audio::{AudioFormat, Encoding};
use voxline_core::{ErrorKind, ProviderError, RetryPolicy, SttConfig};

use crate::PROVIDER;

/// The production streaming host (the SDK's `production` environment).
pub const DEFAULT_BASE_URL: &str = "wss://api.deepgram.com";

/// The environment variable the key is read from when the config has none.
pub const API_KEY_ENV: &str = "DEEPGRAM_API_KEY";

/// Endpointing: how much trailing silence ends a segment with `speech_final: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpointing {
    /// Deepgram's default (10 ms): the parameter is not sent.
    Default,
    /// This many milliseconds of silence (300-500 ms suits conversations).
    Millis(u32),
    /// `endpointing=false`: no `speech_final` at all.
    Disabled,
}

/// Deepgram-specific settings; the per-session audio format, language and interim flag
/// come from [`SttConfig`].
///
/// Start from [`DeepgramConfig::default`] (phone-call settings) and change what you need
/// with the builder methods. The fields are public to read and assign; the struct is
/// `#[non_exhaustive]` so options can be added without breaking callers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeepgramConfig {
    /// The API key; `None` reads [`API_KEY_ENV`] at connect time.
    pub api_key: Option<String>,
    /// `wss://host[:port]` (or `ws://` for the emulator); `http(s)://` is accepted and
    /// mapped to `ws(s)://`. The path `/v1/listen` is appended.
    pub base_url: String,
    /// `model`, e.g. `nova-3` or `nova-2-phonecall`.
    pub model: String,
    /// `language` used when the session config names none.
    pub language: Option<String>,
    /// `channels` (1 for a phone leg).
    pub channels: u16,
    /// `endpointing`.
    pub endpointing: Endpointing,
    /// `utterance_end_ms`: an `UtteranceEnd` after this gap following the last word.
    /// Deepgram needs `interim_results=true` for it, so the adapter then asks for
    /// interims on the wire and drops them itself if the session did not want them.
    pub utterance_end_ms: Option<u32>,
    /// `vad_events`: `SpeechStarted` messages.
    pub vad_events: bool,
    /// `punctuate`.
    pub punctuate: bool,
    /// `smart_format`.
    pub smart_format: bool,
    /// `keyterm` (Nova-3 keyterm prompting), sent as repeated keys.
    pub keyterms: Vec<String>,
    /// Any other documented query parameters, sent as given (repeated keys allowed).
    pub extra_query: Vec<(String, String)>,
    /// A `{"type":"KeepAlive"}` goes out after this long without sending anything
    /// (Deepgram closes with 1011 NET-0001 after about 10 s of nothing; 3-5 s advised).
    pub keepalive_interval: Duration,
    /// Handshake retries and reconnects after a retryable drop.
    pub retry: RetryPolicy,
    /// Audio not yet covered by a final result is kept up to this length and resent
    /// after a reconnect, so a drop loses no speech.
    pub replay_window: Duration,
    /// How long to wait for the last results and `Metadata` after `CloseStream`.
    pub close_timeout: Duration,
    /// Capacity of the session's input and event channels (messages; a 20 ms frame is
    /// one message).
    pub channel_capacity: usize,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            model: "nova-3".to_owned(),
            language: None,
            channels: 1,
            endpointing: Endpointing::Millis(300),
            utterance_end_ms: Some(1000),
            vad_events: true,
            punctuate: true,
            smart_format: false,
            keyterms: Vec::new(),
            extra_query: Vec::new(),
            keepalive_interval: Duration::from_secs(4),
            retry: RetryPolicy::default(),
            replay_window: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            channel_capacity: 256,
        }
    }
}

impl DeepgramConfig {
    /// The same config with this API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The same config against another host (the emulator, a proxy, self-hosted).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The same config with another model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The same config with a default language.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// The same config with another endpointing setting.
    pub fn endpointing(mut self, endpointing: Endpointing) -> Self {
        self.endpointing = endpointing;
        self
    }

    /// The same config with (or without) `utterance_end_ms`.
    pub fn utterance_end_ms(mut self, ms: Option<u32>) -> Self {
        self.utterance_end_ms = ms;
        self
    }

    /// The same config with or without `SpeechStarted` events.
    pub fn vad_events(mut self, on: bool) -> Self {
        self.vad_events = on;
        self
    }

    /// The same config with or without punctuation.
    pub fn punctuate(mut self, on: bool) -> Self {
        self.punctuate = on;
        self
    }

    /// The same config with or without smart formatting.
    pub fn smart_format(mut self, on: bool) -> Self {
        self.smart_format = on;
        self
    }

    /// The same config with keyterms.
    pub fn keyterms<I, S>(mut self, terms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keyterms = terms.into_iter().map(Into::into).collect();
        self
    }

    /// The same config with one more query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_query.push((key.into(), value.into()));
        self
    }

    /// The same config with another keepalive interval.
    pub fn keepalive_interval(mut self, every: Duration) -> Self {
        self.keepalive_interval = every;
        self
    }

    /// The same config with another retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The same config with another replay window.
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replay_window = window;
        self
    }

    /// The same config with another close timeout.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The API key: the config's, else [`API_KEY_ENV`].
    pub(crate) fn key(&self) -> Result<String, ProviderError> {
        voxline_core::key_from(self.api_key.as_deref(), API_KEY_ENV).ok_or_else(|| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Auth,
                format!("no API key: set it in the config or in {API_KEY_ENV}"),
            )
        })
    }

    /// Whether interim results go on the wire: asked for by the session, or needed
    /// for `UtteranceEnd`.
    pub(crate) fn wire_interims(&self, session: &SttConfig) -> bool {
        session.interim_results || self.utterance_end_ms.is_some()
    }

    /// The `/v1/listen` URL with every option in the query string.
    pub(crate) fn listen_url(&self, session: &SttConfig) -> Result<Url, ProviderError> {
        let base = self.base_url.trim_end_matches('/');
        let base = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_owned()
        };
        let mut url = Url::parse(&format!("{base}/v1/listen")).map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                format!("bad base URL {:?}: {e}", self.base_url),
            )
        })?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                format!(
                    "base URL {:?} must be ws(s):// or http(s)://",
                    self.base_url
                ),
            ));
        }
        let bool_str = |b: bool| if b { "true" } else { "false" };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("model", &self.model);
            q.append_pair("encoding", encoding_name(session.format));
            q.append_pair("sample_rate", &session.format.sample_rate.to_string());
            q.append_pair("channels", &self.channels.to_string());
            if let Some(language) = session.language.as_ref().or(self.language.as_ref()) {
                q.append_pair("language", language);
            }
            q.append_pair("interim_results", bool_str(self.wire_interims(session)));
            match self.endpointing {
                Endpointing::Default => {}
                Endpointing::Millis(ms) => {
                    q.append_pair("endpointing", &ms.to_string());
                }
                Endpointing::Disabled => {
                    q.append_pair("endpointing", "false");
                }
            }
            if let Some(ms) = self.utterance_end_ms {
                q.append_pair("utterance_end_ms", &ms.to_string());
            }
            q.append_pair("vad_events", bool_str(self.vad_events));
            q.append_pair("punctuate", bool_str(self.punctuate));
            q.append_pair("smart_format", bool_str(self.smart_format));
            for term in &self.keyterms {
                q.append_pair("keyterm", term);
            }
            for (k, v) in &self.extra_query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }
}

/// Deepgram's name for a raw encoding: phone audio goes as it comes off the line.
pub(crate) fn encoding_name(format: AudioFormat) -> &'static str {
    match format.encoding {
        Encoding::Mulaw => "mulaw",
        Encoding::Alaw => "alaw",
        Encoding::Pcm16 => "linear16",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn phone_audio_goes_as_mulaw_8k_with_every_option_in_the_query() {
        let config = DeepgramConfig::default()
            .base_url("http://127.0.0.1:9/")
            .keyterms(["Whitefield", "eighty lakhs"]);
        let url = config
            .listen_url(&SttConfig::new(AudioFormat::MULAW_8K).language("en-IN"))
            .expect("url");
        assert_eq!(url.scheme(), "ws");
        assert_eq!(url.path(), "/v1/listen");
        let q = pairs(&url);
        let get = |k: &str| {
            q.iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("encoding"), ["mulaw"]);
        assert_eq!(get("sample_rate"), ["8000"]);
        assert_eq!(get("language"), ["en-IN"]);
        assert_eq!(get("endpointing"), ["300"]);
        assert_eq!(get("utterance_end_ms"), ["1000"]);
        assert_eq!(get("interim_results"), ["true"]);
        assert_eq!(get("keyterm"), ["Whitefield", "eighty lakhs"]);
        assert!(url.as_str().contains("keyterm=eighty+lakhs"));
    }

    #[test]
    fn utterance_end_forces_interims_on_the_wire_and_pcm_is_linear16() {
        let session = SttConfig::new(AudioFormat::PCM16_16K).interim_results(false);
        let url = DeepgramConfig::default().listen_url(&session).expect("url");
        assert!(
            url.as_str()
                .starts_with("wss://api.deepgram.com/v1/listen?")
        );
        let q = pairs(&url);
        assert!(q.contains(&("interim_results".into(), "true".into())));
        assert!(q.contains(&("encoding".into(), "linear16".into())));
        assert!(q.contains(&("sample_rate".into(), "16000".into())));

        let url = DeepgramConfig::default()
            .utterance_end_ms(None)
            .endpointing(Endpointing::Disabled)
            .listen_url(&session)
            .expect("url");
        let q = pairs(&url);
        assert!(q.contains(&("interim_results".into(), "false".into())));
        assert!(q.contains(&("endpointing".into(), "false".into())));
        assert!(!q.iter().any(|(k, _)| k == "utterance_end_ms"));
    }

    #[test]
    fn a_bad_base_url_is_a_permanent_error() {
        let err = DeepgramConfig::default()
            .base_url("ftp://example")
            .listen_url(&SttConfig::new(AudioFormat::MULAW_8K))
            .expect_err("ftp");
        assert_eq!(err.kind, ErrorKind::BadRequest);
    }
}
