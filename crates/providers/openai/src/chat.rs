//! Chat Completions (`POST {base}/chat/completions`) streamed over server-sent events.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use voxline_core::{
    BoxFuture, ChatMessage, ChatRequest, ErrorKind, FinishReason, LanguageModel, LlmEvent,
    LlmStream, ProviderError, Role, ToolCall, ToolDefinition, Ttfb, Usage, UsageKind,
};

use crate::http::{Api, ApiConfig, PROVIDER, from_reqwest};
use crate::sse::{SseDecoder, SseEvent};

/// How long a reply's body is read after `[DONE]` to keep its connection for the
/// next request.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_millis(500);
/// How many bytes a reply's body may still carry after `[DONE]` to keep its connection.
const DRAIN_BYTES: usize = 16 * 1024;

/// Which request field carries the token limit. OpenAI's current name is
/// `max_completion_tokens` (required by its reasoning models); some OpenAI-compatible
/// servers only know the older `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenLimitField {
    /// `max_completion_tokens` (OpenAI, current).
    #[default]
    MaxCompletionTokens,
    /// `max_tokens` (deprecated by OpenAI; what older compatible servers read).
    MaxTokens,
}

impl TokenLimitField {
    fn name(self) -> &'static str {
        match self {
            Self::MaxCompletionTokens => "max_completion_tokens",
            Self::MaxTokens => "max_tokens",
        }
    }
}

/// Configuration of [`OpenAiChat`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Server, key and retries.
    pub api: ApiConfig,
    /// The model (`gpt-4.1-mini`, or whatever the compatible server serves).
    pub model: String,
    /// The field name for [`ChatRequest::max_tokens`].
    pub token_limit_field: TokenLimitField,
    /// Ask for the final usage chunk (`stream_options.include_usage`). Turn off only
    /// for servers that reject `stream_options`.
    pub include_usage: bool,
    /// Sent as `parallel_tool_calls` when the request has tools; `None` leaves the
    /// server's default (parallel calls allowed on OpenAI).
    pub parallel_tool_calls: Option<bool>,
    /// Events buffered between the reading task and the consumer.
    pub event_capacity: usize,
}

impl ChatConfig {
    /// `model` on OpenAI's API, key from `OPENAI_API_KEY`.
    pub fn new(model: impl Into<String>) -> Self {
        Self::with_api(ApiConfig::openai(), model)
    }

    /// `model` on the server `api` describes.
    pub fn with_api(api: ApiConfig, model: impl Into<String>) -> Self {
        Self {
            api,
            model: model.into(),
            token_limit_field: TokenLimitField::default(),
            include_usage: true,
            parallel_tool_calls: None,
            event_capacity: 64,
        }
    }

    /// The same config with another token limit field name.
    pub fn token_limit_field(mut self, field: TokenLimitField) -> Self {
        self.token_limit_field = field;
        self
    }
}

/// [`LanguageModel`] over OpenAI's Chat Completions API or any compatible server.
///
/// Each [`stream`](LanguageModel::stream) sends one streamed request
/// (`stream: true`, `stream_options.include_usage`), retrying 408/429/5xx and
/// connection failures before the response starts, then hands back an [`LlmStream`]
/// fed by a task that reads the event stream. Dropping the stream stops the task and
/// closes the response at once.
#[derive(Debug, Clone)]
pub struct OpenAiChat {
    api: Api,
    config: ChatConfig,
}

