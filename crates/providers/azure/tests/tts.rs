//! Azure TTS adapter against the emulator on 127.0.0.1.

use std::time::Duration;

use voxline_audio::{AudioFormat, Encoding};
use voxline_azure::{AzureConfig, AzureTts, VoiceOptions};
use voxline_core::{
    ErrorKind, ProviderError, RequestId, RetryPolicy, TextToSpeech, TtsConfig, TtsEvent,
    TtsSession, UsageKind,
};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::azure::{Auth, Config, Emulator};

fn config(emulator: &Emulator) -> AzureConfig {
    AzureConfig::new()
        .key(emulator.key())
        .base_url(emulator.url())
        .retry(RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        })
}

async fn session(emulator: &Emulator, tts: TtsConfig) -> TtsSession {
    AzureTts::new(config(emulator))
        .expect("client")
        .connect(tts)
        .await
        .expect("session")
}

/// What one request produced.
#[derive(Debug, Default)]
struct Outcome {
    audio: Vec<u8>,
    ttfb: usize,
    characters: u64,
    errors: Vec<ProviderError>,
}

/// Collects events until `request` is done.
async fn collect(session: &mut TtsSession, request: RequestId) -> Outcome {
    let mut out = Outcome::default();
    loop {
        match session.recv().await.expect("session ended early") {
            TtsEvent::Audio { request: r, audio } => {
                assert_eq!(r, request, "audio of another request");
                out.audio.extend_from_slice(&audio);
            }
            TtsEvent::Ttfb { request: r, .. } => {
                assert_eq!(r, request);
                out.ttfb += 1;
            }
            TtsEvent::Usage(usage) => match usage.kind {
                UsageKind::Characters(n) => {
                    assert!(!usage.reported);
                    assert_eq!(usage.provider, "azure");
                    out.characters += n;
                }
                other => panic!("unexpected usage {other:?}"),
            },
            TtsEvent::Error { request: r, error } => {
                assert_eq!(r, Some(request));
                out.errors.push(error);
            }
            TtsEvent::Done { request: r } if r == request => return out,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn synthesises_phone_audio_with_the_key_header_and_ssml() {
    let emulator = Emulator::start(Config::default()).await;
    let mut tts = session(
        &emulator,
        TtsConfig::new(AudioFormat::MULAW_8K)
            .voice("en-US-AriaNeural")
            .language("en-US"),
    )
    .await;
    let request = tts.say("Hello there.").await.expect("open");
    let out = collect(&mut tts, request).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    // 12 characters at the emulator's 50 ms each, 8000 mu-law bytes a second.
    assert_eq!(out.audio.len(), 4800);
    assert_eq!(out.ttfb, 1);
    assert_eq!(out.characters, 12);

    let requests = emulator.tts().snapshot();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.status, 200, "{:?}", r.rejection);
    assert_eq!(r.auth, Auth::Key(emulator.key().to_owned()));
    assert_eq!(r.output_format.as_deref(), Some("raw-8khz-8bit-mono-mulaw"));
    assert_eq!(
        header(&r.headers, "content-type"),
        Some("application/ssml+xml")
    );
    assert!(
        header(&r.headers, "user-agent").is_some_and(|ua| ua.starts_with("voxline-azure/")),
        "{:?}",
        r.headers
    );
    let ssml = r.ssml.as_ref().expect("valid SSML");
    assert_eq!(ssml.voices, vec!["en-US-AriaNeural"]);
    assert_eq!(ssml.language, "en-US");
    assert_eq!(ssml.text, "Hello there.");
}

#[tokio::test]
async fn markup_characters_and_emoji_round_trip_through_the_ssml() {
    let emulator = Emulator::start(Config::default()).await;
    let mut tts = session(&emulator, TtsConfig::new(AudioFormat::MULAW_8K)).await;
    let text = "Tom & Jerry <3 \"quotes\" 'apostrophes' a > b 😀 café\u{7} &amp; </voice>";
    let request = tts.say(text).await.expect("open");
    let out = collect(&mut tts, request).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let requests = emulator.tts().snapshot();
    assert_eq!(requests[0].status, 200, "{:?}", requests[0].rejection);
    let spoken = requests[0].ssml.as_ref().map(|s| s.text.clone());
    // The bell character is removed; everything else arrives as written.
    assert_eq!(spoken.as_deref(), Some(&text.replace('\u{7}', "")[..]));
    assert!(
        requests[0]
            .body
            .contains("Tom &amp; Jerry &lt;3 &quot;quotes&quot;")
    );
}

#[tokio::test]
async fn voice_style_and_prosody_are_in_the_ssml() {
    let emulator = Emulator::start(Config::default()).await;
    let tts = AzureTts::new(config(&emulator))
        .expect("client")
        .with_voice(
            VoiceOptions::new()
                .voice("en-US-JennyNeural")
                .style("customerservice")
                .style_degree(1.2)
                .rate("+10%")
                .pitch("-2st"),
        );
    // The session's voice and language win over the adapter's.
    let mut session = tts
        .connect(
            TtsConfig::new(AudioFormat::PCM16_8K)
                .voice("en-GB-SoniaNeural")
                .language("en-GB"),
        )
        .await
        .expect("session");
    let request = session.say("Your order has shipped.").await.expect("open");
    let out = collect(&mut session, request).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let requests = emulator.tts().snapshot();
    let ssml = requests[0].ssml.clone().expect("valid SSML");
    assert_eq!(ssml.voices, vec!["en-GB-SoniaNeural"]);
    assert_eq!(ssml.language, "en-GB");
    assert_eq!(
        ssml.prosody,
        vec![
            ("rate".to_owned(), "+10%".to_owned()),
            ("pitch".to_owned(), "-2st".to_owned())
        ]
    );
    assert!(
        ssml.express_as
            .contains(&("style".to_owned(), "customerservice".to_owned()))
    );
    assert!(
        ssml.express_as
            .contains(&("styledegree".to_owned(), "1.2".to_owned()))
    );
    assert_eq!(
        ssml.elements,
        vec!["speak", "voice", "mstts:express-as", "prosody"]
    );
}

#[tokio::test]
async fn output_format_follows_the_requested_audio_format() {
    let emulator = Emulator::start(Config::default()).await;
    let mulaw16 = AudioFormat::new(Encoding::Mulaw, 16000);
    let cases = [
        (AudioFormat::MULAW_8K, "raw-8khz-8bit-mono-mulaw"),
        (AudioFormat::ALAW_8K, "raw-8khz-8bit-mono-alaw"),
        (AudioFormat::PCM16_8K, "raw-8khz-16bit-mono-pcm"),
        (AudioFormat::PCM16_16K, "raw-16khz-16bit-mono-pcm"),
        (AudioFormat::PCM16_24K, "raw-24khz-16bit-mono-pcm"),
        // No native mu-law at 16 kHz: PCM at 16 kHz, encoded here.
        (mulaw16, "raw-16khz-16bit-mono-pcm"),
    ];
    for (i, (format, name)) in cases.into_iter().enumerate() {
        let mut tts = session(&emulator, TtsConfig::new(format)).await;
        // 10 characters: 500 ms.
        let request = tts.say("Good day!!").await.expect("open");
        let out = collect(&mut tts, request).await;
        assert!(out.errors.is_empty(), "{format}: {:?}", out.errors);
        assert_eq!(
            emulator.tts().snapshot()[i].output_format.as_deref(),
            Some(name),
            "{format}"
        );
        assert_eq!(
            out.audio.len(),
            format.bytes_in(Duration::from_millis(500)),
            "{format}"
        );
    }
}

#[tokio::test]
async fn each_flushed_sentence_is_one_request() {
    let emulator = Emulator::start(Config::default()).await;
    let mut tts = session(&emulator, TtsConfig::new(AudioFormat::MULAW_8K)).await;
    let request = tts.new_request();
    tts.send_text(request, "Hello ").await.expect("open");
    tts.send_text(request, "there. ").await.expect("open");
    tts.flush(request).await.expect("open");
    tts.send_text(request, "How are you?").await.expect("open");
    tts.finish(request).await.expect("open");
    let out = collect(&mut tts, request).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let texts: Vec<String> = emulator
        .tts()
        .snapshot()
        .into_iter()
        .filter_map(|r| r.ssml.map(|s| s.text))
        .collect();
    assert_eq!(texts, vec!["Hello there. ", "How are you?"]);
    assert_eq!(out.ttfb, 1, "one TTFB per request, not per sentence");
    assert_eq!(out.characters, 13 + 12, "characters sent");
    // The emulator speaks the trimmed text: 12 + 12 characters of 50 ms.
    assert_eq!(out.audio.len(), 24 * 400);
}

#[tokio::test]
async fn cancelling_mid_stream_aborts_the_response() {
    let emulator = Emulator::start(Config {
        chunk_interval: Duration::from_millis(20),
        ..Config::default()
    })
    .await;
    let mut tts = session(&emulator, TtsConfig::new(AudioFormat::MULAW_8K)).await;
    // 200 characters: 10 s of audio in 100 chunks, 2 s to stream.
    let long = "A".repeat(200);
    let first = tts.say(long).await.expect("open");
    loop {
        match tts.recv().await.expect("event") {
            TtsEvent::Audio { request, .. } => {
                assert_eq!(request, first);
                break;
            }
            TtsEvent::Ttfb { .. } | TtsEvent::Usage(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    tts.cancel(first).await.expect("open");
    let second = tts.say("Sorry, go on.").await.expect("open");
    let out = collect(&mut tts, second).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.audio.len(), 13 * 400);

    // The first response was abandoned: the emulator saw its stream end early.
    let mut ends = Vec::new();
    for _ in 0..500 {
        ends = emulator.streams().snapshot();
        if ends.iter().any(|e| e.request == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_end = ends
        .iter()
        .find(|e| e.request == 0)
        .expect("the first stream ended");
    assert!(!first_end.completed, "{first_end:?}");
    assert!(first_end.chunks_sent < first_end.chunks_total);
    assert!(ends.iter().any(|e| e.request == 1 && e.completed));
}

#[tokio::test]
async fn unauthorized_is_permanent() {
    let emulator = Emulator::start(Config::default()).await;
    let tts = AzureTts::new(config(&emulator).key("wrong-key")).expect("client");
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    let request = session.say("Hello.").await.expect("open");
    let out = collect(&mut session, request).await;
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].kind, ErrorKind::Auth);
    assert_eq!(out.errors[0].status, Some(401));
    assert!(!out.errors[0].is_retryable());
    assert!(out.audio.is_empty());
    assert_eq!(emulator.tts().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn invalid_ssml_400_is_permanent() {
    let emulator = Emulator::start(Config::default()).await;
    // An empty voice name gives `<voice name="">`, which the service refuses.
    let tts = AzureTts::new(config(&emulator))
        .expect("client")
        .with_voice(VoiceOptions::new().voice(""));
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    let request = session.say("Hello.").await.expect("open");
    let out = collect(&mut session, request).await;
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].kind, ErrorKind::BadRequest);
    assert_eq!(out.errors[0].status, Some(400));
    assert_eq!(emulator.tts().len(), 1);
    // The session still works for the next request.
    let tts = AzureTts::new(config(&emulator)).expect("client");
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    let request = session.say("Hello.").await.expect("open");
    assert!(collect(&mut session, request).await.errors.is_empty());
}

#[tokio::test(start_paused = true)]
async fn rate_limits_are_retried_after_retry_after() {
    let emulator = Emulator::start(Config::default().faults(Faults::fail(429, 2))).await;
    let mut tts = session(&emulator, TtsConfig::new(AudioFormat::MULAW_8K)).await;
    let started = tokio::time::Instant::now();
    let request = tts.say("Hello.").await.expect("open");
    let out = collect(&mut tts, request).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.audio.len(), 6 * 400);
    let statuses: Vec<u16> = emulator.tts().snapshot().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 200]);
    // Retry-After: 1 replaced the 100 ms / 200 ms backoff.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_bounded_backoff() {
    let emulator = Emulator::start(Config::default().faults(Faults::fail(500, 10))).await;
    let mut tts = session(&emulator, TtsConfig::new(AudioFormat::MULAW_8K)).await;
    let started = tokio::time::Instant::now();
    let request = tts.say("Hello.").await.expect("open");
    let out = collect(&mut tts, request).await;
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].kind, ErrorKind::Server);
    assert!(out.errors[0].is_retryable());
    assert_eq!(emulator.tts().len(), 3, "three attempts in all");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(1),
        "100 + 200 ms of backoff, got {elapsed:?}"
    );
}

