//! The `echo-bot` binary as a user runs it: JSON logs carry the call id on every line
//! of a call, DTMF is logged, an inbound `clear` stops a replay, SIGTERM drains.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::callsim::{self, Audio, Dialect, Scenario};
use voxline_testkit::process::{self, ServerProcess};

/// Starts the echo-bot on a free port with JSON logs; returns it and its port.
fn start(extra: &[&str]) -> (ServerProcess, u16) {
    let port = process::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_echo-bot"));
    command.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--log-format",
        "json",
        "--shutdown-grace-secs",
        "2",
    ]);
    command.args(extra);
    (
        ServerProcess::spawn(command, port).expect("echo-bot starts"),
        port,
    )
}

async fn wait_ready(server: &ServerProcess) {
    assert!(
        server.wait_listening().await,
        "echo-bot did not start listening"
    );
}

/// SIGTERM, then the exit status and every log line (each must be JSON).
fn stop(server: ServerProcess) -> (std::process::ExitStatus, Vec<serde_json::Value>) {
    let (status, lines) = server.stop().expect("stop");
    let lines = process::json_lines(&lines).unwrap_or_else(|e| panic!("{e}"));
    (status, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_call_id_and_sigterm_drains() {
    let (child, port) = start(&["--silence-ms", "500"]);
    wait_ready(&child).await;
    let hello = speech::load("caller_en_gb", 8000, Variant::Clean);
    let first = &hello.utterances[0];
    let utterance =
        hello.samples[(first.start_ms * 8.0) as usize..(first.end_ms * 8.0) as usize].to_vec();
    let report = callsim::run_scenario(
        Scenario::new(format!("ws://127.0.0.1:{port}/media"), Dialect::Exotel)
            .silence(Duration::from_millis(300))
            .play(Audio::from_samples(utterance, 8000))
            .wait_for_audio(Duration::from_secs(5))
            .wait_until_quiet(Duration::from_secs(10))
            .dtmf('7')
            .wait(Duration::from_millis(300))
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert!(report.passed(), "{report}");
    let call_id = report.call.ids.call_id.clone();

    let (status, lines) = stop(child);
    assert!(
        status.success(),
        "echo-bot exits cleanly on SIGTERM: {status}"
    );
    let in_call: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["name"] == "call")
        .collect();
    let started = in_call
        .iter()
        .position(|l| l["fields"]["message"] == "call started")
        .expect("a 'call started' line");
    assert!(
        in_call[started..]
            .iter()
            .all(|l| l["span"]["call_id"] == call_id.as_str()),
        "every line of the call after its start names it"
    );
    assert!(
        in_call.iter().any(|l| l["fields"]["digit"] == "7"),
        "the key press is logged"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "echo bot stopped")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_clear_stops_the_replay() {
    let (child, port) = start(&["--silence-ms", "300"]);
    wait_ready(&child).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/twilio"))
        .await
        .expect("upgrade");
    let send = |v: serde_json::Value| Message::text(v.to_string());
    socket
        .send(send(
            serde_json::json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        ))
        .await
        .expect("send");
    socket
        .send(send(serde_json::json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
            "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA-clear", "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})))
        .await
        .expect("send");
    // An utterance, then silence, sent as fast as the socket takes it: turn detection
    // runs on audio time.
    let hello = speech::load("caller_en_gb", 8000, Variant::Clean);
    let first = &hello.utterances[0];
    let mut pcm =
        hello.samples[(first.start_ms * 8.0) as usize..(first.end_ms * 8.0) as usize].to_vec();
    pcm.extend(vec![0i16; 8_000]);
    let mut codes = Vec::new();
    voxline_audio::g711::mulaw::encode(&pcm, &mut codes);
    for (i, frame) in codes.chunks(160).enumerate() {
        let payload = base64::engine::general_purpose::STANDARD.encode(frame);
        socket
            .send(send(serde_json::json!({"event": "media", "sequenceNumber": (i + 2).to_string(), "streamSid": "MZ1",
                "media": {"track": "inbound", "chunk": (i + 1).to_string(), "timestamp": (i * 20).to_string(), "payload": payload}})))
            .await
            .expect("send");
    }
    // The replay starts...
    let mut media = 0;
    while media < 5 {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("replay")
            .expect("open")
            .expect("frame");
        if message
            .to_text()
            .unwrap_or("")
            .contains(r#""event":"media""#)
        {
            media += 1;
        }
    }
    // ...a peer clears it: the bot acknowledges with its own clear and stops sending.
    socket
        .send(send(
            serde_json::json!({"event": "clear", "streamSid": "MZ1"}),
        ))
        .await
        .expect("send");
    let mut cleared = false;
    let mut after_clear = 0;
    let quiet = tokio::time::timeout(Duration::from_millis(800), async {
        while let Some(Ok(message)) = socket.next().await {
            let text = message.to_text().unwrap_or("").to_owned();
            if text.contains(r#""event":"clear""#) {
                cleared = true;
            } else if cleared && text.contains(r#""event":"media""#) {
                after_clear += 1;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "the socket stays open");
    assert!(cleared, "the bot sends its own clear");
    assert_eq!(after_clear, 0, "no replay audio after the clear");
    let (status, _) = stop(child);
    assert!(status.success());
}
