//! The Ollama HTTP client.
//!
//! `/api/chat` is read as NDJSON over reqwest by our own line reader: ollama-rs 0.3.6's
//! stream decodes each network chunk with `String::from_utf8` (dropping a chunk that
//! splits a multi-byte character) and `eprintln!`s lines it cannot parse (stderr is the
//! console's screen). The small endpoints (`/api/tags`, `/api/show`, `/api/version`,
//! `/api/ps`) are plain GETs/POSTs read with a size cap. Every chat carries the host's
//! `keep_alive`; `load()` is Ollama's load request (a chat with no messages).

use super::error::ModelError;
use super::load::{ps_lists, LoadTracker};
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
/// Error bodies are read up to this many bytes.
const ERROR_BODY_BYTES: usize = 16 * 1024;
/// `/api/tags` replies are read up to this many bytes (a few hundred models).
const LIST_BODY_BYTES: usize = 4 * 1024 * 1024;
/// `/api/show` carries the model's template, parameters and licence.
const SHOW_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Small JSON endpoints (tags, show, version) give up after this long.
const LIST_TIMEOUT_SECS: u64 = 15;
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
    /// Characters of `thinking` the model produced (not part of the answer).
    pub thinking_chars: usize,
    /// Mean token probability of the answer before its CONFIDENCE line, when the server
    /// sent log-probabilities: a confidence the model cannot simply state.
    pub measured_confidence: Option<f32>,
}

impl ChatReply {
    /// The model stopped because it hit the token cap (`done_reason` / `finish_reason`
    /// `length`): the answer is cut, its last lines (the confidence) may be missing.
    pub fn hit_token_cap(&self) -> bool {
        self.done_reason.as_deref() == Some("length")
    }
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
    /// The model's load state on an Ollama server, shared by the clones of this client.
    load: Arc<LoadTracker>,
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
            load: Arc::new(LoadTracker::default()),
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

