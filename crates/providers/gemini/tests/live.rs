//! The Gemini Live adapter against the emulator on 127.0.0.1 (paused tokio time: the
//! emulator paces its replies on tokio's clock, so these run fast and deterministic).

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use voxline_audio::{AudioFormat, Transcoder, g711};
use voxline_core::{
    ErrorKind, ProviderError, RealtimeConfig, RealtimeEvent, RealtimeEvents, RealtimeModel,
    RealtimeSender, RealtimeSession, RetryPolicy, ToolDefinition, UsageKind,
};
use voxline_fixtures::analysis::{sine_fit, sine_i16, to_f64};
use voxline_gemini::{Gemini, GeminiConfig, Watchdog};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::gemini::{GeminiEmulator, Options, Turn};

const KEY: &str = "test-key";
const FRAME: Duration = Duration::from_millis(20);

fn config(emulator: &GeminiEmulator) -> GeminiConfig {
    GeminiConfig::default()
        .api_key(KEY)
        .base_url(emulator.ws_url())
        .model("gemini-test-native-audio")
        .retry(RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        })
        .watchdog(None)
}

fn phone() -> RealtimeConfig {
    RealtimeConfig::new(AudioFormat::MULAW_8K)
        .instructions("You are a phone agent.")
        .voice("Charon")
}

/// `speech` of a 300 Hz tone then `silence`, as 20 ms frames of 8 kHz mu-law.
fn utterance(speech: Duration, silence: Duration) -> Vec<Bytes> {
    let n = AudioFormat::MULAW_8K.samples_in(speech);
    let tone = sine_i16(300.0, 8000.0, 8000.0, n);
    let mut bytes = Vec::new();
    g711::mulaw::encode(&tone, &mut bytes);
    bytes.extend(std::iter::repeat_n(
        0xFF,
        AudioFormat::MULAW_8K.bytes_in(silence),
    ));
    bytes.chunks(160).map(Bytes::copy_from_slice).collect()
}

/// Sends frames in real time (tokio clock).
async fn feed(sender: &RealtimeSender, frames: &[Bytes]) {
    for f in frames {
        sender.send_audio(f.clone()).await.expect("session open");
        tokio::time::sleep(FRAME).await;
    }
}

/// Collects events until `stop` matches one (included) or 120 s of tokio time pass.
async fn until(
    events: &mut RealtimeEvents,
    stop: impl Fn(&RealtimeEvent) -> bool,
) -> Vec<RealtimeEvent> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(e) = events.recv().await {
            let done = stop(&e);
            out.push(e);
            if done {
                break;
            }
        }
    })
    .await;
    out
}

