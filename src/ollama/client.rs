//! The Ollama HTTP client.
//!
//! `/api/chat` is read as NDJSON over reqwest by our own line reader: ollama-rs 0.3.6's
//! stream decodes each network chunk with `String::from_utf8` (dropping a chunk that
//! splits a multi-byte character) and `eprintln!`s lines it cannot parse (stderr is the
//! console's screen). `/api/tags` is read here too, capped (ollama-rs reads it whole).

use super::error::ModelError;
use crate::config::{HostConfig, HostKind};
use crate::event::Role;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Replies longer than this are cut (with a note) so memory stays bounded.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// One NDJSON line longer than this is a malformed stream.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// How long to wait for a TCP connection before calling a host unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
}

/// A complete answer (the server sent `done: true`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatReply {
    pub content: String,
    /// The reply was longer than `MAX_REPLY_BYTES` and was cut.
    pub truncated: bool,
    pub done_reason: Option<String>,
    pub eval_count: Option<u64>,
    /// Characters of `thinking` the model produced (not part of the answer).
    pub thinking_chars: usize,
    /// Mean token probability of the answer before its CONFIDENCE line, when the server
    /// sent log-probabilities: a confidence the model cannot simply state.
    pub measured_confidence: Option<f32>,
}

/// A client for one model on one server.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    /// Base URL without a trailing slash.
    base: String,
    config: HostConfig,
    role: Role,
    max_reply_bytes: usize,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No headers here: they may hold secrets.
        write!(
            f,
            "ModelClient({} {} @ {})",
            self.role, self.config.model, self.base
        )
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

#[derive(Deserialize)]
struct WireLogprob {
    #[serde(default)]
    token: String,
    logprob: f64,
}