impl OpenAiChat {
    /// A client for `config`.
    ///
    /// # Errors
    /// When the key or organization is not a valid header value, or the HTTP client
    /// cannot be built.
    pub fn new(config: ChatConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            api: Api::new(&config.api)?,
            config,
        })
    }

    /// The JSON body sent for `request`.
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] for a tool result without the id of the call it
    /// answers.
    pub fn request_body(&self, request: &ChatRequest) -> Result<Value, ProviderError> {
        let messages = request
            .messages
            .iter()
            .map(wire_message)
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
        });
        let Some(map) = body.as_object_mut() else {
            return Err(ProviderError::new(PROVIDER, ErrorKind::Protocol, "body"));
        };
        if self.config.include_usage {
            map.insert("stream_options".into(), json!({"include_usage": true}));
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    }})
                })
                .collect();
            map.insert("tools".into(), Value::Array(tools));
            if let Some(parallel) = self.config.parallel_tool_calls {
                map.insert("parallel_tool_calls".into(), Value::Bool(parallel));
            }
        }
        if let Some(max) = request.max_tokens {
            map.insert(self.config.token_limit_field.name().into(), json!(max));
        }
        if let Some(t) = request.temperature {
            // Through f64 via the decimal text, so 0.7 goes out as 0.7, not 0.699999988.
            let t: f64 = format!("{t}").parse().unwrap_or(f64::from(t));
            map.insert("temperature".into(), json!(t));
        }
        Ok(body)
    }

    async fn start(&self, request: ChatRequest) -> Result<LlmStream, ProviderError> {
        let body = self.request_body(&request)?;
        tracing::debug!(
            model = %self.config.model,
            messages = request.messages.len(),
            tools = request.tools.len(),
            "chat completion request"
        );
        let (response, started) = self
            .api
            .send("chat/completions", || {
                self.api
                    .post("/chat/completions")
                    .header("accept", "text/event-stream")
                    .json(&body)
            })
            .await?;
        let (stream, tx) = LlmStream::channel(self.config.event_capacity);
        tokio::spawn(read_stream(response, tx, started));
        Ok(stream)
    }
}

impl LanguageModel for OpenAiChat {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<LlmStream, ProviderError>> {
        Box::pin(self.start(request))
    }
}

/// A tool definition whose parameters are given as JSON Schema text, for callers
/// that do not build `serde_json` values themselves.
///
/// # Errors
/// [`ErrorKind::BadRequest`] when `schema` is not a JSON object.
pub fn function_tool(
    name: impl Into<String>,
    description: impl Into<String>,
    schema: &str,
) -> Result<ToolDefinition, ProviderError> {
    let parameters: Value = serde_json::from_str(schema)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                "tool parameters must be a JSON Schema object",
            )
        })?;
    Ok(ToolDefinition {
        name: name.into(),
        description: description.into(),
        parameters,
    })
}

fn wire_message(message: &ChatMessage) -> Result<Value, ProviderError> {
    Ok(match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User => json!({"role": "user", "content": message.content}),
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": message.content})
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            let content = if message.content.is_empty() {
                Value::Null
            } else {
                Value::String(message.content.clone())
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Role::Tool => {
            let Some(id) = message.tool_call_id.as_deref().filter(|id| !id.is_empty()) else {
                return Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::BadRequest,
                    "a tool message needs the tool_call_id of the call it answers",
                ));
            };
            json!({"role": "tool", "tool_call_id": id, "content": message.content})
        }
    })
}