fn audio_bytes(events: &[RealtimeEvent]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            RealtimeEvent::Audio(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

async fn open(emulator: &GeminiEmulator, cfg: GeminiConfig) -> (RealtimeSender, RealtimeEvents) {
    let session: RealtimeSession = Gemini::new(cfg).connect(phone()).await.expect("connects");
    let _ = emulator;
    session.split()
}

#[tokio::test(start_paused = true)]
async fn setup_is_sent_first_with_key_header_and_connect_waits_for_setup_complete() {
    let emulator = GeminiEmulator::start(Options::default()).await;
    let (_sender, _events) = open(&emulator, config(&emulator)).await;
    let hs = emulator.handshakes();
    assert_eq!(hs.len(), 1);
    assert_eq!(
        hs[0].path,
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    );
    assert_eq!(hs[0].header("x-goog-api-key"), Some(KEY));
    assert_eq!(hs[0].query, None, "the key goes in the header, not the URL");
    // connect resolved: setupComplete had been sent.
    assert!(!emulator.sent_with("setupComplete").is_empty());
    let received = emulator.received();
    assert!(!received[0].binary, "client JSON goes in text frames");
    let (_, setup) = &emulator.setups()[0];
    assert_eq!(setup["model"], "models/gemini-test-native-audio");
    assert_eq!(
        setup["generationConfig"]["responseModalities"],
        json!(["AUDIO"])
    );
    assert_eq!(
        setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"],
        "Charon"
    );
    assert_eq!(
        setup["systemInstruction"]["parts"][0]["text"],
        "You are a phone agent."
    );
    assert_eq!(setup["inputAudioTranscription"], json!({}));
    assert_eq!(setup["outputAudioTranscription"], json!({}));
    assert_eq!(setup["sessionResumption"], json!({}));
}

#[tokio::test(start_paused = true)]
async fn audio_both_ways_at_the_right_rates_with_transcripts_usage_and_ttfb() {
    let script = vec![
        Turn::new("Your order has shipped.", Duration::from_secs(1)).heard("where is my order"),
    ];
    let emulator = GeminiEmulator::start(Options::with_script(script)).await;
    let (sender, mut events) = open(&emulator, config(&emulator)).await;
    let frames = utterance(Duration::from_millis(800), Duration::from_millis(1200));
    let feeder = tokio::spawn(async move {
        feed(&sender, &frames).await;
        sender
    });
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::Usage(_))).await;
    let _sender = feeder.await.expect("feeder");

    // Caller audio arrived as PCM16 16 kHz, declared so, and nothing was lost.
    let (pcm, mimes) = emulator.audio(0);
    assert_eq!(mimes, vec!["audio/pcm;rate=16000".to_owned()]);
    let sent_secs = 2.0;
    let got_secs = pcm.len() as f64 / 32_000.0;
    assert!(
        (got_secs - sent_secs).abs() < 0.02,
        "caller audio {got_secs} s, sent {sent_secs} s"
    );

    // Model audio: 1 s of 440 Hz at 24 kHz became 1 s of 440 Hz 8 kHz mu-law.
    let out = audio_bytes(&got);
    let out_secs = out.len() as f64 / 8000.0;
    assert!((out_secs - 1.0).abs() < 0.01, "reply lasted {out_secs} s");
    let mut samples = Vec::new();
    g711::mulaw::decode(&out, &mut samples);
    let middle = &to_f64(&samples)[2000..6000];
    let right = sine_fit(middle, 440.0, 8000.0);
    let chipmunk = sine_fit(middle, 440.0 * 3.0, 8000.0);
    assert!(right.snr_db() > 20.0, "440 Hz fit {:.1} dB", right.snr_db());
    assert!(
        chipmunk.snr_db() < 0.0,
        "wrong pitch fits {:.1} dB",
        chipmunk.snr_db()
    );

    assert!(got.contains(&RealtimeEvent::InputTranscript {
        text: "where is my order".into(),
        is_final: true
    }));
    assert!(got.contains(&RealtimeEvent::OutputTranscript {
        text: "Your order has shipped.".into(),
        is_final: false
    }));
    assert!(got.contains(&RealtimeEvent::TurnComplete));
    let ttfb = got.iter().find_map(|e| match e {
        RealtimeEvent::Ttfb(t) => Some(t.latency),
        _ => None,
    });
    // The emulator answers after 500 ms of quiet on the audio clock; the adapter's
    // estimate of the end of speech is the last voiced frame.
    let ttfb = ttfb.expect("a ttfb mark");
    assert!(
        ttfb >= Duration::from_millis(400) && ttfb < Duration::from_millis(900),
        "{ttfb:?}"
    );
    let usage = got.iter().find_map(|e| match e {
        RealtimeEvent::Usage(u) => Some(*u),
        _ => None,
    });
    let usage = usage.expect("usage");
    assert!(usage.reported);
    assert_eq!(
        usage.kind,
        UsageKind::Tokens {
            prompt: 64,
            completion: 32
        }
    );
}

