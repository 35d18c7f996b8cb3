//! In-process fake OpenAI-compatible chat server (vLLM, llama.cpp's `llama-server`,
//! LM Studio) that speaks the real HTTP/1.1 wire format.
//!
//! Same design as `ollama_server.rs`: HTTP is hand-rolled on `tokio::net::TcpListener`
//! (127.0.0.1, ephemeral port) so tests can inject faults at the byte level: event chunks cut
//! inside UTF-8 characters, connections dropped mid-stream, error events, malformed events,
//! hangs, refused connections.
//!
//! Wire format follows OpenAI's chat completions API as vLLM serves it:
//! * `POST /v1/chat/completions` — `"stream": true` answers `text/event-stream`: one
//!   `data: {chat.completion.chunk}` event per token (each event its own HTTP chunk, events
//!   separated by a blank line), a last chunk with `finish_reason` and `usage`, then
//!   `data: [DONE]`. Otherwise (the default) one `chat.completion` JSON object.
//! * `GET /v1/models` — `{"object":"list","data":[{"id":…,"object":"model",…}]}`.
//! * `GET /health` — 200 `{"status":"ok"}`; anything else is FastAPI's 404
//!   `{"detail":"Not Found"}`.
//! * An unknown model is 404 with OpenAI's `model_not_found` error object; with an API key
//!   set ([`OpenAiTestServer::set_api_key`]) a request without the right
//!   `Authorization: Bearer …` is 401 `{"error":"Unauthorized"}` (vLLM's answer).
//!
//! The HTTP/1.1 plumbing shared with the other fake server is in `http.rs`, a child module
//! found by a path relative to this file: this file stays self-contained (no `super::`), so a
//! bench includes it with one `#[path = "../tests/support/<this file>"] mod …;`.
#![allow(dead_code)]

// The HTTP plumbing is a child module of each server (path relative to this file), so this
// file stays includable alone with `#[path]`; a binary with both servers compiles it twice.
#[allow(clippy::duplicate_mod)]
#[path = "http.rs"]
mod http;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use http::{find_header, lock, Conn, HttpRequest, Net, Script, Server, Service};
#[allow(unused_imports)] // not every test binary names them
pub use http::{split_tokens, RecordedRequest, CHUNK_GAP};

/// What the server answers to a chat when nothing was scripted.
pub const DEFAULT_REPLY_TEXT: &str = "A person at a desk.\nCONFIDENCE: 0.9";
/// Default number of characters per streamed token.
pub const DEFAULT_TOKEN_CHARS: usize = 4;
const SSE_TYPE: &str = "text/event-stream; charset=utf-8";
const JSON_TYPE: &str = "application/json";

// ---------------------------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------------------------

/// A `POST /v1/chat/completions` body, decoded.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// `stream` field; absent (or null) means `false`, like OpenAI.
    pub stream: bool,
    pub temperature: Option<f64>,
    pub response_format: Option<Value>,
    /// The whole body as JSON (for `max_tokens`, `stream_options`, … and anything else).
    pub raw: Value,
    pub headers: Vec<(String, String)>,
}

impl ChatRequest {
    /// First header with this name, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Text of the first message with this role.
    pub fn first_text(&self, role: &str) -> Option<String> {
        self.messages
            .iter()
            .find(|m| m.role == role)
            .map(|m| m.text())
    }