/// The reading task: bytes to events to the consumer, until `[DONE]`, an error, or the
/// consumer dropping the stream (then the response is dropped, closing it).
async fn read_stream(response: reqwest::Response, tx: mpsc::Sender<LlmEvent>, started: Instant) {
    let mut body = response.bytes_stream();
    let mut decoder = SseDecoder::new();
    let mut parser = ChunkParser::new();
    let mut sse = Vec::new();
    let mut out = Vec::new();
    let mut ttfb_sent = false;
    loop {
        let next = tokio::select! {
            biased;
            () = tx.closed() => {
                tracing::debug!("chat stream dropped by the consumer: closing the response");
                return;
            }
            next = body.next() => next,
        };
        let outcome = match next {
            Some(Ok(bytes)) => match decoder.push(&bytes, &mut sse) {
                Ok(()) => {
                    let mut step = Ok(Step::Continue);
                    for event in sse.drain(..) {
                        step = parser.feed(&event, &mut out);
                        if !matches!(step, Ok(Step::Continue)) {
                            break;
                        }
                    }
                    step
                }
                Err(e) => Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Protocol,
                    e.to_string(),
                )),
            },
            Some(Err(e)) => {
                let mut e = from_reqwest(e);
                e.message = format!("chat stream interrupted: {}", e.message);
                Err(e)
            }
            None => parser.end_of_stream(&mut out).map(|()| Step::Done),
        };
        if !ttfb_sent && parser.started() {
            ttfb_sent = true;
            let latency = started.elapsed();
            tracing::debug!(?latency, "chat first token");
            out.insert(
                0,
                LlmEvent::Ttfb(Ttfb {
                    provider: PROVIDER,
                    latency,
                }),
            );
        }
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, "chat stream failed");
            out.push(LlmEvent::Error(e.clone()));
        }
        for event in out.drain(..) {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        match outcome {
            Ok(Step::Continue) => {}
            Ok(Step::Done) => {
                // The consumer has everything: let it see the end now, not after the
                // body's.
                drop(tx);
                return finish_body(body).await;
            }
            _ => return,
        }
    }
}

/// Reads what is left of a finished reply's body (the chunked terminator after
/// `[DONE]`), so the connection goes back to the client's pool instead of being closed:
/// the next turn then skips a TCP and TLS handshake. Bounded in time and bytes; a
/// body that goes on is dropped, which closes its connection.
async fn finish_body<S, B, E>(mut body: S)
where
    S: futures_util::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let drain = async {
        let mut left = DRAIN_BYTES;
        while let Some(Ok(bytes)) = body.next().await {
            left = left.saturating_sub(bytes.as_ref().len());
            if left == 0 {
                return;
            }
        }
    };
    if tokio::time::timeout(DRAIN_TIME, drain).await.is_err() {
        tracing::debug!("chat body went on after [DONE]: closing its connection");
    }
}

/// What [`ChunkParser::feed`] says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More chunks are expected.
    Continue,
    /// `[DONE]` arrived: the reply is complete.
    Done,
}