#[tokio::test(start_paused = true)]
async fn barge_in_reports_interrupted_and_drops_the_rest_of_the_turn() {
    let script = vec![Turn::new("A long answer.", Duration::from_secs(4))];
    let emulator = GeminiEmulator::start(Options::with_script(script)).await;
    let (sender, mut events) = open(&emulator, config(&emulator)).await;
    feed(
        &sender,
        &utterance(Duration::from_millis(600), Duration::from_millis(600)),
    )
    .await;
    let first = until(&mut events, |e| matches!(e, RealtimeEvent::Audio(_))).await;
    assert!(first.iter().any(|e| matches!(e, RealtimeEvent::Audio(_))));
    // Half a second into the reply the caller talks over it.
    let barge = utterance(Duration::from_millis(400), Duration::ZERO);
    let feeder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        feed(&sender, &barge).await;
        sender
    });
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::TurnComplete)).await;
    let _sender = feeder.await.expect("feeder");
    let pos = got
        .iter()
        .position(|e| *e == RealtimeEvent::Interrupted)
        .expect("interrupted");
    assert!(
        !got[pos..]
            .iter()
            .any(|e| matches!(e, RealtimeEvent::Audio(_))),
        "audio after the interruption"
    );
    let heard = audio_bytes(&first).len() + audio_bytes(&got).len();
    assert!(
        heard < 8000 * 2,
        "most of the 4 s reply was cut: got {heard} bytes"
    );
    assert_eq!(
        emulator
            .sent_with("serverContent")
            .iter()
            .filter(|(_, m)| m["serverContent"]["interrupted"] == true)
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn tool_call_round_trip() {
    let script = vec![
        Turn::new("It has shipped.", Duration::from_millis(500))
            .tool_call("lookup_order", json!({"order_id": "A1"})),
    ];
    let emulator = GeminiEmulator::start(Options::with_script(script)).await;
    let tool = ToolDefinition {
        name: "lookup_order".into(),
        description: "Finds an order.".into(),
        parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
    };
    let session = Gemini::new(config(&emulator))
        .connect(phone().tools(vec![tool]))
        .await
        .expect("connects");
    let (sender, mut events) = session.split();
    sender.send_text("where is order A1?").await.expect("open");
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::ToolCall(_))).await;
    let Some(RealtimeEvent::ToolCall(call)) = got.last() else {
        panic!("no tool call: {got:?}");
    };
    assert_eq!(call.name, "lookup_order");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&call.arguments).expect("json"),
        json!({"order_id": "A1"})
    );
    sender
        .send_tool_result(call.id.clone(), r#"{"status":"shipped"}"#)
        .await
        .expect("open");
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::TurnComplete)).await;
    assert!((audio_bytes(&got).len() as f64 / 8000.0 - 0.5).abs() < 0.01);
    let (_, setup) = &emulator.setups()[0];
    assert_eq!(
        setup["tools"][0]["functionDeclarations"][0]["name"],
        "lookup_order"
    );
    let responses: Vec<_> = emulator
        .received()
        .into_iter()
        .filter(|r| r.json.get("toolResponse").is_some())
        .collect();
    assert_eq!(responses.len(), 1);
    let fr = &responses[0].json["toolResponse"]["functionResponses"][0];
    assert_eq!(fr["id"], call.id.as_str());
    assert_eq!(fr["name"], "lookup_order");
    assert_eq!(fr["response"], json!({"status": "shipped"}));
    assert!(
        emulator
            .received()
            .iter()
            .any(|r| r.json["realtimeInput"]["text"] == "where is order A1?")
    );
}