#[tokio::test]
async fn a_cut_response_fails_its_request_only() {
    // Chunks spaced out so that the first two reach the client before the cut.
    let emulator = Emulator::start(Config {
        chunk_interval: Duration::from_millis(10),
        ..Config::default().faults(Faults::disconnect_after(2))
    })
    .await;
    let mut tts = session(&emulator, TtsConfig::new(AudioFormat::MULAW_8K)).await;
    let request = tts.say("A".repeat(20)).await.expect("open");
    let out = collect(&mut tts, request).await;
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert_eq!(out.errors[0].kind, ErrorKind::Connection);
    assert_eq!(out.audio.len(), 2 * 800, "the two chunks before the cut");
    assert_eq!(emulator.tts().len(), 1, "audio was delivered: no retry");
    let request = tts.say("Again.").await.expect("open");
    let out = collect(&mut tts, request).await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.audio.len(), 6 * 400);
}

#[tokio::test]
async fn exchanged_tokens_are_sent_as_bearer_and_reused() {
    let emulator = Emulator::start(Config::default()).await;
    let tts = AzureTts::new(config(&emulator).exchange_token(true)).expect("client");
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    for _ in 0..2 {
        let request = session.say("Hi.").await.expect("open");
        assert!(collect(&mut session, request).await.errors.is_empty());
    }
    let tokens = emulator.tokens().snapshot();
    assert_eq!(tokens.len(), 1, "the token is reused");
    assert_eq!(tokens[0].auth, Auth::Key(emulator.key().to_owned()));
    let token = tokens[0].token.clone().expect("issued");
    for r in emulator.tts().snapshot() {
        assert_eq!(r.auth, Auth::Bearer(token.clone()));
    }
}