    /// What this client knows about its model's load state (Ollama hosts; on an
    /// OpenAI-compatible host it stays `Unknown`).
    pub fn load_state(&self) -> &LoadTracker {
        &self.load
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
        let stripped;
        let req = if self.config.text_only && !req.images.is_empty() {
            stripped = req.without_images();
            &stripped
        } else {
            req
        };
        let call = (self.config.kind == HostKind::Ollama).then(|| self.load.begin());
        let result =
            match tokio::time::timeout(Duration::from_secs(secs), self.chat_inner(req, on_token))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(ModelError::Timeout { secs }),
            };
        if let (Some(call), Ok(_)) = (call, &result) {
            call.succeeded();
        }
        result
    }

    /// Load the model without asking anything (Ollama: a chat with no messages, answered
    /// `done_reason: "load"` once the model is in memory), with this host's `keep_alive`.
    /// Bounded by `timeout_secs`: a cold start of a big model takes minutes. Not for
    /// OpenAI-compatible hosts (they say nothing about loading): Ok without a call.
    pub async fn load(&self) -> Result<(), ModelError> {
        if self.config.kind == HostKind::Openai {
            return Ok(());
        }
        let secs = self.config.timeout_secs;
        let mut body = serde_json::json!({
            "model": self.config.model,
            "messages": [],
            "stream": false,
        });
        if let Some(ka) = self.config.keep_alive.wire() {
            body["keep_alive"] = ka;
        }
        let call = self.load.begin();
        let url = format!("{}/api/chat", self.base);
        let fut = async {
            let resp = send_json(&self.http, &url, &body)
                .await
                .map_err(|e| self.map_send_error(e))?;
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(self.status_error(status, resp).await);
            }
            let bytes = read_capped(resp, ERROR_BODY_BYTES).await;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| ModelError::Malformed {
                    message: format!("load reply: {e}"),
                })?;
            if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                return Err(ModelError::Server {
                    message: crate::sanitize::for_screen(e, 500),
                });
            }
            Ok(())
        };
        let result = match tokio::time::timeout(Duration::from_secs(secs), fut).await {
            Ok(r) => r,
            Err(_) => Err(ModelError::Timeout { secs }),
        };
        if result.is_ok() {
            call.succeeded();
        }
        result
    }

    /// Is the model in the server's memory now (Ollama `/api/ps`)? Updates
    /// [`ModelClient::load_state`]. None on OpenAI-compatible hosts (they do not say).
    pub async fn loaded(&self) -> Result<Option<bool>, ModelError> {
        if self.config.kind == HostKind::Openai {
            return Ok(None);
        }
        let asked_at = std::time::Instant::now();
        let v = self.ollama_json("/api/ps", None, LIST_BODY_BYTES).await?;
        let listed = ps_lists(&v, &self.config.model).ok_or_else(|| ModelError::Malformed {
            message: "/api/ps: no models list".into(),
        })?;
        self.load.observe(listed, asked_at);
        Ok(Some(listed))
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
        let mut options = serde_json::Map::new();
        if let Some(t) = req.temperature(&self.config) {
            options.insert("temperature".into(), serde_json::json!(t));
        }
        if let Some(seed) = req.sampling.seed {
            options.insert("seed".into(), serde_json::json!(seed));
        }
        if let Some(n) = req.max_tokens(&self.config) {
            options.insert("num_predict".into(), serde_json::json!(n));
        }
        if !options.is_empty() {
            body["options"] = serde_json::Value::Object(options);
        }
        if let Some(f) = &req.format {
            body["format"] = f.clone();
        }
        if self.config.logprobs {
            body["logprobs"] = serde_json::Value::Bool(true);
        }
        if let Some(ka) = self.config.keep_alive.wire() {
            body["keep_alive"] = ka;
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
        let body = self.chat_body(req);
        let resp = send_json(&self.http, &url, &body)
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
        let body = read_capped(resp, ERROR_BODY_BYTES).await;
        ollama_status_error(status, &body, &self.config.model, &self.base)
    }

    /// GET (or POST with `body`) a small JSON endpoint of Ollama's API, read capped.
    async fn ollama_json(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
        cap: usize,
    ) -> Result<serde_json::Value, ModelError> {
        let url = format!("{}{path}", self.base);
        let secs = self.config.timeout_secs.min(LIST_TIMEOUT_SECS);
        let fut = async {
            let req = match &body {
                Some(b) => self.http.post(&url).json(b),
                None => self.http.get(&url),
            };
            let resp = req.send().await.map_err(|e| self.map_send_error(e))?;
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(self.status_error(status, resp).await);
            }
            let bytes = read_capped(resp, cap + 1).await;
            if bytes.len() > cap {
                return Err(ModelError::Malformed {
                    message: format!("{path} reply larger than {} MiB", cap / (1024 * 1024)),
                });
            }
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| ModelError::Malformed {
                message: format!(
                    "{path}: {e} in {:?}",
                    crate::sanitize::for_screen(&String::from_utf8_lossy(&bytes), 80)
                ),
            })
        };
        match tokio::time::timeout(Duration::from_secs(secs), fut).await {
            Ok(r) => r,
            Err(_) => Err(ModelError::Timeout { secs }),
        }
    }

    /// Model names the server has (`/api/tags`, or `/v1/models`), read capped.
    pub async fn list_models(&self) -> Result<Vec<String>, ModelError> {
        if self.config.kind == HostKind::Openai {
            return super::openai::list_models(&self.http, &self.base).await;
        }
        let v = self.ollama_json("/api/tags", None, LIST_BODY_BYTES).await?;
        let models =
            v.get("models")
                .and_then(|m| m.as_array())
                .ok_or_else(|| ModelError::Malformed {
                    message: "/api/tags: no models list".into(),
                })?;
        Ok(models
            .iter()
            .filter_map(|m| m.get("name").or_else(|| m.get("model")))
            .filter_map(|n| n.as_str())
            .map(|n| crate::sanitize::for_screen(n, 200))
            .collect())
    }

    /// Whether the model takes images: `Some(true)` / `Some(false)` when the server says
    /// (Ollama `/api/show` capabilities; llama.cpp `/props` modalities or `/v1/models`
    /// input modalities), `None` when it does not say.
    pub async fn vision(&self) -> Result<Option<bool>, ModelError> {
        if self.config.kind == HostKind::Openai {
            return super::openai::vision(&self.http, &self.base, &self.config.model).await;
        }
        let v = self
            .ollama_json(
                "/api/show",
                Some(serde_json::json!({"model": self.config.model})),
                SHOW_BODY_BYTES,
            )
            .await
            .map_err(|e| self.in_host_terms(e))?;
        Ok(ollama_vision(&v))
    }

    /// The server's Ollama version (`/api/version`).
    pub async fn version(&self) -> Result<String, ModelError> {
        if self.config.kind == HostKind::Openai {
            return Ok("an OpenAI-compatible server".into());
        }
        let v = self.ollama_json("/api/version", None, 16 * 1024).await?;
        v.get("version")
            .and_then(|s| s.as_str())
            .map(|s| crate::sanitize::for_screen(s, 40))
            .ok_or_else(|| ModelError::Malformed {
                message: "no version in /api/version reply".into(),
            })
    }
}

/// `capabilities` of an `/api/show` reply: contains `vision` or not; None when the
/// server (older Ollama) sends no capabilities.
pub fn ollama_vision(show: &serde_json::Value) -> Option<bool> {
    let caps = show.get("capabilities")?.as_array()?;
    Some(caps.iter().any(|c| c.as_str() == Some("vision")))
}