    /// Text of the last message with this role.
    pub fn last_text(&self, role: &str) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == role)
            .map(|m| m.text())
    }

    /// All images of all messages, decoded from their data URLs.
    pub fn all_images(&self) -> Vec<Vec<u8>> {
        self.messages
            .iter()
            .flat_map(|m| m.images.iter().map(|i| i.bytes.clone()))
            .collect()
    }

    /// The JSON schema of `response_format: {type: json_schema}`, if any.
    pub fn json_schema(&self) -> Option<&Value> {
        self.response_format
            .as_ref()
            .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
            .and_then(|f| f.get("json_schema"))
            .and_then(|s| s.get("schema"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    /// `content` was a plain string (not a list of parts).
    pub content_is_string: bool,
    /// The string content, or the `text` of each `{"type":"text"}` part, in order.
    pub text_parts: Vec<String>,
    /// `image_url.url` of each `{"type":"image_url"}` part, exactly as sent.
    pub image_urls: Vec<String>,
    /// Those images decoded (every one decoded: the server answers 400 otherwise).
    pub images: Vec<Image>,
}

impl ChatMessage {
    /// The text parts joined with newlines.
    pub fn text(&self) -> String {
        self.text_parts.join("\n")
    }
}

/// An image from a `data:<mime>;base64,<data>` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// What the server does with one chat request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Streamed as SSE in tokens of the server's token size, or whole when not streaming.
    Text(String),
    /// Full control of a normal answer.
    Full {
        content: String,
        /// Sent first as `delta.reasoning_content` (`message.reasoning_content` whole).
        reasoning: Option<String>,
        /// Characters per token; 0 means the server default.
        token_chars: usize,
        delay_per_token: Duration,
        /// Delay before the response headers (time to first byte).
        first_byte_delay: Duration,
        /// Write each SSE event in pieces whose boundaries fall inside multi-byte UTF-8
        /// characters (each piece its own HTTP chunk, [`CHUNK_GAP`] apart).
        split_utf8: bool,
        /// `finish_reason` of the last chunk (default `"stop"`).
        finish_reason: String,
    },
    /// Plain HTTP answer, e.g. 500 with an OpenAI error object, or 503.
    Status { code: u16, body: String },
    /// Read the request and never answer; the socket stays open until the client closes it
    /// or the server stops.
    Hang,
    /// Stream some content, then close the socket without `finish_reason`, `[DONE]` or the
    /// terminating 0-chunk. When not streaming: a truncated body, then close.
    DropMidStream { content_before: String },
    /// 200 stream with some content, then `data: {"error":{…}}`, then `data: [DONE]`.
    /// When not streaming: HTTP 500 with that error object.
    ErrorEvent {
        content_before: String,
        message: String,
    },
    /// Some content, then an event that is not JSON (`data: {"id":"chatcmpl-1","cho`), then
    /// the final chunk and `[DONE]`. When not streaming: 200 with that non-JSON body.
    Malformed { content_before: String },
    /// 200 `text/event-stream` chunked response whose chunks are exactly these bytes (empty
    /// pieces are skipped), [`CHUNK_GAP`] apart, then the terminating 0-chunk.
    RawChunks(Vec<Vec<u8>>),
    /// Wait, then reply.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// Plain text answer.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Text(s.into())
    }

    /// Answer whose content is the JSON text of `value`.
    pub fn json(value: &Value) -> Reply {
        Reply::Text(value.to_string())
    }

    /// A [`Reply::Full`] with default settings.
    pub fn full(content: impl Into<String>) -> Reply {
        let f = FullReply::new(content.into());
        f.into_reply()
    }

    /// HTTP status with a raw body.
    pub fn status(code: u16, body: impl Into<String>) -> Reply {
        Reply::Status {
            code,
            body: body.into(),
        }
    }

    /// HTTP status with an OpenAI error object `{"error":{"message":msg,…}}`.
    pub fn error(code: u16, msg: &str) -> Reply {
        Reply::Status {
            code,
            body: error_body(code, msg).to_string(),
        }
    }

    pub fn drop_mid_stream(content_before: impl Into<String>) -> Reply {
        Reply::DropMidStream {
            content_before: content_before.into(),
        }
    }

    pub fn error_event(content_before: impl Into<String>, message: impl Into<String>) -> Reply {
        Reply::ErrorEvent {
            content_before: content_before.into(),
            message: message.into(),
        }
    }

    pub fn malformed(content_before: impl Into<String>) -> Reply {
        Reply::Malformed {
            content_before: content_before.into(),
        }
    }

    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delayed(delay, Box::new(reply))
    }

    /// Wrap this reply in a delay.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::delayed(delay, self)
    }

    // Builder setters: they turn `Text` into `Full` and change `Full`; other variants are
    // returned unchanged.

    pub fn reasoning(self, reasoning: impl Into<String>) -> Reply {
        self.map_full(|f| f.reasoning = Some(reasoning.into()))
    }

    pub fn token_chars(self, n: usize) -> Reply {
        self.map_full(|f| f.token_chars = n)
    }

    pub fn delay_per_token(self, d: Duration) -> Reply {
        self.map_full(|f| f.delay_per_token = d)
    }

    pub fn first_byte_delay(self, d: Duration) -> Reply {
        self.map_full(|f| f.first_byte_delay = d)
    }

    pub fn split_utf8(self) -> Reply {
        self.map_full(|f| f.split_utf8 = true)
    }

    pub fn finish_reason(self, reason: impl Into<String>) -> Reply {
        self.map_full(|f| f.finish_reason = reason.into())
    }

    fn map_full(self, f: impl FnOnce(&mut FullReply)) -> Reply {
        let mut full = match self {
            Reply::Text(content) => FullReply::new(content),
            Reply::Full {
                content,
                reasoning,
                token_chars,
                delay_per_token,
                first_byte_delay,
                split_utf8,
                finish_reason,
            } => FullReply {
                content,
                reasoning,
                token_chars,
                delay_per_token,
                first_byte_delay,
                split_utf8,
                finish_reason,
            },
            other => return other,
        };
        f(&mut full);
        full.into_reply()
    }
}