#[derive(Deserialize)]
struct WireLine {
    #[serde(default)]
    logprobs: Option<Vec<WireLogprob>>,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    done: Option<bool>,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

impl ModelClient {
    pub fn new(config: &HostConfig, role: Role) -> Result<Self, ModelError> {
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| ModelError::Request {
                message: format!("{role}.headers: invalid header name {k:?}"),
            })?;
            let mut value = HeaderValue::from_str(v).map_err(|_| ModelError::Request {
                message: format!("{role}.headers: invalid value for header {k:?}"),
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(key) = config.api_key.as_deref().filter(|k| !k.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                ModelError::Request {
                    message: format!("{role}.api_key holds characters not allowed in a header"),
                }
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ModelError::Request {
                message: e.to_string(),
            })?;
        Ok(ModelClient {
            http,
            base: config.host.trim_end_matches('/').to_string(),
            config: config.clone(),
            role,
            max_reply_bytes: MAX_REPLY_BYTES,
        })
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    pub fn host(&self) -> &str {
        &self.base
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Lower the reply cap (tests and benches).
    pub fn with_max_reply_bytes(mut self, n: usize) -> Self {
        self.max_reply_bytes = n;
        self
    }

    /// Send one chat call; `on_token` sees each piece of content as it arrives.
    /// The whole call, connect to `done`, is bounded by `timeout_secs`.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatReply, ModelError> {
        let secs = self.config.timeout_secs;
        match tokio::time::timeout(Duration::from_secs(secs), self.chat_inner(req, on_token)).await
        {
            Ok(r) => r,
            Err(_) => Err(ModelError::Timeout { secs }),
        }
    }

    fn chat_body(&self, req: &ChatRequest) -> serde_json::Value {
        let mut messages = Vec::with_capacity(2);
        if let Some(s) = req.system.as_deref().filter(|s| !s.trim().is_empty()) {
            messages.push(serde_json::json!({"role": "system", "content": s}));
        }
        let mut user = serde_json::json!({"role": "user", "content": req.user});
        if !req.images.is_empty() {
            user["images"] = serde_json::Value::Array(
                req.images
                    .iter()
                    .map(|i| serde_json::Value::String(i.to_string()))
                    .collect(),
            );
        }
        messages.push(user);
        let mut body = serde_json::json!({
            "model": self.config.model,
            "messages": messages,
            "stream": req.stream,
            "think": self.config.think,
        });
        if let Some(t) = self.config.temperature {
            body["options"] = serde_json::json!({ "temperature": t });
        }
        if let Some(f) = &req.format {
            body["format"] = f.clone();
        }
        if self.config.logprobs {
            body["logprobs"] = serde_json::Value::Bool(true);
        }
        body
    }

    /// "No such model" in this host's own terms.
    pub fn missing_model_error(&self) -> ModelError {
        let (model, url) = (self.config.model.clone(), self.base.clone());
        match self.config.kind {
            HostKind::Ollama => ModelError::ModelNotFound { model, url },
            HostKind::Openai => ModelError::NotServed { model, url },
        }
    }

    fn in_host_terms(&self, e: ModelError) -> ModelError {
        match e {
            ModelError::ModelNotFound { .. } => self.missing_model_error(),
            other => other,
        }
    }

    async fn chat_inner(
        &self,
        req: &ChatRequest,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatReply, ModelError> {
        if self.config.kind == HostKind::Openai {
            return super::openai::chat(
                &self.http,
                &self.base,
                &self.config,
                req,
                on_token,
                self.max_reply_bytes,
            )
            .await
            .map_err(|e| self.in_host_terms(e));
        }
        let url = format!("{}/api/chat", self.base);
        let resp = self
            .http
            .post(&url)
            .json(&self.chat_body(req))
            .send()
            .await
            .map_err(|e| self.map_send_error(e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.status_error(status.as_u16(), resp).await);
        }
        let mut stream = resp.bytes_stream();
        let mut reader = LineReader::default();
        let mut acc = ReplyAccumulator::new(self.max_reply_bytes);
        loop {
            let chunk = match stream.next().await {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    if e.is_timeout() {
                        return Err(ModelError::Timeout {
                            secs: self.config.timeout_secs,
                        });
                    }
                    // The connection broke mid-stream: whatever came is not an answer.
                    return Err(ModelError::Incomplete {
                        received_chars: acc.content.chars().count(),
                    });
                }
                None => break,
            };
            reader.push(&chunk)?;
            while let Some(line) = reader.next_line() {
                if acc.feed(&line, on_token)? == Flow::Stop {
                    return Ok(acc.finish());
                }
            }
        }
        if let Some(rest) = reader.remainder() {
            if acc.feed(&rest, on_token)? == Flow::Stop {
                return Ok(acc.finish());
            }
        }
        Err(ModelError::Incomplete {
            received_chars: acc.content.chars().count(),
        })
    }

    fn map_send_error(&self, e: reqwest::Error) -> ModelError {
        map_send_error(e, &self.base, self.config.timeout_secs)
    }

    async fn status_error(&self, status: u16, resp: reqwest::Response) -> ModelError {
        let body = read_capped(resp, 16 * 1024).await;
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        let message = crate::sanitize::for_screen(&message, 300);
        if status == 404 {
            // Ollama's wording differs between versions; the status code does not.
            return ModelError::ModelNotFound {
                model: self.config.model.clone(),
                url: self.base.clone(),
            };
        }
        ModelError::Http { status, message }
    }

    /// Model names the server has (`/api/tags`, or `/v1/models`). The reply is read at
    /// most `MAX_TAGS_BYTES` (a server with a hundred models sends well under 100 KB): a
    /// larger one is an error, not a memory hog.
    pub async fn list_models(&self) -> Result<Vec<String>, ModelError> {
        const MAX_TAGS_BYTES: usize = 4 * 1024 * 1024;
        #[derive(Deserialize)]
        struct Tag {
            name: String,
        }
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            models: Vec<Tag>,
        }
        if self.config.kind == HostKind::Openai {
            return super::openai::list_models(&self.http, &self.base).await;
        }
        let url = format!("{}/api/tags", self.base);
        let fut = async {
            let resp = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| self.map_send_error(e))?;
            let status = resp.status().as_u16();
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.map_send_error(e))?;
                if body.len() + chunk.len() > MAX_TAGS_BYTES {
                    return Err(ModelError::Malformed {
                        message: format!(
                            "/api/tags reply larger than {} MiB",
                            MAX_TAGS_BYTES / (1024 * 1024)
                        ),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            if status != 200 {
                let text = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]);
                return Err(ModelError::Http {
                    status,
                    message: crate::sanitize::for_screen(text.trim(), 300),
                });
            }
            let tags: Tags = serde_json::from_slice(&body).map_err(|e| ModelError::Malformed {
                message: format!("/api/tags: {e}"),
            })?;
            Ok(tags
                .models
                .into_iter()
                .map(|m| crate::sanitize::for_screen(&m.name, 200))
                .collect())
        };
        let secs = self.config.timeout_secs.min(15);
        match tokio::time::timeout(Duration::from_secs(secs), fut).await {
            Err(_) => Err(ModelError::Timeout { secs }),
            Ok(r) => r,
        }
    }