/// An HTTP error status from an Ollama endpoint. A 404 is a missing model, unless the
/// body is shaped like another protocol's error (Ollama's `error` is a string; the
/// OpenAI-compatible servers send an object, FastAPI ones `detail`): then the host
/// speaks the OpenAI-compatible API and `kind` is wrong.
pub fn ollama_status_error(status: u16, body: &[u8], model: &str, base: &str) -> ModelError {
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    let foreign = json.as_ref().is_some_and(|v| {
        v.get("error").is_some_and(|e| e.is_object()) || v.get("detail").is_some()
    });
    if status == 404 && foreign {
        return ModelError::WrongProtocol {
            url: base.to_string(),
        };
    }
    let message = json
        .as_ref()
        .and_then(|v| match v.get("error") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(e @ serde_json::Value::Object(_)) => {
                e.get("message").and_then(|m| m.as_str()).map(String::from)
            }
            _ => None,
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let message = crate::sanitize::for_screen(&message, 300);
    if status == 404 {
        // Ollama's wording differs between versions; the status code does not.
        return ModelError::ModelNotFound {
            model: model.to_string(),
            url: base.to_string(),
        };
    }
    if super::error::says_no_vision(&message) {
        return ModelError::NoVision {
            model: model.to_string(),
            message,
        };
    }
    ModelError::Http { status, message }
}

/// POST a JSON body. A pooled keep-alive connection the server closed while it sat idle
/// (llama.cpp's server closes one after a few requests or seconds) fails before the
/// request reaches the server: that one failure is retried once on a fresh connection.
pub(crate) async fn send_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<reqwest::Response, reqwest::Error> {
    match http.post(url).json(body).send().await {
        Err(e) if is_stale_connection(&e) => http.post(url).json(body).send().await,
        r => r,
    }
}

/// The connection closed before any response byte: a stale pooled connection, not a
/// server that refused or timed out.
fn is_stale_connection(e: &reqwest::Error) -> bool {
    if e.is_timeout() || e.is_connect() {
        return false;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text.contains("connection closed before message completed")
            || text.contains("connection reset")
            || text.contains("broken pipe")
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    false
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
    meter: ConfidenceMeter,
}

/// The measured confidence: mean token probability of the answer before its CONFIDENCE
/// line (shared by the Ollama and OpenAI-compatible readers).
#[derive(Debug, Default)]
pub(crate) struct ConfidenceMeter {
    sum: f64,
    count: u64,
    /// The last few token characters, lowercased: "CONFIDENCE" may span tokens.
    tail: String,
    /// The CONFIDENCE line has started: later tokens do not count.
    past_confidence: bool,
}

impl ConfidenceMeter {
    /// One token and its log-probability, in answer order.
    pub(crate) fn token(&mut self, token: &str, logprob: f64) {
        if self.past_confidence {
            return;
        }
        self.tail.push_str(&token.to_lowercase());
        if self.tail.contains("confidence") {
            self.past_confidence = true;
            return;
        }
        if self.tail.len() > 32 {
            let mut cut = self.tail.len() - 16;
            while !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
            self.tail.drain(..cut);
        }
        if logprob.is_finite() && !token.trim().is_empty() {
            self.sum += logprob.min(0.0).exp();
            self.count += 1;
        }
    }

    pub(crate) fn value(&self) -> Option<f32> {
        (self.count > 0).then(|| (self.sum / self.count as f64) as f32)
    }
}

impl ReplyAccumulator {
    fn new(cap: usize) -> Self {
        ReplyAccumulator {
            content: String::new(),
            cap,
            reply: ChatReply::default(),
            meter: ConfidenceMeter::default(),
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
                self.meter.token(&lp.token, lp.logprob);
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
        self.reply.measured_confidence = self.meter.value();
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
    fn keep_alive_goes_in_every_chat_body_as_written() {
        use crate::config::KeepAlive;
        let req = ChatRequest {
            user: "hi".into(),
            ..ChatRequest::default()
        };
        for (ka, wire) in [
            (
                KeepAlive::Text("30m".into()),
                Some(serde_json::json!("30m")),
            ),
            (KeepAlive::Seconds(-1.0), Some(serde_json::json!(-1))),
            (KeepAlive::Seconds(0.0), Some(serde_json::json!(0))),
            (KeepAlive::Text(String::new()), None),
        ] {
            let cfg = HostConfig {
                keep_alive: ka,
                ..HostConfig::default()
            };
            let c = ModelClient::new(&cfg, Role::Student).unwrap();
            assert_eq!(c.chat_body(&req).get("keep_alive").cloned(), wire);
        }
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