#[tokio::test]
async fn a_refused_bearer_token_is_an_auth_error() {
    let emulator = Emulator::start(Config::default()).await;
    let tts = AzureTts::new(
        AzureConfig::new()
            .token("not-issued")
            .base_url(emulator.url()),
    )
    .expect("client");
    let mut session = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("session");
    let request = session.say("Hi.").await.expect("open");
    let out = collect(&mut session, request).await;
    assert_eq!(out.errors.first().map(|e| e.kind), Some(ErrorKind::Auth));
    assert_eq!(
        emulator.tts().snapshot()[0].auth,
        Auth::Bearer("not-issued".into())
    );
}

#[tokio::test]
async fn no_credentials_fail_at_connect() {
    // A token of whitespace counts as none; the key is looked up in the environment
    // only when the config has none, so give an empty one explicitly.
    let tts = AzureTts::new(
        AzureConfig::new()
            .key(" ")
            .token(" ")
            .base_url("http://127.0.0.1:9"),
    )
    .expect("client");
    let error = tts
        .connect(TtsConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("no key");
    assert_eq!(error.kind, ErrorKind::Auth);
}

#[tokio::test(start_paused = true)]
async fn ttfb_measures_the_provider_latency() {
    let emulator =
        Emulator::start(Config::default().faults(Faults::latency(Duration::from_millis(300))))
            .await;
    let mut tts = session(&emulator, TtsConfig::new(AudioFormat::MULAW_8K)).await;
    let request = tts.say("Hello.").await.expect("open");
    let mut ttfb = None;
    loop {
        match tts.recv().await.expect("event") {
            TtsEvent::Ttfb { ttfb: t, .. } => ttfb = Some(t.latency),
            TtsEvent::Done { request: r } if r == request => break,
            _ => {}
        }
    }
    let ttfb = ttfb.expect("a TTFB mark");
    assert!(
        ttfb >= Duration::from_millis(300) && ttfb < Duration::from_secs(1),
        "{ttfb:?}"
    );
}