    /// The server's Ollama version (`/api/version`).
    pub async fn version(&self) -> Result<String, ModelError> {
        if self.config.kind == HostKind::Openai {
            return Ok("an OpenAI-compatible server".into());
        }
        let url = format!("{}/api/version", self.base);
        let fut = async {
            let resp = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| self.map_send_error(e))?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(ModelError::Http {
                    status,
                    message: String::new(),
                });
            }
            let body = read_capped(resp, 16 * 1024).await;
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("version").and_then(|s| s.as_str()).map(String::from))
                .ok_or_else(|| ModelError::Malformed {
                    message: "no version in /api/version reply".into(),
                })
        };
        match tokio::time::timeout(Duration::from_secs(10), fut).await {
            Ok(r) => r,
            Err(_) => Err(ModelError::Timeout { secs: 10 }),
        }
    }
}

/// A reqwest send error as a `ModelError` (shared by the Ollama and OpenAI-compatible paths).
pub(crate) fn map_send_error(e: reqwest::Error, base: &str, timeout_secs: u64) -> ModelError {
    if e.is_timeout() {
        return ModelError::Timeout { secs: timeout_secs };
    }
    if e.is_connect() && error_chain_has_refused(&e) {
        return ModelError::Refused {
            url: base.to_string(),
        };
    }
    // Connect failures, and a connection dropped before any response (a request error),
    // both mean the host could not be talked to.
    ModelError::Connect {
        url: base.to_string(),
        message: root_cause(&e),
    }
}

pub(crate) async fn read_capped(resp: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(Ok(c)) = s.next().await {
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&c[..c.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    out
}

fn error_chain_has_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

/// Splits a byte stream into lines; a line may arrive in pieces that split a UTF-8
/// character, so bytes are joined before any decoding.
#[derive(Default)]
pub struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), ModelError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > MAX_LINE_BYTES && !self.buf.contains(&b'\n') {
            return Err(ModelError::Malformed {
                message: format!("a stream line is longer than {} KiB", MAX_LINE_BYTES / 1024),
            });
        }
        Ok(())
    }

    /// The next complete line (without the newline), skipping blank ones.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            let line = self.next_line_keep_blank()?;
            if !line.iter().all(|b| b.is_ascii_whitespace()) {
                return Some(line);
            }
        }
    }

    /// The next complete line (without `\n` or `\r\n`), blank lines included (SSE ends
    /// an event with a blank line).
    pub fn next_line_keep_blank(&mut self) -> Option<Vec<u8>> {
        let pos = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(line)
    }

    /// What is left at the end of the stream (a final line without newline).
    pub fn remainder(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.iter().all(|b| b.is_ascii_whitespace())).then_some(rest)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

struct ReplyAccumulator {
    content: String,
    cap: usize,
    reply: ChatReply,
    /// Sum and count of token probabilities before the CONFIDENCE line.
    prob_sum: f64,
    prob_count: u64,
    /// The CONFIDENCE line has started: later tokens do not count.
    past_confidence: bool,
}

impl ReplyAccumulator {
    fn new(cap: usize) -> Self {
        ReplyAccumulator {
            content: String::new(),
            cap,
            reply: ChatReply::default(),
            prob_sum: 0.0,
            prob_count: 0,
            past_confidence: false,
        }
    }

