//! Language models: one streamed completion per request.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{BoxFuture, ProviderError, Ttfb, Usage};

/// A language-model provider. Object-safe: binaries hold a `Box<dyn LanguageModel>`.
pub trait LanguageModel: Send + Sync {
    /// The provider's name, for logs and metrics (`"openai"`).
    fn name(&self) -> &'static str;

    /// Starts a streamed completion. The request is sent (and retried when retryable)
    /// before this resolves; the stream then carries the reply as it is generated.
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<LlmStream, ProviderError>>;
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The caller.
    User,
    /// The model (the bot).
    Assistant,
    /// A tool's result.
    Tool,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said (for the assistant, what the caller actually heard).
    pub content: String,
    /// Tools the assistant called in this message.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: which call it answers.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message of `role` with `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// A tool's result for the call `id`.
    pub fn tool_result(id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(id.into()),
            ..Self::new(Role::Tool, content)
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// The function name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The arguments as a JSON Schema object.
    pub parameters: serde_json::Value,
}

/// A call of a tool by the model, with its arguments complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's id for the call (a tool result refers to it).
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments, a JSON text as the model wrote it.
    pub arguments: String,
}

/// One completion request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The conversation so far, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call.
    pub tools: Vec<ToolDefinition>,
    /// Sampling temperature; `None` for the provider's default.
    pub temperature: Option<f32>,
    /// Most tokens to generate; `None` for the provider's default.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    /// A request for `messages`, no tools, provider defaults.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            tools: Vec::new(),
            temperature: None,
            max_tokens: None,
        }
    }

    /// The same request with `tools`.
    pub fn tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }

    /// The same request with a temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// The same request with a token limit.
    pub fn max_tokens(mut self, max: u32) -> Self {
        self.max_tokens = Some(max);
        self
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// The model finished its reply.
    Stop,
    /// The token limit was reached.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// The provider filtered the reply.
    ContentFilter,
    /// A reason this crate does not know, as the provider wrote it.
    Other(String),
}

/// What a completion stream carries, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LlmEvent {
    /// Time from the request to the first token.
    Ttfb(Ttfb),
    /// More of the reply's text.
    TextDelta(String),
    /// A tool call, once its arguments are complete.
    ToolCall(ToolCall),
    /// Generation stopped.
    Finished(FinishReason),
    /// Tokens used by this request.
    Usage(Usage),
    /// The stream failed; nothing follows.
    Error(ProviderError),
}

/// One streamed completion. Dropping it (barge-in) cancels the request: the adapter
/// stops reading and closes the response, and nothing more is delivered.
#[derive(Debug)]
pub struct LlmStream {
    events: mpsc::Receiver<LlmEvent>,
}

impl LlmStream {
    /// A stream and the adapter's sender, over a channel of `capacity` events.
    pub fn channel(capacity: usize) -> (Self, mpsc::Sender<LlmEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { events: rx }, tx)
    }

    /// The next event, or `None` when the reply is complete.
    pub async fn recv(&mut self) -> Option<LlmEvent> {
        self.events.recv().await
    }

    /// Cancels the request (the same as dropping the stream).
    pub fn cancel(self) {}

    /// Reads the whole reply: its text, tool calls, finish reason and usage.
    ///
    /// # Errors
    /// The stream's error, if it failed.
    pub async fn collect(mut self) -> Result<Completion, ProviderError> {
        let mut done = Completion::default();
        while let Some(event) = self.recv().await {
            match event {
                LlmEvent::TextDelta(text) => done.text.push_str(&text),
                LlmEvent::ToolCall(call) => done.tool_calls.push(call),
                LlmEvent::Finished(reason) => done.finish = Some(reason),
                LlmEvent::Usage(usage) => done.usage = Some(usage),
                LlmEvent::Ttfb(ttfb) => done.ttfb = Some(ttfb),
                LlmEvent::Error(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// A whole reply, from [`LlmStream::collect`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    /// The reply's text.
    pub text: String,
    /// The tools it called.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped, if the provider said.
    pub finish: Option<FinishReason>,
    /// Tokens used, if reported.
    pub usage: Option<Usage>,
    /// Time to the first token.
    pub ttfb: Option<Ttfb>,
}