/// A `data:` URL for image bytes, the way a client sends them.
pub fn image_data_url(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", BASE64.encode(bytes))
}

/// OpenAI's error object for an HTTP status.
pub fn error_body(code: u16, msg: &str) -> Value {
    let kind = match code {
        400 | 404 | 422 => "invalid_request_error",
        401 => "authentication_error",
        429 => "rate_limit_error",
        _ => "server_error",
    };
    json!({ "error": { "message": msg, "type": kind, "param": null, "code": code } })
}

/// Decode a `data:<mime>;base64,<data>` URL; the error is the server's message.
pub fn decode_data_url(url: &str) -> Result<Image, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| "Invalid image URL: only data URLs are accepted here".to_string())?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| "Invalid image URL: no ',' in the data URL".to_string())?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or_else(|| "Invalid image URL: the data URL is not base64".to_string())?;
    if !mime.starts_with("image/") {
        return Err(format!(
            "Invalid image URL: unsupported media type {mime:?}"
        ));
    }
    let bytes = BASE64
        .decode(data.trim())
        .map_err(|e| format!("Invalid image URL: {e}"))?;
    Ok(Image {
        mime: mime.to_string(),
        bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// The server's state (one mutex): transport, chat script, and what is this server's own.
pub struct State {
    net: Net,
    script: Script<ChatRequest, Reply>,
    models: Vec<String>,
    api_key: Option<String>,
    next_completion: u64,
}

type Shared = Arc<Mutex<State>>;

impl Service for State {
    type Chat = ChatRequest;
    type Reply = Reply;

    fn net(&mut self) -> &mut Net {
        &mut self.net
    }

    fn script(&mut self) -> &mut Script<ChatRequest, Reply> {
        &mut self.script
    }

    fn handle<'a>(
        shared: &'a Shared,
        conn: &'a mut Conn,
        req: HttpRequest,
        keep_alive: bool,
    ) -> impl std::future::Future<Output = io::Result<bool>> + Send + 'a {
        handle_request(shared, conn, req, keep_alive)
    }
}

/// Fake OpenAI-compatible server. Dropping it closes the listener and every connection and
/// stops its tasks (and its runtime, for [`OpenAiTestServer::start_in_thread`]).
///
/// The methods common to the fake servers (`url` — without `/v1` —, `push_reply`,
/// `set_handler`, `requests`, `chat_requests`, `wait_for_chats`, `stop_listening`,
/// `resume_listening`, …) are in `http.rs` ([`Server`]); the OpenAI-specific ones are below.
pub type OpenAiTestServer = Server<State>;

impl Server<State> {
    /// Start on the current tokio runtime (call inside a tokio runtime).
    pub async fn start(models: &[&str]) -> Self {
        Self::bind_here(State::new(models))
    }