#[tokio::test(start_paused = true)]
async fn go_away_rotates_the_connection_with_the_handle_and_loses_no_caller_audio() {
    let options = Options {
        go_away_after: Some(Duration::from_secs(2)),
        go_away_notice: Duration::from_secs(5),
        ..Options::default()
    };
    let emulator = GeminiEmulator::start(options).await;
    let (sender, mut events) = open(&emulator, config(&emulator)).await;
    // 3 s of steady quiet-ish audio spanning the rotation.
    let frames = utterance(Duration::ZERO, Duration::from_secs(3));
    let all: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
    let feeder = tokio::spawn(async move {
        feed(&sender, &frames).await;
        sender
    });
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::Reconnected)).await;
    assert!(got.contains(&RealtimeEvent::Reconnected));
    assert!(
        !got.iter().any(|e| matches!(e, RealtimeEvent::Error(_))),
        "a planned rotation is no error: {got:?}"
    );
    let _sender = feeder.await.expect("feeder");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let setups = emulator.setups();
    assert_eq!(setups.len(), 2);
    let issued: Vec<String> = emulator
        .sent_with("sessionResumptionUpdate")
        .into_iter()
        .filter(|(c, _)| *c == 0)
        .map(|(_, m)| {
            m["sessionResumptionUpdate"]["newHandle"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        setups[1].1["sessionResumption"]["handle"],
        issued.last().expect("a handle").as_str()
    );

    let mut pcm = emulator.audio(0).0;
    pcm.extend(emulator.audio(1).0);
    let mut expected = Vec::new();
    Transcoder::new(AudioFormat::MULAW_8K, AudioFormat::PCM16_16K)
        .expect("transcoder")
        .process(&all, &mut expected);
    assert_eq!(
        pcm.len(),
        expected.len(),
        "caller audio lost or duplicated across the rotation"
    );
    assert_eq!(pcm, expected);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_resumed_and_reported() {
    let emulator =
        GeminiEmulator::start(Options::default().faults(Faults::disconnect_after(2))).await;
    let (sender, mut events) = open(&emulator, config(&emulator)).await;
    let frames = utterance(Duration::from_millis(600), Duration::from_millis(800));
    let feeder = tokio::spawn(async move {
        feed(&sender, &frames).await;
        sender
    });
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::Reconnected)).await;
    let _sender = feeder.await.expect("feeder");
    let err = got.iter().find_map(|e| match e {
        RealtimeEvent::Error(e) => Some(e.clone()),
        _ => None,
    });
    assert!(err.expect("the drop is reported").is_retryable());
    assert!(got.contains(&RealtimeEvent::Reconnected));
    let setups = emulator.setups();
    assert_eq!(setups.len(), 2);
    assert!(
        setups[1].1["sessionResumption"]["handle"]
            .as_str()
            .is_some_and(|h| h.starts_with("handle-"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_1007_at_setup_is_a_permanent_error_and_is_not_retried() {
    let emulator = GeminiEmulator::start(Options::default()).await;
    let err: ProviderError = Gemini::new(config(&emulator).api_key("wrong-key"))
        .connect(phone())
        .await
        .expect_err("refused");
    assert_eq!(err.status, Some(1007));
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("API key not valid"), "{err}");
    assert_eq!(
        emulator.handshakes().len(),
        1,
        "retried a permanent failure"
    );

    // A malformed setup (empty model name) likewise.
    let err = Gemini::new(config(&emulator).model(""))
        .connect(phone())
        .await
        .expect_err("refused");
    assert_eq!((err.status, err.kind), (Some(1007), ErrorKind::BadRequest));
    assert_eq!(emulator.handshakes().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn handshake_errors_401_permanent_429_and_5xx_retried_with_bounded_backoff() {
    let emulator = GeminiEmulator::start(Options::default().faults(Faults::fail(401, 1))).await;
    let err = Gemini::new(config(&emulator))
        .connect(phone())
        .await
        .expect_err("401");
    assert_eq!((err.kind, err.status), (ErrorKind::Auth, Some(401)));
    assert_eq!(emulator.handshakes().len(), 1);

    let emulator = GeminiEmulator::start(Options::default().faults(Faults::fail(429, 2))).await;
    let started = tokio::time::Instant::now();
    let session = Gemini::new(config(&emulator)).connect(phone()).await;
    assert!(session.is_ok(), "third attempt succeeds");
    assert_eq!(emulator.handshakes().len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "backoff 100 + 200 ms"
    );

    let emulator = GeminiEmulator::start(Options::default().faults(Faults::fail(503, 10))).await;
    let err = Gemini::new(config(&emulator))
        .connect(phone())
        .await
        .expect_err("503");
    assert_eq!((err.kind, err.status), (ErrorKind::Server, Some(503)));
    assert_eq!(
        emulator.handshakes().len(),
        3,
        "bounded by the retry policy"
    );
}

#[tokio::test(start_paused = true)]
async fn watchdog_nudges_then_resumes_when_the_model_goes_silent_after_an_interruption() {
    let options = Options {
        silent_after_interrupt: true,
        script: vec![
            Turn::new("A long answer.", Duration::from_secs(4)),
            Turn::new("Sorry, go on.", Duration::from_millis(600)),
        ],
        ..Options::default()
    };
    let emulator = GeminiEmulator::start(options).await;
    let cfg = config(&emulator).watchdog(Some(Watchdog {
        timeout: Duration::from_secs(3),
        nudge_text: "(nudge)".into(),
    }));
    let (sender, mut events) = open(&emulator, cfg).await;
    feed(
        &sender,
        &utterance(Duration::from_millis(600), Duration::from_millis(600)),
    )
    .await;
    until(&mut events, |e| matches!(e, RealtimeEvent::Audio(_))).await;
    let feeder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        feed(
            &sender,
            &utterance(Duration::from_millis(500), Duration::from_secs(9)),
        )
        .await;
        sender
    });
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::Interrupted)).await;
    assert!(got.contains(&RealtimeEvent::Interrupted));
    // The emulator now ignores the caller; the watchdog nudges, then reconnects.
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::TurnComplete)).await;
    let got2 = until(&mut events, |e| matches!(e, RealtimeEvent::Audio(_))).await;
    let _sender = feeder.await.expect("feeder");
    assert!(
        got.iter()
            .chain(&got2)
            .any(|e| *e == RealtimeEvent::Reconnected),
        "{got:?} {got2:?}"
    );
    assert!(
        got2.iter().any(|e| matches!(e, RealtimeEvent::Audio(_))),
        "the resumed session answers"
    );
    let nudges: Vec<usize> = emulator
        .received()
        .iter()
        .filter(|r| r.json["realtimeInput"]["text"] == "(nudge)")
        .map(|r| r.connection)
        .collect();
    assert_eq!(
        nudges,
        vec![0, 1],
        "nudge on the silent connection, then on the resumed one"
    );
    let setups = emulator.setups();
    assert!(setups[1].1["sessionResumption"]["handle"].is_string());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_session_closes_the_socket_cleanly() {
    let emulator = GeminiEmulator::start(Options::default()).await;
    let (sender, events) = open(&emulator, config(&emulator)).await;
    drop(sender);
    drop(events);
    for _ in 0..50 {
        if !emulator.client_closes().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(emulator.client_closes(), vec![(0, Some(1000))]);
}

#[tokio::test(start_paused = true)]
async fn vertex_uses_its_path_bearer_token_and_model_resource_name() {
    let emulator = GeminiEmulator::start(Options::default()).await;
    let cfg = GeminiConfig::default()
        .model("gemini-live-2.5-flash-native-audio")
        .vertex("proj-1", "us-central1", KEY)
        .base_url(emulator.ws_url())
        .watchdog(None);
    let _session = Gemini::new(cfg).connect(phone()).await.expect("connects");
    let hs = &emulator.handshakes()[0];
    assert_eq!(
        hs.path,
        "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    );
    assert_eq!(hs.header("authorization"), Some("Bearer test-key"));
    assert_eq!(hs.header("x-goog-api-key"), None);
    assert_eq!(
        emulator.setups()[0].1["model"],
        "projects/proj-1/locations/us-central1/publishers/google/models/gemini-live-2.5-flash-native-audio"
    );
}

#[tokio::test(start_paused = true)]
async fn a_local_interrupt_stops_delivery_of_the_current_reply() {
    let script = vec![
        Turn::new("A long answer.", Duration::from_secs(3)),
        Turn::new("Next.", Duration::from_millis(400)),
    ];
    let emulator = GeminiEmulator::start(Options::with_script(script)).await;
    let (sender, mut events) = open(&emulator, config(&emulator)).await;
    sender.send_text("tell me everything").await.expect("open");
    until(&mut events, |e| matches!(e, RealtimeEvent::Audio(_))).await;
    sender.interrupt().await.expect("open");
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::TurnComplete)).await;
    let late = audio_bytes(&got).len();
    // At most what was already queued in the channel when the interrupt was read.
    assert!(
        late < 8000 / 2,
        "{late} bytes of the cancelled reply delivered"
    );
    // The next turn plays normally.
    sender.send_text("and then?").await.expect("open");
    let got = until(&mut events, |e| matches!(e, RealtimeEvent::TurnComplete)).await;
    assert!((audio_bytes(&got).len() as f64 / 8000.0 - 0.4).abs() < 0.01);
}

