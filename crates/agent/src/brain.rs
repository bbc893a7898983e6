//! The seam that decides what the bot says next.
//!
//! The runtime asks its [`Brain`] for a reply to the conversation so far and gets a
//! [`LlmStream`] back: text deltas, tool calls, a finish reason. An LLM-backed brain
//! ([`LlmBrain`]) forwards to a [`LanguageModel`]; a scripted conversation or an
//! external HTTP backend can produce the same stream through [`LlmStream::channel`],
//! so the runtime never cares which it has.

use voxline_core::{
    BoxFuture, ChatMessage, ChatRequest, LanguageModel, LlmStream, ProviderError, ToolDefinition,
};

/// Decides what to say next.
pub trait Brain: Send + Sync {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;

    /// Starts the reply to `history` (system prompt first). Dropping the stream
    /// cancels the reply.
    fn reply(&self, history: Vec<ChatMessage>) -> BoxFuture<'_, Result<LlmStream, ProviderError>>;
}

/// A brain that asks a language model, with the tools it may call.
pub struct LlmBrain {
    model: Box<dyn LanguageModel>,
    /// Tools and sampling settings; each reply fills in the messages.
    template: ChatRequest,
}

impl std::fmt::Debug for LlmBrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmBrain")
            .field("model", &self.model.name())
            .field("tools", &self.template.tools.len())
            .finish_non_exhaustive()
    }
}

impl LlmBrain {
    /// A brain over `model`, no tools, the model's defaults.
    pub fn new(model: Box<dyn LanguageModel>) -> Self {
        Self {
            model,
            template: ChatRequest::new(Vec::new()),
        }
    }

    /// The same brain offering `tools` to the model.
    pub fn tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.template = self.template.tools(tools);
        self
    }

    /// The same brain with a sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.template = self.template.temperature(temperature);
        self
    }

    /// The same brain with a reply length limit (phone replies should be short).
    pub fn max_tokens(mut self, max: u32) -> Self {
        self.template = self.template.max_tokens(max);
        self
    }
}

impl Brain for LlmBrain {
    fn name(&self) -> &str {
        self.model.name()
    }

    fn reply(&self, history: Vec<ChatMessage>) -> BoxFuture<'_, Result<LlmStream, ProviderError>> {
        let mut request = self.template.clone();
        request.messages = history;
        self.model.stream(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxline_core::{FinishReason, LlmEvent};

    /// A model that answers every request with the number of messages it got.
    struct Counting;

    impl LanguageModel for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<LlmStream, ProviderError>> {
            Box::pin(async move {
                let (stream, tx) = LlmStream::channel(4);
                let text = format!(
                    "{} messages, {} tools",
                    request.messages.len(),
                    request.tools.len()
                );
                let _ = tx.send(LlmEvent::TextDelta(text)).await;
                let _ = tx.send(LlmEvent::Finished(FinishReason::Stop)).await;
                Ok(stream)
            })
        }
    }

    #[tokio::test]
    async fn an_llm_brain_forwards_history_and_tools() {
        let brain = LlmBrain::new(Box::new(Counting)).tools(vec![ToolDefinition {
            name: "end_call".into(),
            description: "Hang up".into(),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
        }]);
        let history = vec![ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
        let reply = brain.reply(history).await.expect("stream").collect().await;
        let reply = reply.expect("reply");
        assert_eq!(reply.text, "2 messages, 1 tools");
        assert_eq!(reply.finish, Some(FinishReason::Stop));
        assert_eq!(brain.name(), "counting");
    }
}