    /// Start on a runtime of its own (one worker thread), for sync tests, tests that run
    /// a child process, or tests that block.
    pub fn start_in_thread(models: &[&str]) -> Self {
        Self::bind_in_thread("openai-test-server", State::new(models))
    }

    /// Replace the model list (`/v1/models`, and which models chats accept; exact names).
    pub fn set_models(&self, models: &[&str]) {
        self.lock().models = models.iter().map(|m| m.to_string()).collect();
    }

    /// Require `Authorization: Bearer KEY` on every `/v1/` request (`None`: no check).
    pub fn set_api_key(&self, key: Option<&str>) {
        self.lock().api_key = key.map(String::from);
    }
}

impl State {
    fn new(models: &[&str]) -> Self {
        State {
            net: Net::default(),
            script: Script::new(DEFAULT_TOKEN_CHARS),
            models: models.iter().map(|m| m.to_string()).collect(),
            api_key: None,
            next_completion: 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

/// Ok(true) when the connection may serve another request.
async fn handle_request(
    shared: &Shared,
    conn: &mut Conn,
    req: HttpRequest,
    keep_alive: bool,
) -> io::Result<bool> {
    let api_key = lock(shared).api_key.clone();
    let route = req.path.split('?').next().unwrap_or_default().to_string();
    let head_only = req.method == "HEAD";
    if let Some(key) = api_key.filter(|_| route.starts_with("/v1/")) {
        let expected = format!("Bearer {key}");
        if find_header(&req.headers, "authorization") != Some(expected.as_str()) {
            let body = json!({ "error": "Unauthorized" }).to_string();
            conn.write_fixed(401, JSON_TYPE, body.as_bytes(), keep_alive, head_only)
                .await?;
            return Ok(true);
        }
    }
    match (req.method.as_str(), route.as_str()) {
        ("GET" | "HEAD", "/health") => {
            let body = json!({ "status": "ok" }).to_string();
            conn.write_fixed(200, JSON_TYPE, body.as_bytes(), keep_alive, head_only)
                .await?;
        }
        ("GET" | "HEAD", "/v1/models") => {
            let models = lock(shared).models.clone();
            let body = models_json(&models).to_string();
            conn.write_fixed(200, JSON_TYPE, body.as_bytes(), keep_alive, head_only)
                .await?;
        }
        ("POST", "/v1/chat/completions") => {
            return handle_chat(shared, conn, req, keep_alive).await
        }
        _ => {
            let body = json!({ "detail": "Not Found" }).to_string();
            conn.write_fixed(404, JSON_TYPE, body.as_bytes(), keep_alive, head_only)
                .await?;
        }
    }
    Ok(true)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn models_json(models: &[String]) -> Value {
    let created = unix_now();
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": m,
                "parent": null,
                "max_model_len": 32768
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}

/// Parse a chat body; `Err` is the 400 message for a bad image.
fn parse_chat(raw: Value, headers: &[(String, String)]) -> (ChatRequest, Option<String>) {
    let mut bad_image = None;
    let model = raw
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut messages = Vec::new();
    for m in raw
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut msg = ChatMessage {
            role,
            content_is_string: false,
            text_parts: Vec::new(),
            image_urls: Vec::new(),
            images: Vec::new(),
        };
        match m.get("content") {
            Some(Value::String(s)) => {
                msg.content_is_string = true;
                msg.text_parts.push(s.clone());
            }
            Some(Value::Array(parts)) => {
                for p in parts {
                    match p.get("type").and_then(Value::as_str) {
                        Some("text") => msg.text_parts.push(
                            p.get("text")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        ),
                        Some("image_url") => {
                            // `image_url` is `{"url": …}` (or, leniently, the URL string).
                            let url = match p.get("image_url") {
                                Some(Value::String(s)) => s.clone(),
                                Some(o) => o
                                    .get("url")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string(),
                                None => String::new(),
                            };
                            match decode_data_url(&url) {
                                Ok(img) => msg.images.push(img),
                                Err(e) => {
                                    bad_image.get_or_insert(e);
                                }
                            }
                            msg.image_urls.push(url);
                        }
                        _ => {
                            bad_image
                                .get_or_insert_with(|| format!("unsupported content part {p}"));
                        }
                    }
                }
            }
            _ => {}
        }
        messages.push(msg);
    }
    let non_null = |k: &str| raw.get(k).filter(|v| !v.is_null()).cloned();
    let chat = ChatRequest {
        model,
        messages,
        stream: raw.get("stream").and_then(Value::as_bool).unwrap_or(false),
        temperature: raw.get("temperature").and_then(Value::as_f64),
        response_format: non_null("response_format"),
        headers: headers.to_vec(),
        raw,
    };
    (chat, bad_image)
}

async fn handle_chat(
    shared: &Shared,
    conn: &mut Conn,
    req: HttpRequest,
    keep_alive: bool,
) -> io::Result<bool> {
    let raw: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            let body = error_body(400, "the request body must be a JSON object").to_string();
            conn.write_fixed(400, JSON_TYPE, body.as_bytes(), keep_alive, false)
                .await?;
            return Ok(true);
        }
        Err(e) => {
            let body = error_body(400, &format!("invalid JSON: {e}")).to_string();
            conn.write_fixed(400, JSON_TYPE, body.as_bytes(), keep_alive, false)
                .await?;
            return Ok(true);
        }
    };
    let (chat, bad_image) = parse_chat(raw, &req.headers);
    http::record_chat(shared, &chat);
    if let Some(msg) = bad_image {
        let body = error_body(400, &msg).to_string();
        conn.write_fixed(400, JSON_TYPE, body.as_bytes(), keep_alive, false)
            .await?;
        return Ok(true);
    }
    if chat.messages.is_empty() {
        let body = error_body(400, "messages: field required").to_string();
        conn.write_fixed(400, JSON_TYPE, body.as_bytes(), keep_alive, false)
            .await?;
        return Ok(true);
    }
    let (known, token_chars, token_delay, id) = {
        let mut st = lock(shared);
        let id = st.next_completion;
        st.next_completion += 1;
        (
            st.models.contains(&chat.model),
            st.script.token_chars,
            st.script.token_delay,
            id,
        )
    };
    if !known {
        let body = json!({ "error": {
            "message": format!("The model `{}` does not exist.", chat.model),
            "type": "invalid_request_error",
            "param": null,
            "code": "model_not_found"
        }})
        .to_string();
        conn.write_fixed(404, JSON_TYPE, body.as_bytes(), keep_alive, false)
            .await?;
        return Ok(true);
    }

    let reply = http::next_reply(shared, &chat)
        .unwrap_or_else(|| Reply::Text(DEFAULT_REPLY_TEXT.to_string()));
    let out = Out {
        model: chat.model.clone(),
        id: format!("chatcmpl-{id:08x}"),
        created: unix_now(),
        prompt_tokens: prompt_tokens(&chat),
    };
    let defaults = StreamDefaults {
        token_chars,
        token_delay,
    };
    send_reply(conn, &chat, &out, reply, defaults, keep_alive).await
}

#[derive(Clone, Copy)]
struct StreamDefaults {
    token_chars: usize,
    token_delay: Duration,
}

struct FullReply {
    content: String,
    reasoning: Option<String>,
    token_chars: usize,
    delay_per_token: Duration,
    first_byte_delay: Duration,
    split_utf8: bool,
    finish_reason: String,
}

impl FullReply {
    fn new(content: String) -> Self {
        FullReply {
            content,
            reasoning: None,
            token_chars: 0,
            delay_per_token: Duration::ZERO,
            first_byte_delay: Duration::ZERO,
            split_utf8: false,
            finish_reason: "stop".into(),
        }
    }

