//! Run with `cargo run --example openai`
//!
//! Shows the three OpenAI adapters on one phone call's worth of work: a streamed chat
//! reply (tokens printed as they arrive, a tool call, time to first token, token
//! usage), the transcription of the caller's first utterance from
//! `caller_en_us_8k.wav` sent as 8 kHz mu-law, and one sentence synthesised to 8 kHz
//! mu-law (bytes, duration, time to first audio).
//!
//! With `OPENAI_API_KEY` set it talks to the real API; otherwise it starts the OpenAI
//! emulator on 127.0.0.1, scripted with a reply that calls a tool and with the
//! fixture's labelled text as the transcript.

use std::io::Write;

use bytes::Bytes;
use voxline_core::{
    ChatMessage, ChatRequest, LanguageModel, LlmEvent, SpeechToText, SttConfig, SttEvent,
    TextToSpeech, TtsConfig, TtsEvent,
};
use voxline_fixtures::speech::{self, Variant};
use voxline_openai::audio::{AudioFormat, Transcoder};
use voxline_openai::{
    ApiConfig, ChatConfig, OpenAiChat, OpenAiSpeech, OpenAiTranscription, SpeechConfig,
    TranscriptionConfig, function_tool,
};
use voxline_testkit::emulators::openai::{self as emulator, ChatScript, ScriptedToolCall};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let caller = speech::load("caller_en_us", 8000, Variant::Clean);
    let first = &caller.utterances[0];

    // The real API when a key is set, else the emulator.
    let _emulator;
    let api = if std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.is_empty()) {
        println!("Using the OpenAI API");
        ApiConfig::openai()
    } else {
        let running = emulator::OpenAiEmulator::start(emulator::Config {
            chat: vec![
                ChatScript::tool_calls(vec![ScriptedToolCall::new(
                    "call_1",
                    "lookup_order",
                    ["{\"order", "_id\":\"A1\"}"],
                )])
                .preceded_by("Let me check that order for you."),
            ],
            transcripts: vec![first.text.clone()],
            ..emulator::Config::default()
        })
        .await;
        println!(
            "No OPENAI_API_KEY: using the emulator at {}",
            running.base_url()
        );
        let api = ApiConfig::new(running.base_url()).api_key(emulator::API_KEY);
        _emulator = running;
        api
    };

    // 1. A streamed chat reply.
    let chat = OpenAiChat::new(ChatConfig::with_api(api.clone(), "gpt-4.1-mini"))?;
    let request = ChatRequest::new(vec![
        ChatMessage::system("You are a phone agent. Be brief."),
        ChatMessage::user("Where is my order A1?"),
    ])
    .tools(vec![function_tool(
        "lookup_order",
        "Finds an order by id",
        r#"{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}"#,
    )?])
    .max_tokens(100);
    let mut stream = chat.stream(request).await?;
    print!("chat: ");
    while let Some(event) = stream.recv().await {
        match event {
            LlmEvent::TextDelta(text) => print!("{text}"),
            LlmEvent::ToolCall(call) => print!("\n  tool call {}({})", call.name, call.arguments),
            LlmEvent::Ttfb(t) => print!("[first token after {:?}] ", t.latency),
            LlmEvent::Finished(reason) => print!("\n  finished: {reason:?}"),
            LlmEvent::Usage(usage) => print!("\n  usage: {:?}", usage.kind),
            LlmEvent::Error(e) => print!("\n  error: {e}"),
            _ => {}
        }
        std::io::stdout().flush()?;
    }
    println!();

    // 2. The caller's first utterance, as a phone line carries it (8 kHz mu-law).
    let from = (first.start_ms * 8.0) as usize;
    let to = (first.end_ms * 8.0) as usize;
    let pcm: Vec<u8> = caller.samples[from..to]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let mulaw = Transcoder::new(AudioFormat::PCM16_8K, AudioFormat::MULAW_8K)?.convert(&pcm);
    let stt = OpenAiTranscription::new(TranscriptionConfig::with_api(
        api.clone(),
        "gpt-4o-mini-transcribe",
    ))?;
    let session = stt
        .connect(SttConfig::new(AudioFormat::MULAW_8K).language("en-US"))
        .await?;
    for frame in mulaw.chunks(160) {
        session.send_audio(Bytes::copy_from_slice(frame)).await?;
    }
    println!("stt: sent {:.2} s of mu-law", mulaw.len() as f64 / 8000.0);
    for event in session.close().await {
        match event {
            SttEvent::Transcript(t) => {
                println!("  transcript: {:?} (expected {:?})", t.text, first.text)
            }
            SttEvent::Ttfb(t) => println!("  result {:?} after the end of the turn", t.latency),
            SttEvent::Usage(u) => println!("  usage: {:?}", u.kind),
            SttEvent::Error(e) => println!("  error: {e}"),
            _ => {}
        }
    }

    // 3. One sentence to phone audio.
    let tts = OpenAiSpeech::new(SpeechConfig::with_api(api, "gpt-4o-mini-tts"))?;
    let mut session = tts.connect(TtsConfig::new(AudioFormat::MULAW_8K)).await?;
    let sentence = "Your order A1 shipped yesterday.";
    println!("tts: {sentence:?}");
    let request = session.say(sentence).await?;
    let mut bytes = 0;
    while let Some(event) = session.recv().await {
        match event {
            TtsEvent::Audio { audio, .. } => bytes += audio.len(),
            TtsEvent::Ttfb { ttfb, .. } => println!("  first audio after {:?}", ttfb.latency),
            TtsEvent::Usage(u) => println!("  usage: {:?}", u.kind),
            TtsEvent::Error { error, .. } => println!("  error: {error}"),
            TtsEvent::Done { request: done } if done == request => break,
            _ => {}
        }
    }
    let seconds = AudioFormat::MULAW_8K.duration_of(bytes).as_secs_f64();
    println!("  {bytes} bytes of 8 kHz mu-law, {seconds:.2} s");
    Ok(())
}
