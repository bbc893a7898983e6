//! Time to the first token of a streamed chat reply against the OpenAI emulator in the
//! same process, back to back or with an idle gap before each request.
//!
//! The agent benchmark (`cargo xtask load-agent`) counts the model's time to first
//! token as the provider's, not Voxline's. This shows how much of that time, with an
//! emulator that answers at once, is the machine rather than either side's code: the
//! same exchange is timed with the CPU busy (no gap) and after it has idled.
//!
//! ```text
//! cargo build --release -p voxline-openai --example chat_round_trip
//! taskset -c 0 target/release/examples/chat_round_trip --requests 500 --gap-ms 0
//! taskset -c 0 target/release/examples/chat_round_trip --requests 200 --gap-ms 20
//! ```

use std::time::{Duration, Instant};

use voxline_core::{ChatMessage, ChatRequest, LanguageModel, LlmEvent};
use voxline_openai::{ApiConfig, ChatConfig, OpenAiChat};
use voxline_testkit::callsim::Percentiles;
use voxline_testkit::emulators::openai::{self, ChatScript, OpenAiEmulator};

fn parse_args() -> Result<(usize, u64), String> {
    let (mut requests, mut gap_ms) = (500usize, 0u64);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--requests" => requests = value.parse().map_err(|e| bad(&e))?,
            "--gap-ms" => gap_ms = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((requests.max(1), gap_ms))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (requests, gap_ms) = parse_args().map_err(anyhow::Error::msg)?;
    let emulator = OpenAiEmulator::start(openai::Config {
        chat: vec![ChatScript::text(["Sure, ", "I can help."])],
        ..openai::Config::default()
    })
    .await;
    let chat = OpenAiChat::new(ChatConfig::with_api(
        ApiConfig::new(emulator.base_url()).api_key(openai::API_KEY),
        "gpt-4.1-mini",
    ))?;
    let mut firsts = Vec::with_capacity(requests);
    for _ in 0..requests {
        if gap_ms > 0 {
            tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        }
        let started = Instant::now();
        let mut stream = chat
            .stream(ChatRequest::new(vec![
                ChatMessage::system("You are a helpful voice agent on a phone call."),
                ChatMessage::user("Hello, yes, I can talk now."),
            ]))
            .await?;
        let mut first = None;
        while let Some(event) = stream.recv().await {
            if first.is_none() && matches!(event, LlmEvent::TextDelta(_)) {
                first = Some(started.elapsed());
            }
        }
        let first = first.ok_or_else(|| anyhow::anyhow!("a reply without text"))?;
        firsts.push(first.as_secs_f64() * 1000.0);
    }
    let p = Percentiles::of_millis(&firsts);
    println!(
        "{requests} requests, {gap_ms} ms idle before each: first token p50 {:.0} us, p90 {:.0} us, p99 {:.0} us",
        p.p50_ms * 1000.0,
        p.p90_ms * 1000.0,
        p.p99_ms * 1000.0
    );
    Ok(())
}