    fn into_reply(self) -> Reply {
        Reply::Full {
            content: self.content,
            reasoning: self.reasoning,
            token_chars: self.token_chars,
            delay_per_token: self.delay_per_token,
            first_byte_delay: self.first_byte_delay,
            split_utf8: self.split_utf8,
            finish_reason: self.finish_reason,
        }
    }
}

/// The fields every object of one completion shares.
struct Out {
    model: String,
    id: String,
    created: u64,
    prompt_tokens: u64,
}

impl Out {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>, usage: Option<u64>) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason
            }]
        });
        if let Some(n) = usage {
            v["usage"] = self.usage(n);
        }
        v
    }

    fn content_chunk(&self, content: &str) -> Value {
        self.chunk(json!({ "content": content }), None, None)
    }

    fn role_chunk(&self) -> Value {
        self.chunk(json!({ "role": "assistant", "content": "" }), None, None)
    }

    fn usage(&self, completion: u64) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion
        })
    }

    fn completion(
        &self,
        content: &str,
        reasoning: Option<&str>,
        finish: &str,
        tokens: u64,
    ) -> Value {
        let mut message = json!({ "role": "assistant", "content": content, "tool_calls": [] });
        if let Some(r) = reasoning {
            message["reasoning_content"] = Value::String(r.to_string());
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish
            }],
            "usage": self.usage(tokens)
        })
    }
}