    fn feed(
        &mut self,
        line: &[u8],
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        let parsed: WireLine = serde_json::from_slice(line).map_err(|e| ModelError::Malformed {
            message: format!(
                "{e} in line {:?}",
                crate::sanitize::for_screen(&String::from_utf8_lossy(line), 80)
            ),
        })?;
        if let Some(err) = parsed.error {
            return Err(ModelError::Server {
                message: crate::sanitize::for_screen(&err, 500),
            });
        }
        if let Some(lps) = parsed.logprobs {
            for lp in lps {
                if self.past_confidence || !lp.logprob.is_finite() {
                    continue;
                }
                if lp.token.to_ascii_lowercase().contains("confidence")
                    || self.content.to_ascii_lowercase().contains("confidence")
                {
                    self.past_confidence = true;
                    continue;
                }
                if !lp.token.trim().is_empty() {
                    self.prob_sum += lp.logprob.min(0.0).exp();
                    self.prob_count += 1;
                }
            }
        }
        if let Some(m) = parsed.message {
            if let Some(t) = m.thinking {
                self.reply.thinking_chars += t.chars().count();
            }
            if let Some(c) = m.content.filter(|c| !c.is_empty()) {
                let room = self.cap.saturating_sub(self.content.len());
                if c.len() > room {
                    let mut cut = room;
                    while !c.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    self.content.push_str(&c[..cut]);
                    on_token(&c[..cut]);
                    self.reply.truncated = true;
                    return Ok(Flow::Stop);
                }
                self.content.push_str(&c);
                on_token(&c);
            }
        }
        if parsed.done == Some(true) {
            self.reply.done_reason = parsed.done_reason;
            self.reply.eval_count = parsed.eval_count;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    fn finish(mut self) -> ChatReply {
        if self.reply.truncated {
            self.content
                .push_str(&format!("\n[reply cut at {} KiB]", self.cap.div_ceil(1024)));
        }
        if self.prob_count > 0 {
            self.reply.measured_confidence = Some((self.prob_sum / self.prob_count as f64) as f32);
        }
        self.reply.content = self.content;
        self.reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(lines: &[&str], cap: usize) -> Result<ChatReply, ModelError> {
        let mut acc = ReplyAccumulator::new(cap);
        let mut tokens = Vec::new();
        for l in lines {
            if acc.feed(l.as_bytes(), &mut |t: &str| tokens.push(t.to_string()))? == Flow::Stop {
                return Ok(acc.finish());
            }
        }
        Err(ModelError::Incomplete {
            received_chars: acc.content.len(),
        })
    }

    #[test]
    fn line_reader_joins_split_utf8() {
        let mut r = LineReader::default();
        let text = "{\"x\":\"café 20°C 🔥\"}\n";
        let bytes = text.as_bytes();
        // Split inside the 'é' (2 bytes) and inside the emoji (4 bytes).
        let e = text.find('é').unwrap() + 1;
        let f = text.find('🔥').unwrap() + 2;
        r.push(&bytes[..e]).unwrap();
        assert!(r.next_line().is_none());
        r.push(&bytes[e..f]).unwrap();
        r.push(&bytes[f..]).unwrap();
        let line = r.next_line().unwrap();
        assert_eq!(std::str::from_utf8(&line).unwrap(), text.trim_end());
    }

    #[test]
    fn thinking_is_not_content() {
        let r = feed_all(
            &[
                r#"{"message":{"role":"assistant","content":"","thinking":"hmm"}, "done":false}"#,
                r#"{"message":{"role":"assistant","content":"A cat."}, "done":false}"#,
                r#"{"message":{"role":"assistant","content":""}, "done":true, "done_reason":"stop","eval_count":5}"#,
            ],
            1000,
        )
        .unwrap();
        assert_eq!(r.content, "A cat.");
        assert_eq!(r.thinking_chars, 3);
        assert_eq!(r.eval_count, Some(5));
    }

    #[test]
    fn measured_confidence_is_the_mean_token_probability_before_the_confidence_line() {
        let r = feed_all(
            &[
                r#"{"message":{"content":"A cat"},"logprobs":[{"token":"A","logprob":0.0},{"token":" cat","logprob":-0.6931471805599453}],"done":false}"#,
                r#"{"message":{"content":"\nCONFIDENCE: 0.99"},"logprobs":[{"token":"CONFIDENCE","logprob":-5.0},{"token":"0.99","logprob":-5.0}],"done":false}"#,
                r#"{"message":{"content":""},"done":true}"#,
            ],
            1000,
        )
        .unwrap();
        // (1.0 + 0.5) / 2: the CONFIDENCE line's own tokens do not count.
        assert!((r.measured_confidence.unwrap() - 0.75).abs() < 1e-6);
        let r = feed_all(&[r#"{"message":{"content":"A cat."},"done":true}"#], 1000).unwrap();
        assert_eq!(
            r.measured_confidence, None,
            "no logprobs, no measured confidence"
        );
    }

    #[test]
    fn error_line_fails_the_call() {
        let e = feed_all(
            &[
                r#"{"message":{"content":"A c"},"done":false}"#,
                r#"{"error":"model runner has unexpectedly stopped"}"#,
            ],
            1000,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ModelError::Server {
                message: "model runner has unexpectedly stopped".into()
            }
        );
    }

    #[test]
    fn no_done_is_incomplete() {
        let e = feed_all(&[r#"{"message":{"content":"A c"},"done":false}"#], 1000).unwrap_err();
        assert!(matches!(e, ModelError::Incomplete { .. }));
    }

    #[test]
    fn huge_reply_is_cut_with_a_note() {
        let chunk = format!(
            r#"{{"message":{{"content":"{}"}},"done":false}}"#,
            "é".repeat(600)
        );
        let lines: Vec<&str> = std::iter::repeat_n(chunk.as_str(), 10).collect();
        let r = feed_all(&lines, 1001).unwrap();
        assert!(r.truncated);
        assert!(
            r.content.ends_with("[reply cut at 1 KiB]"),
            "{}",
            &r.content[r.content.len() - 40..]
        );
        assert!(r.content.len() <= 1001 + 40);
    }

    #[test]
    fn malformed_line_is_an_error() {
        let e = feed_all(&[r#"{"model":"x","mess"#], 1000).unwrap_err();
        assert!(matches!(e, ModelError::Malformed { .. }));
    }
}
