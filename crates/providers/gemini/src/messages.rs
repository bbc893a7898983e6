//! The wire messages: the `setup` message and the other client messages built as JSON
//! (camelCase, as the service documents), and the server messages read leniently
//! (camelCase or snake_case, since the service's JSON accepts both spellings).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use voxline_core::{ChatMessage, RealtimeConfig, Role, ToolDefinition};

use crate::config::{EndSensitivity, GeminiConfig, StartSensitivity};

/// The rate the model takes audio in (PCM16 LE mono).
pub(crate) const INPUT_RATE: u32 = 16_000;
/// The rate the model speaks at when the mime type does not say.
pub(crate) const OUTPUT_RATE: u32 = 24_000;

/// The `setup` message. `handle` resumes a previous session.
pub(crate) fn setup(
    config: &GeminiConfig,
    session: &RealtimeConfig,
    handle: Option<&str>,
) -> Value {
    let mut generation = Map::new();
    generation.insert("responseModalities".into(), json!(["AUDIO"]));
    if let Some(t) = session.temperature {
        generation.insert("temperature".into(), json!(t));
    }
    let mut speech = Map::new();
    if let Some(voice) = &session.voice {
        speech.insert(
            "voiceConfig".into(),
            json!({"prebuiltVoiceConfig": {"voiceName": voice}}),
        );
    }
    if let Some(lang) = &config.language_code {
        speech.insert("languageCode".into(), json!(lang));
    }
    if !speech.is_empty() {
        generation.insert("speechConfig".into(), Value::Object(speech));
    }

    let mut setup = Map::new();
    setup.insert("model".into(), json!(config.model_path()));
    setup.insert("generationConfig".into(), Value::Object(generation));
    if let Some(instructions) = &session.instructions {
        setup.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": instructions}]}),
        );
    }
    if !session.tools.is_empty() {
        let declarations: Vec<Value> = session.tools.iter().map(function_declaration).collect();
        setup.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
    }

    let vad = &config.activity_detection;
    let mut detection = Map::new();
    if vad.disabled {
        detection.insert("disabled".into(), json!(true));
    }
    if let Some(s) = vad.start_sensitivity {
        let name = match s {
            StartSensitivity::High => "START_SENSITIVITY_HIGH",
            StartSensitivity::Low => "START_SENSITIVITY_LOW",
        };
        detection.insert("startOfSpeechSensitivity".into(), json!(name));
    }
    if let Some(s) = vad.end_sensitivity {
        let name = match s {
            EndSensitivity::High => "END_SENSITIVITY_HIGH",
            EndSensitivity::Low => "END_SENSITIVITY_LOW",
        };
        detection.insert("endOfSpeechSensitivity".into(), json!(name));
    }
    if let Some(ms) = vad.prefix_padding_ms {
        detection.insert("prefixPaddingMs".into(), json!(ms));
    }
    if let Some(ms) = vad.silence_duration_ms {
        detection.insert("silenceDurationMs".into(), json!(ms));
    }
    if !detection.is_empty() {
        setup.insert(
            "realtimeInputConfig".into(),
            json!({ "automaticActivityDetection": detection }),
        );
    }
    if config.input_transcription {
        setup.insert("inputAudioTranscription".into(), json!({}));
    }
    if config.output_transcription {
        setup.insert("outputAudioTranscription".into(), json!({}));
    }
    if config.session_resumption {
        let mut resumption = Map::new();
        if let Some(h) = handle {
            resumption.insert("handle".into(), json!(h));
        }
        setup.insert("sessionResumption".into(), Value::Object(resumption));
    }
    if let Some(c) = config.compression {
        let mut window = Map::new();
        if let Some(target) = c.target_tokens {
            window.insert("targetTokens".into(), json!(target));
        }
        setup.insert(
            "contextWindowCompression".into(),
            json!({"triggerTokens": c.trigger_tokens, "slidingWindow": window}),
        );
    }
    if handle.is_none() && !session.history.is_empty() && !config.is_vertex() {
        setup.insert(
            "historyConfig".into(),
            json!({"initialHistoryInClientContent": true}),
        );
    }
    json!({ "setup": setup })
}

fn function_declaration(tool: &ToolDefinition) -> Value {
    let mut decl = Map::new();
    decl.insert("name".into(), json!(tool.name));
    decl.insert("description".into(), json!(tool.description));
    if !tool.parameters.is_null() {
        // Tools are described in JSON Schema; the service takes it as is here.
        decl.insert("parametersJsonSchema".into(), tool.parameters.clone());
    }
    Value::Object(decl)
}