fn prompt_tokens(chat: &ChatRequest) -> u64 {
    let chars: usize = chat.messages.iter().map(|m| m.text().chars().count()).sum();
    let images: usize = chat.messages.iter().map(|m| m.images.len()).sum();
    (chars / 4 + images * 256 + 8) as u64
}

impl Conn {
    /// One SSE event (`data: …` and the blank line) as one chunk, or split inside
    /// characters.
    async fn write_event(&mut self, data: &str, split_utf8: bool) -> io::Result<()> {
        self.write_line(&format!("data: {data}\n"), split_utf8)
            .await
    }

    async fn write_done(&mut self) -> io::Result<()> {
        self.write_event("[DONE]", false).await
    }
}

async fn send_reply(
    conn: &mut Conn,
    chat: &ChatRequest,
    out: &Out,
    mut reply: Reply,
    defaults: StreamDefaults,
    keep_alive: bool,
) -> io::Result<bool> {
    while let Reply::Delayed(d, inner) = reply {
        tokio::time::sleep(d).await;
        reply = *inner;
    }
    let plain_tokens = |s: &str| split_tokens(s, defaults.token_chars);

    match reply {
        Reply::Delayed(..) => unreachable!("delays unwrapped above"),
        Reply::Text(content) => {
            let mut full = FullReply::new(content);
            full.delay_per_token = defaults.token_delay;
            send_full(conn, chat, out, full, defaults, keep_alive).await
        }
        Reply::Full {
            content,
            reasoning,
            token_chars,
            delay_per_token,
            first_byte_delay,
            split_utf8,
            finish_reason,
        } => {
            let full = FullReply {
                content,
                reasoning,
                token_chars,
                delay_per_token,
                first_byte_delay,
                split_utf8,
                finish_reason,
            };
            send_full(conn, chat, out, full, defaults, keep_alive).await
        }
        Reply::Status { code, body } => {
            let ctype = if body.trim_start().starts_with('{') {
                JSON_TYPE
            } else {
                "text/plain; charset=utf-8"
            };
            conn.write_fixed(code, ctype, body.as_bytes(), keep_alive, false)
                .await?;
            Ok(true)
        }
        Reply::Hang => {
            // Never answer; hold the socket until the client goes away or the server stops.
            let mut sink = [0u8; 4096];
            while conn.stream.read(&mut sink).await? > 0 {}
            Ok(false)
        }
        Reply::DropMidStream { content_before } => {
            if chat.stream {
                conn.write_head(200, SSE_TYPE, None, keep_alive).await?;
                conn.write_event(&out.role_chunk().to_string(), false)
                    .await?;
                for tok in plain_tokens(&content_before) {
                    conn.write_event(&out.content_chunk(&tok).to_string(), false)
                        .await?;
                }
            } else {
                let body = out.completion(&content_before, None, "stop", 1).to_string();
                let cut = body.len() / 2;
                conn.write_head(200, JSON_TYPE, Some(body.len()), keep_alive)
                    .await?;
                conn.stream.write_all(&body.as_bytes()[..cut]).await?;
                conn.stream.flush().await?;
            }
            // Give the client a moment to read what was sent, then vanish.
            tokio::time::sleep(CHUNK_GAP).await;
            Ok(false)
        }
        Reply::ErrorEvent {
            content_before,
            message,
        } => {
            let err = error_body(500, &message).to_string();
            if chat.stream {
                conn.write_head(200, SSE_TYPE, None, keep_alive).await?;
                conn.write_event(&out.role_chunk().to_string(), false)
                    .await?;
                for tok in plain_tokens(&content_before) {
                    conn.write_event(&out.content_chunk(&tok).to_string(), false)
                        .await?;
                }
                conn.write_event(&err, false).await?;
                conn.write_done().await?;
                conn.write_end().await?;
            } else {
                conn.write_fixed(500, JSON_TYPE, err.as_bytes(), keep_alive, false)
                    .await?;
            }
            Ok(true)
        }
        Reply::Malformed { content_before } => {
            let bad = format!("{{\"id\":\"{}\",\"cho", out.id);
            if chat.stream {
                conn.write_head(200, SSE_TYPE, None, keep_alive).await?;
                let tokens = plain_tokens(&content_before);
                for tok in &tokens {
                    conn.write_event(&out.content_chunk(tok).to_string(), false)
                        .await?;
                }
                conn.write_event(&bad, false).await?;
                let last = out.chunk(json!({}), Some("stop"), Some(tokens.len() as u64));
                conn.write_event(&last.to_string(), false).await?;
                conn.write_done().await?;
                conn.write_end().await?;
            } else {
                conn.write_fixed(200, JSON_TYPE, bad.as_bytes(), keep_alive, false)
                    .await?;
            }
            Ok(true)
        }
        Reply::RawChunks(chunks) => {
            conn.write_head(200, SSE_TYPE, None, keep_alive).await?;
            let chunks: Vec<Vec<u8>> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
            let count = chunks.len();
            for (i, chunk) in chunks.iter().enumerate() {
                conn.write_chunk(chunk).await?;
                if i + 1 < count {
                    tokio::time::sleep(CHUNK_GAP).await;
                }
            }
            conn.write_end().await?;
            Ok(true)
        }
    }
}

