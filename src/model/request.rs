//! What one chat call asks and what it answers: the request, its sampling overrides and
//! the reply, shared by both wire formats.

use crate::config::HostConfig;
use std::sync::Arc;

/// Replies longer than this are cut (with a note) so memory stays bounded.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// One chat call: system prompt, user text and images (plain base64, no `data:` prefix).
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub user: String,
    pub images: Vec<Arc<str>>,
    /// Ollama's `format`: `"json"` or a JSON schema.
    pub format: Option<serde_json::Value>,
    /// Stream tokens (calls `on_token` as they arrive); otherwise one JSON reply.
    pub stream: bool,
    /// Per-call overrides of the host's sampling settings.
    pub sampling: Sampling,
}

/// Per-call sampling overrides: eval scoring fixes temperature and seed so two runs
/// score the same; upskill gives the teacher room for several prompts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub seed: Option<u64>,
    /// Overrides the host's `max_tokens` (0 = no cap).
    pub max_tokens: Option<u32>,
}

/// What stands in for the frame when a host is `text_only`.
pub const TEXT_ONLY_NOTE: &str = "(No image is attached: this model reads text only, so the \
camera frame cannot be shown to you. Say that you cannot see the frame.)";

impl ChatRequest {
    /// The request as a `text_only` host gets it: no images, a note in their place.
    pub fn without_images(&self) -> ChatRequest {
        let mut r = self.clone();
        if !r.images.is_empty() {
            r.images.clear();
            r.user = format!("{}\n\n{TEXT_ONLY_NOTE}", r.user);
        }
        r
    }

    /// Temperature for this call: the override, else the host's.
    pub fn temperature(&self, cfg: &HostConfig) -> Option<f32> {
        self.sampling.temperature.or(cfg.temperature)
    }

    /// Token cap for this call (None = no cap).
    pub fn max_tokens(&self, cfg: &HostConfig) -> Option<u32> {
        Some(self.sampling.max_tokens.unwrap_or(cfg.max_tokens)).filter(|n| *n > 0)
    }
}

/// A complete answer (the server sent `done: true`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatReply {
    pub content: String,
    /// The reply was longer than `MAX_REPLY_BYTES` and was cut.
    pub truncated: bool,
    pub done_reason: Option<String>,
    pub eval_count: Option<u64>,
    /// Tokens of the prompt as the server counted them (OpenAI `usage.prompt_tokens`,
    /// Ollama `prompt_eval_count`): an image's tokens are in it, so this is what a frame
    /// costs the model.
    pub prompt_tokens: Option<u64>,
    /// Characters of `thinking` the model produced (not part of the answer).
    pub thinking_chars: usize,
    /// Mean token probability of the answer before its CONFIDENCE line, when the server
    /// sent log-probabilities: a confidence the model cannot simply state.
    pub measured_confidence: Option<f32>,
    /// The whole-call timeout (this many seconds) cut the streamed answer: `content` is
    /// the text that did arrive, not a whole answer.
    pub timed_out: Option<u64>,
}

impl ChatReply {
    /// The model stopped because it hit the token cap (`done_reason` / `finish_reason`
    /// `length`): the answer is cut, its last lines (the confidence) may be missing.
    pub fn hit_token_cap(&self) -> bool {
        self.done_reason.as_deref() == Some("length")
    }
}