/// Regression (found by the bridge's load run): the model answers 500 ms after the
/// caller stops, before the adapter's own 700 ms end-of-speech estimate; that estimate,
/// reached during the reply, must not be kept as the start of the next turn, or the next
/// turn's time to first audio counts the whole exchange.
#[tokio::test(start_paused = true)]
async fn a_quick_answer_does_not_leave_a_stale_turn_end_for_the_next_ttfb() {
    let script = vec![
        Turn::new("First answer.", Duration::from_millis(1500)).heard("first"),
        Turn::new("Second answer.", Duration::from_millis(500)).heard("second"),
    ];
    let emulator = GeminiEmulator::start(Options::with_script(script)).await;
    let (sender, mut events) = open(&emulator, config(&emulator)).await;
    let mut frames = utterance(Duration::from_millis(800), Duration::from_millis(3000));
    frames.extend(utterance(
        Duration::from_millis(800),
        Duration::from_millis(2000),
    ));
    let feeder = tokio::spawn(async move {
        feed(&sender, &frames).await;
        sender
    });
    let completes = std::cell::Cell::new(0);
    let got = until(&mut events, |e| {
        if matches!(e, RealtimeEvent::TurnComplete) {
            completes.set(completes.get() + 1);
        }
        completes.get() == 2
    })
    .await;
    let _sender = feeder.await.expect("feeder");
    let ttfbs: Vec<Duration> = got
        .iter()
        .filter_map(|e| match e {
            RealtimeEvent::Ttfb(t) => Some(t.latency),
            _ => None,
        })
        .collect();
    assert_eq!(ttfbs.len(), 2, "{got:?}");
    for ttfb in ttfbs {
        assert!(
            ttfb >= Duration::from_millis(400) && ttfb < Duration::from_millis(900),
            "{ttfb:?}"
        );
    }
}