async fn send_full(
    conn: &mut Conn,
    chat: &ChatRequest,
    out: &Out,
    full: FullReply,
    defaults: StreamDefaults,
    keep_alive: bool,
) -> io::Result<bool> {
    let token_chars = if full.token_chars == 0 {
        defaults.token_chars
    } else {
        full.token_chars
    };
    let reasoning = full.reasoning.filter(|r| !r.is_empty());
    let reasoning_tokens = reasoning
        .as_deref()
        .map(|r| split_tokens(r, token_chars))
        .unwrap_or_default();
    let content_tokens = split_tokens(&full.content, token_chars);
    let eval_count = (reasoning_tokens.len() + content_tokens.len()).max(1) as u64;

    tokio::time::sleep(full.first_byte_delay).await;
    if !chat.stream {
        // The server generates everything, then answers once.
        tokio::time::sleep(full.delay_per_token * eval_count as u32).await;
        let body = out
            .completion(
                &full.content,
                reasoning.as_deref(),
                &full.finish_reason,
                eval_count,
            )
            .to_string();
        conn.write_fixed(200, JSON_TYPE, body.as_bytes(), keep_alive, false)
            .await?;
        return Ok(true);
    }

    conn.write_head(200, SSE_TYPE, None, keep_alive).await?;
    let gap = if full.split_utf8 {
        full.delay_per_token.max(CHUNK_GAP)
    } else {
        full.delay_per_token
    };
    let events = std::iter::once(out.role_chunk())
        .chain(
            reasoning_tokens
                .iter()
                .map(|t| out.chunk(json!({ "reasoning_content": t }), None, None)),
        )
        .chain(content_tokens.iter().map(|t| out.content_chunk(t)));
    for event in events {
        conn.write_event(&event.to_string(), full.split_utf8)
            .await?;
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    // The last chunk carries finish_reason and usage (as llama.cpp sends it).
    let last = out.chunk(json!({}), Some(&full.finish_reason), Some(eval_count));
    conn.write_event(&last.to_string(), full.split_utf8).await?;
    conn.write_done().await?;
    conn.write_end().await?;
    Ok(true)
}