/// Seeds the conversation: `clientContent` turns ending with `turnComplete: true`.
/// System and tool messages are skipped (the system prompt goes in `setup`).
pub(crate) fn history(messages: &[ChatMessage]) -> Option<Value> {
    let turns: Vec<Value> = messages
        .iter()
        .filter_map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "model",
                _ => return None,
            };
            (!m.content.is_empty()).then(|| json!({"role": role, "parts": [{"text": m.content}]}))
        })
        .collect();
    (!turns.is_empty()).then(|| json!({"clientContent": {"turns": turns, "turnComplete": true}}))
}

/// One chunk of caller audio (PCM16 LE 16 kHz).
pub(crate) fn audio(pcm: &[u8]) -> Value {
    json!({"realtimeInput": {"audio": {
        "mimeType": format!("audio/pcm;rate={INPUT_RATE}"),
        "data": B64.encode(pcm),
    }}})
}

/// Caller text, as realtime input (not `clientContent`, which must not race audio).
pub(crate) fn text(text: &str) -> Value {
    json!({"realtimeInput": {"text": text}})
}

/// A tool's result. `output` is used as the response object when it is a JSON object,
/// else wrapped as `{"output": ...}`.
pub(crate) fn tool_response(id: Option<&str>, name: &str, output: &str) -> Value {
    let response = match serde_json::from_str::<Value>(output) {
        Ok(Value::Object(o)) => Value::Object(o),
        Ok(other) => json!({ "output": other }),
        Err(_) => json!({ "output": output }),
    };
    let mut fr = Map::new();
    if let Some(id) = id {
        fr.insert("id".into(), json!(id));
    }
    fr.insert("name".into(), json!(name));
    fr.insert("response".into(), response);
    json!({"toolResponse": {"functionResponses": [fr]}})
}

/// A function call the model made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionCall {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) args: String,
}

/// Everything one server message says (several keys may come together).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ServerMessage {
    pub(crate) setup_complete: bool,
    /// Model audio: PCM16 LE bytes and their rate.
    pub(crate) audio: Vec<(Vec<u8>, u32)>,
    pub(crate) input_transcription: Option<(String, bool)>,
    pub(crate) output_transcription: Option<(String, bool)>,
    pub(crate) interrupted: bool,
    pub(crate) generation_complete: bool,
    pub(crate) turn_complete: bool,
    pub(crate) tool_calls: Vec<FunctionCall>,
    pub(crate) cancelled: Vec<String>,
    pub(crate) go_away: Option<Option<Duration>>,
    /// `(newHandle, resumable)`.
    pub(crate) resumption: Option<(String, bool)>,
    /// `(prompt, response)` tokens.
    pub(crate) usage: Option<(u64, u64)>,
    /// An error payload (a body with none of the known keys).
    pub(crate) error: Option<String>,
}

/// A field by its camelCase or snake_case name.
fn get<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(camel).or_else(|| obj.get(&snake(camel)))
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn flag(v: &Value, name: &str) -> bool {
    get(v, name).and_then(Value::as_bool).unwrap_or(false)
}