/// Turns the `data:` payloads of a streamed chat completion into [`LlmEvent`]s.
///
/// Text deltas pass through at once. Tool-call fragments are accumulated by their
/// `index` (the first fragment carries `id` and `function.name`, later ones pieces of
/// `function.arguments`; calls may interleave) and each call is emitted whole when the
/// choice finishes. Usage is kept from the latest chunk that has it (OpenAI sends it
/// once, in a final chunk with no choices; some compatible servers send it
/// cumulatively on every chunk) and emitted at `[DONE]`. A payload with an `error`
/// object fails the stream. Unknown fields are ignored. [`LlmEvent::Ttfb`] is the
/// reading task's job; [`started`](Self::started) tells it when the first token came.
#[derive(Debug, Default)]
pub struct ChunkParser {
    calls: BTreeMap<u32, PartialCall>,
    /// Calls displaced by a new id at the same index (servers that reuse index 0).
    displaced: Vec<PartialCall>,
    last_index: u32,
    finished: bool,
    usage: Option<(u64, u64)>,
    started: bool,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl PartialCall {
    fn into_call(self) -> ToolCall {
        let arguments = if self.arguments.trim().is_empty() {
            "{}".to_owned()
        } else {
            self.arguments
        };
        if serde_json::from_str::<Value>(&arguments).is_err() {
            tracing::warn!(tool = %self.name, id = %self.id, "tool call arguments are not valid JSON");
        }
        ToolCall {
            id: self.id,
            name: self.name,
            arguments,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl ChunkParser {
    /// A parser for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a token (text or a tool-call fragment) has arrived.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Feeds one event, appending what it completes to `out`.
    ///
    /// # Errors
    /// The stream's `error` object, or [`ErrorKind::Protocol`] for a payload that is
    /// not a chunk.
    pub fn feed(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<LlmEvent>,
    ) -> Result<Step, ProviderError> {
        let data = event.data.trim();
        if data.starts_with("[DONE]") {
            self.complete(out);
            return Ok(Step::Done);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Protocol,
                format!(
                    "unparsable stream chunk ({e}): {}",
                    crate::http::error_message(data)
                ),
            )
        })?;
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            return Err(stream_error(error));
        }
        if event.event.as_deref() == Some("error") {
            return Err(stream_error(&value));
        }
        let chunk: Chunk = serde_json::from_value(value).map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Protocol,
                format!("unexpected stream chunk: {e}"),
            )
        })?;
        if let Some(error) = chunk.error {
            return Err(stream_error(&error));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some((usage.prompt_tokens, usage.completion_tokens));
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta.unwrap_or_default();
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    self.started = true;
                    out.push(LlmEvent::TextDelta(text));
                }
            }
            for fragment in delta.tool_calls.unwrap_or_default() {
                self.tool_fragment(fragment);
            }
            if let Some(reason) = choice.finish_reason {
                self.emit_calls(out);
                self.finished = true;
                out.push(LlmEvent::Finished(finish_reason(&reason)));
            }
        }
        Ok(Step::Continue)
    }

    /// The body ended without `[DONE]`. After a finish reason the reply is complete
    /// (some compatible servers omit `[DONE]`); before one, the stream was cut.
    ///
    /// # Errors
    /// [`ErrorKind::Connection`] when the reply was cut short.
    pub fn end_of_stream(&mut self, out: &mut Vec<LlmEvent>) -> Result<(), ProviderError> {
        if self.finished {
            self.complete(out);
            Ok(())
        } else {
            Err(ProviderError::new(
                PROVIDER,
                ErrorKind::Connection,
                "chat stream ended before the reply finished (no finish_reason, no [DONE])",
            ))
        }
    }

    fn tool_fragment(&mut self, fragment: ToolCallDelta) {
        self.started = true;
        let index = fragment.index.unwrap_or(self.last_index);
        self.last_index = index;
        let call = self.calls.entry(index).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
            if !call.id.is_empty() && call.id != id {
                let previous = std::mem::take(call);
                self.displaced.push(previous);
            }
            call.id = id;
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                call.name = name;
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
    }

    fn emit_calls(&mut self, out: &mut Vec<LlmEvent>) {
        let calls = self
            .displaced
            .drain(..)
            .chain(std::mem::take(&mut self.calls).into_values());
        for call in calls {
            if call.name.is_empty() {
                tracing::warn!(id = %call.id, "tool call without a function name dropped");
                continue;
            }
            out.push(LlmEvent::ToolCall(call.into_call()));
        }
    }

    fn complete(&mut self, out: &mut Vec<LlmEvent>) {
        self.emit_calls(out);
        if let Some((prompt, completion)) = self.usage.take() {
            out.push(LlmEvent::Usage(Usage {
                provider: PROVIDER,
                kind: UsageKind::Tokens { prompt, completion },
                reported: true,
            }));
        }
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// An `error` object sent inside the stream (`{"message","type","code"}`).
fn stream_error(error: &Value) -> ProviderError {
    let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
    let message = match error.as_str() {
        Some(message) => message.to_owned(),
        None if text("message").is_empty() => "an error occurred during streaming".to_owned(),
        None => text("message").to_owned(),
    };
    let (kind, code) = (text("type"), text("code"));
    let kind = if kind.contains("rate_limit") || code.contains("rate_limit") {
        ErrorKind::RateLimited
    } else if kind == "invalid_request_error" {
        ErrorKind::BadRequest
    } else if kind == "authentication_error" {
        ErrorKind::Auth
    } else {
        ErrorKind::Server
    };
    let message = if code.is_empty() {
        message
    } else {
        format!("{message} [{code}]")
    };
    ProviderError::new(PROVIDER, kind, message)
}