/// int64 fields arrive as JSON numbers or strings.
fn count(v: &Value, name: &str) -> Option<u64> {
    match get(v, name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `"50s"` / `"1.5s"` (a protobuf Duration in JSON).
fn duration(v: &Value) -> Option<Duration> {
    let secs: f64 = v.as_str()?.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The rate in `audio/pcm;rate=24000`, if any.
pub(crate) fn mime_rate(mime: &str) -> Option<u32> {
    mime.split(';')
        .filter_map(|p| p.trim().strip_prefix("rate="))
        .find_map(|r| r.trim().parse().ok())
}

fn transcription(v: &Value, name: &str) -> Option<(String, bool)> {
    let t = get(v, name)?;
    let text = get(t, "text").and_then(Value::as_str).unwrap_or_default();
    let finished = flag(t, "finished");
    (!text.is_empty() || finished).then(|| (text.to_owned(), finished))
}

impl ServerMessage {
    /// Parses one server message (UTF-8 JSON from a binary or text frame).
    pub(crate) fn parse(data: &[u8]) -> Result<Self, String> {
        let v: Value =
            serde_json::from_slice(data).map_err(|e| format!("server sent invalid JSON: {e}"))?;
        if !v.is_object() {
            return Err("server message is not a JSON object".to_owned());
        }
        let mut m = Self::default();
        let mut known = false;
        if get(&v, "setupComplete").is_some() {
            m.setup_complete = true;
            known = true;
        }
        if let Some(sc) = get(&v, "serverContent") {
            known = true;
            if let Some(parts) = get(sc, "modelTurn")
                .and_then(|t| get(t, "parts"))
                .and_then(Value::as_array)
            {
                for part in parts {
                    let Some(inline) = get(part, "inlineData") else {
                        continue;
                    };
                    let mime = get(inline, "mimeType")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !mime.is_empty() && !mime.starts_with("audio/pcm") {
                        continue;
                    }
                    let data = get(inline, "data")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let pcm = B64
                        .decode(data)
                        .map_err(|e| format!("bad base64 audio from server: {e}"))?;
                    m.audio.push((pcm, mime_rate(mime).unwrap_or(OUTPUT_RATE)));
                }
            }
            m.input_transcription = transcription(sc, "inputTranscription");
            m.output_transcription = transcription(sc, "outputTranscription");
            m.interrupted = flag(sc, "interrupted");
            m.generation_complete = flag(sc, "generationComplete");
            m.turn_complete = flag(sc, "turnComplete");
        }
        if let Some(tc) = get(&v, "toolCall") {
            known = true;
            for call in get(tc, "functionCalls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = get(call, "name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let args = get(call, "args").cloned().unwrap_or_else(|| json!({}));
                m.tool_calls.push(FunctionCall {
                    id: get(call, "id")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                    name: name.to_owned(),
                    args: args.to_string(),
                });
            }
        }
        if let Some(c) = get(&v, "toolCallCancellation") {
            known = true;
            m.cancelled = get(c, "ids")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        if let Some(g) = get(&v, "goAway") {
            known = true;
            m.go_away = Some(get(g, "timeLeft").and_then(duration));
        }
        if let Some(r) = get(&v, "sessionResumptionUpdate") {
            known = true;
            let handle = get(r, "newHandle")
                .and_then(Value::as_str)
                .unwrap_or_default();
            m.resumption = Some((handle.to_owned(), flag(r, "resumable")));
        }
        if let Some(u) = get(&v, "usageMetadata") {
            known = true;
            let prompt = count(u, "promptTokenCount").unwrap_or(0);
            let response = count(u, "responseTokenCount")
                .or_else(|| count(u, "candidatesTokenCount"))
                .unwrap_or(0);
            m.usage = Some((prompt, response));
        }
        if !known {
            // Newer signals (voiceActivity...) are ignored; a body with an error code
            // or message is an error payload.
            let err = get(&v, "error").unwrap_or(&v);
            if get(err, "code").is_some() || get(err, "message").is_some() {
                let msg = get(err, "message")
                    .and_then(Value::as_str)
                    .map_or_else(|| err.to_string(), str::to_owned);
                m.error = Some(msg);
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxline_audio::AudioFormat;

    #[test]
    fn parses_the_spec_server_content_example() {
        let audio = B64.encode([1u8, 0, 2, 0]);
        let raw = format!(
            r#"{{"serverContent":{{
             "modelTurn":{{"parts":[{{"inlineData":{{"mimeType":"audio/pcm;rate=24000","data":"{audio}"}}}}]}},
             "inputTranscription":{{"text":"where is my order","finished":false}},
             "outputTranscription":{{"text":"Let me check"}},
             "interrupted":true,"generationComplete":true,"turnComplete":true,
             "turnCompleteReason":"NEED_MORE_INPUT","waitingForInput":true}}}}"#
        );
        let m = ServerMessage::parse(raw.as_bytes()).expect("parses");
        assert_eq!(m.audio, vec![(vec![1, 0, 2, 0], 24_000)]);
        assert_eq!(
            m.input_transcription,
            Some(("where is my order".to_owned(), false))
        );
        assert_eq!(
            m.output_transcription,
            Some(("Let me check".to_owned(), false))
        );
        assert!(m.interrupted && m.generation_complete && m.turn_complete);
        assert!(!m.setup_complete);
    }

    #[test]
    fn parses_tool_calls_resumption_go_away_and_usage() {
        let m = ServerMessage::parse(
            br#"{"toolCall":{"functionCalls":[{"id":"fc-123","name":"lookup_order","args":{"order_id":"A1"}}]}}"#,
        )
        .expect("parses");
        assert_eq!(
            m.tool_calls,
            vec![FunctionCall {
                id: Some("fc-123".into()),
                name: "lookup_order".into(),
                args: r#"{"order_id":"A1"}"#.into()
            }]
        );
        let m = ServerMessage::parse(br#"{"toolCallCancellation":{"ids":["fc-123"]}}"#)
            .expect("parses");
        assert_eq!(m.cancelled, vec!["fc-123".to_owned()]);
        let m = ServerMessage::parse(br#"{"goAway":{"timeLeft":"50s"}}"#).expect("parses");
        assert_eq!(m.go_away, Some(Some(Duration::from_secs(50))));
        let m = ServerMessage::parse(
            br#"{"sessionResumptionUpdate":{"newHandle":"h-1","resumable":true}}"#,
        )
        .expect("parses");
        assert_eq!(m.resumption, Some(("h-1".to_owned(), true)));
        let m = ServerMessage::parse(
            br#"{"usageMetadata":{"promptTokenCount":120,"responseTokenCount":"45","totalTokenCount":165}}"#,
        )
        .expect("parses");
        assert_eq!(m.usage, Some((120, 45)));
        // Vertex spelling, snake_case.
        let m = ServerMessage::parse(
            br#"{"usage_metadata":{"prompt_token_count":7,"candidates_token_count":3}}"#,
        )
        .expect("parses");
        assert_eq!(m.usage, Some((7, 3)));
        let m = ServerMessage::parse(br#"{"setupComplete":{}}"#).expect("parses");
        assert!(m.setup_complete);
        let m = ServerMessage::parse(br#"{"code":3,"message":"bad"}"#).expect("parses");
        assert_eq!(m.error.as_deref(), Some("bad"));
        assert!(ServerMessage::parse(b"not json").is_err());
        assert!(
            ServerMessage::parse(br#"{"voiceActivity":{}}"#)
                .expect("ok")
                .error
                .is_none()
        );
    }

    #[test]
    fn setup_carries_the_configured_fields() {
        use crate::config::{ActivityDetection, Compression};
        let config = GeminiConfig::default()
            .model("m1")
            .activity_detection(ActivityDetection {
                disabled: false,
                start_sensitivity: Some(StartSensitivity::Low),
                end_sensitivity: Some(EndSensitivity::High),
                prefix_padding_ms: Some(20),
                silence_duration_ms: Some(500),
            })
            .compression(Some(Compression {
                trigger_tokens: 25_600,
                target_tokens: Some(12_800),
            }));
        let session = RealtimeConfig::new(AudioFormat::MULAW_8K)
            .instructions("Be brief.")
            .voice("Charon");
        let s = setup(&config, &session, Some("h-9"));
        let s = &s["setup"];
        assert_eq!(s["model"], "models/m1");
        assert_eq!(
            s["generationConfig"]["responseModalities"],
            json!(["AUDIO"])
        );
        assert_eq!(
            s["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"],
            "Charon"
        );
        assert_eq!(s["systemInstruction"]["parts"][0]["text"], "Be brief.");
        let aad = &s["realtimeInputConfig"]["automaticActivityDetection"];
        assert_eq!(aad["startOfSpeechSensitivity"], "START_SENSITIVITY_LOW");
        assert_eq!(aad["endOfSpeechSensitivity"], "END_SENSITIVITY_HIGH");
        assert_eq!(aad["prefixPaddingMs"], 20);
        assert_eq!(aad["silenceDurationMs"], 500);
        assert_eq!(s["sessionResumption"]["handle"], "h-9");
        assert_eq!(s["contextWindowCompression"]["triggerTokens"], 25_600);
        assert_eq!(
            s["contextWindowCompression"]["slidingWindow"]["targetTokens"],
            12_800
        );
        assert_eq!(s["inputAudioTranscription"], json!({}));
        assert!(s.get("historyConfig").is_none());
    }

    #[test]
    fn tool_responses_and_audio() {
        let r = tool_response(Some("fc-1"), "lookup", r#"{"status":"shipped"}"#);
        assert_eq!(
            r,
            json!({"toolResponse":{"functionResponses":[{"id":"fc-1","name":"lookup","response":{"status":"shipped"}}]}})
        );
        let r = tool_response(None, "lookup", "plain");
        assert_eq!(
            r["toolResponse"]["functionResponses"][0],
            json!({"name":"lookup","response":{"output":"plain"}})
        );
        let a = audio(&[0, 1]);
        assert_eq!(
            a["realtimeInput"]["audio"]["mimeType"],
            "audio/pcm;rate=16000"
        );
        assert_eq!(a["realtimeInput"]["audio"]["data"], "AAE=");
        assert_eq!(mime_rate("audio/pcm;rate=24000"), Some(24_000));
        assert_eq!(mime_rate("audio/pcm"), None);
    }
}
