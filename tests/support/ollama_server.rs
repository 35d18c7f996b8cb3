//! In-process fake Ollama server that speaks the real HTTP/1.1 wire format.
//!
//! HTTP is hand-rolled on `tokio::net::TcpListener` (127.0.0.1, ephemeral port) so tests can
//! inject faults at the byte level: chunk boundaries in the middle of UTF-8 characters,
//! connections dropped mid-stream, error lines, malformed lines, hangs, refused connections.
//!
//! Wire format follows Ollama's `docs/api.md`:
//! * `POST /api/chat` — streaming by default (`application/x-ndjson`, one JSON object per line,
//!   each line written as its own HTTP chunk), `"stream": false` gives one JSON object.
//! * `GET /api/tags`, `GET /api/version`, `GET /api/ps`, `POST /api/show` (`capabilities`,
//!   settable), `GET /` (`Ollama is running`), anything else is a `404 page not found` like
//!   Ollama's router.
//!
//! Model residency, like Ollama's scheduler: a model that is not in memory costs
//! [`OllamaTestServer::set_load_time`] before its first byte (0 by default, so nothing
//! waits unless a test asks), requests arriving during a load wait for that same load, and
//! a model is unloaded when its `keep_alive` (the latest request's; the server default,
//! 5 minutes, when absent; negative = never; 0 = right away) runs out after its last
//! request ends. `POST /api/chat` with no messages is a load (Ollama's documented way:
//! `done_reason: "load"`, or `"unload"` with `keep_alive: 0`); it is not a chat, so it is
//! recorded in `load_requests()`, not `chat_requests()`. `GET /api/ps` lists what is loaded.
//! `loads()` and `served()` tell which request paid for a load.
//!
//! JSON is written the way Go's `encoding/json` writes it (`<`, `>`, `&` escaped as `\u003c`…),
//! so clients are exercised against the real escaping.
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

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use http::{find_header, lock, Conn, HttpRequest, Net, Script, Server, Service};
#[allow(unused_imports)] // not every test binary names them
pub use http::{split_tokens, RecordedRequest, CHUNK_GAP};

/// What the server answers to `/api/chat` when nothing was scripted.
pub const DEFAULT_REPLY_TEXT: &str = "A person at a desk.\nCONFIDENCE: 0.9";
/// Version reported by `GET /api/version` unless changed with `set_version`.
pub const DEFAULT_VERSION: &str = "0.12.11";
/// Default number of characters per streamed token.
pub const DEFAULT_TOKEN_CHARS: usize = 4;
const HUGE_LINE_BYTES: usize = 4096;

/// Go's `base64.StdEncoding` (what Ollama's JSON decoding of `images` uses): padded standard
/// alphabet, non-zero trailing bits tolerated.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

// ---------------------------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------------------------

/// A `POST /api/chat` body, decoded.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// `stream` field; absent (or null) means `true`, like Ollama.
    pub stream: bool,
    /// `think` field; a string level ("high", …) counts as `Some(true)`.
    pub think: Option<bool>,
    pub format: Option<Value>,
    pub options: Option<Value>,
    /// The whole body as JSON (for `keep_alive`, `logprobs`, … and anything else).
    pub raw: Value,
    pub headers: Vec<(String, String)>,
}

impl ChatRequest {
    /// First header with this name, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Content of the first message with this role.
    pub fn first_content(&self, role: &str) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.role == role)
            .map(|m| m.content.as_str())
    }

    /// Content of the last message with this role.
    pub fn last_content(&self, role: &str) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == role)
            .map(|m| m.content.as_str())
    }

    /// All images of all messages, base64-decoded.
    pub fn all_images(&self) -> Vec<Vec<u8>> {
        self.messages
            .iter()
            .flat_map(|m| m.decoded_images())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// Images exactly as sent (base64 text).
    pub images: Vec<String>,
}

impl ChatMessage {
    /// Images base64-decoded; an image that does not decode is left out (the server already
    /// answered such a request with 400).
    pub fn decoded_images(&self) -> Vec<Vec<u8>> {
        self.images
            .iter()
            .filter_map(|s| decode_go_base64(s).ok())
            .collect()
    }
}

/// One load the server performed (a model brought into memory).
#[derive(Debug, Clone)]
pub struct LoadRecord {
    pub model: String,
    /// Started by a load request (no messages), not by a chat.
    pub by_load_request: bool,
    pub started: Instant,
}

/// One `/api/chat` request that reached a model (chat or load), in order of arrival.
#[derive(Debug, Clone)]
pub struct Served {
    pub model: String,
    /// A load request (no messages).
    pub load_request: bool,
    /// It found the model not in memory (or still loading) and waited for a load.
    pub cold: bool,
    /// Its last user message (to tell which chat it was).
    pub user: Option<String>,
    /// Its `keep_alive` as sent (None: absent).
    pub keep_alive: Option<Value>,
    pub arrived: Instant,
}

/// How long a model stays loaded after its last request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    Forever,
    For(Duration),
}

/// A model in memory.
struct Resident {
    /// When its load is done (in the past once loaded).
    ready_at: Instant,
    /// Requests holding it (a request waiting for its load holds it too).
    active: usize,
    /// The latest request's `keep_alive`.
    session: Session,
    /// Set when `active` drops to 0: unloaded then (None: never, or busy).
    expires: Option<Instant>,
}

/// The server's models in memory and the loads it did.
struct Residency {
    load_time: Duration,
    default_session: Session,
    models: HashMap<String, Resident>,
    loads: Vec<LoadRecord>,
    served: Vec<Served>,
    load_requests: Vec<ChatRequest>,
}

impl Residency {
    fn new() -> Self {
        Residency {
            load_time: Duration::ZERO,
            default_session: Session::For(Duration::from_secs(300)),
            models: HashMap::new(),
            loads: Vec::new(),
            served: Vec::new(),
            load_requests: Vec::new(),
        }
    }

    /// Unload what has expired.
    fn expire(&mut self, now: Instant) {
        self.models
            .retain(|_, r| r.active > 0 || r.expires.is_none_or(|t| t > now));
    }

    /// A request takes the model (loading it if needed); when it may start.
    /// `record`: keep it in `served` (off while the server does not record).
    fn acquire(
        &mut self,
        chat: &ChatRequest,
        session: Session,
        load_request: bool,
        record: bool,
    ) -> Instant {
        let now = Instant::now();
        self.expire(now);
        let model = normalize_model(&chat.model);
        let load_time = self.load_time;
        let mut cold = false;
        let r = self.models.entry(model.clone()).or_insert_with(|| {
            cold = true;
            Resident {
                ready_at: now + load_time,
                active: 0,
                session,
                expires: None,
            }
        });
        if cold {
            self.loads.push(LoadRecord {
                model: model.clone(),
                by_load_request: load_request,
                started: now,
            });
        }
        let cold = cold || r.ready_at > now;
        r.active += 1;
        r.session = session;
        r.expires = None;
        let ready_at = r.ready_at;
        if !record {
            return ready_at;
        }
        self.served.push(Served {
            model,
            load_request,
            cold,
            user: chat.last_content("user").map(String::from),
            keep_alive: chat.raw.get("keep_alive").cloned(),
            arrived: now,
        });
        ready_at
    }

    /// A request ends: the keep-alive clock starts when the last one does.
    fn release(&mut self, model: &str) {
        let now = Instant::now();
        let model = normalize_model(model);
        let Some(r) = self.models.get_mut(&model) else {
            return;
        };
        r.active = r.active.saturating_sub(1);
        if r.active == 0 {
            match r.session {
                Session::Forever => r.expires = None,
                Session::For(d) if d.is_zero() => {
                    self.models.remove(&model);
                }
                Session::For(d) => r.expires = Some(now + d),
            }
        }
    }
}

/// Holds a model for one request; releases it when dropped (also when the connection
/// breaks or the server stops).
struct Hold {
    shared: Shared,
    model: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        lock(&self.shared).residency.release(&self.model);
    }
}

/// `keep_alive` the way Ollama reads it: absent or null = the server default; a number of
/// seconds; a Go duration string; negative = forever. Err: Ollama's 400 message.
fn parse_session(v: Option<&Value>, default: Session) -> Result<Session, String> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(0.0);
            Ok(if secs < 0.0 {
                Session::Forever
            } else {
                Session::For(Duration::from_secs_f64(secs))
            })
        }
        Some(Value::String(s)) => go_duration(s)
            .map(|(neg, d)| {
                if neg {
                    Session::Forever
                } else {
                    Session::For(d)
                }
            })
            .ok_or_else(|| format!("time: invalid duration \"{s}\"")),
        Some(other) => Err(format!("Unsupported type: '{other}'")),
    }
}

/// Go's `time.ParseDuration` (enough of it): sign, then number+unit pairs; "0" alone.
fn go_duration(s: &str) -> Option<(bool, Duration)> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some((false, Duration::ZERO));
    }
    if rest.is_empty() {
        return None;
    }
    let mut secs = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        secs += value
            * match &rest[..u] {
                "ns" => 1e-9,
                "us" | "µs" | "μs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
        rest = &rest[u..];
    }
    Some((neg && secs > 0.0, Duration::from_secs_f64(secs)))
}

/// What the server does with one `/api/chat` request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Streamed in tokens of the server's token size, or whole when `stream: false`.
    Text(String),
    /// Full control of a normal answer.
    Full {
        content: String,
        /// Sent first as `message.thinking` chunks unless the request said `"think": false`.
        thinking: Option<String>,
        /// Characters per token; 0 means the server default.
        token_chars: usize,
        delay_per_token: Duration,
        /// Delay before the response headers (time to first byte).
        first_byte_delay: Duration,
        /// Write each NDJSON line in pieces whose boundaries fall inside multi-byte UTF-8
        /// characters (each piece its own HTTP chunk, [`CHUNK_GAP`] apart).
        split_utf8: bool,
    },
    /// Plain HTTP answer, e.g. 500 `{"error":"..."}` or 503.
    Status { code: u16, body: String },
    /// Read the request and never answer; the socket stays open until the client closes it
    /// or the server stops.
    Hang,
    /// Stream some content, then close the socket without `done:true` and without the
    /// terminating 0-chunk. With `stream:false`: a truncated body, then close.
    DropMidStream { content_before: String },
    /// 200 stream with some content, then a `{"error":"…"}` line, then a clean end.
    /// With `stream:false`: HTTP 500 `{"error":"…"}`.
    ErrorLine {
        content_before: String,
        error: String,
    },
    /// Some content, then a line that is not JSON (`{"model":"M","mess`), then the final
    /// `done:true` line. With `stream:false`: 200 with that non-JSON body.
    Malformed { content_before: String },
    /// That many bytes of ASCII content ([`huge_content`]) in many lines, then done.
    Huge { bytes: usize },
    /// 200 `application/x-ndjson` chunked response whose chunks are exactly these bytes
    /// (empty pieces are skipped: an empty chunk would end the body), [`CHUNK_GAP`] apart,
    /// then the terminating 0-chunk.
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

    /// A [`Reply::Full`] with default settings (server token size, no delays, no thinking).
    pub fn full(content: impl Into<String>) -> Reply {
        Reply::Full {
            content: content.into(),
            thinking: None,
            token_chars: 0,
            delay_per_token: Duration::ZERO,
            first_byte_delay: Duration::ZERO,
            split_utf8: false,
        }
    }

    /// Content with thinking text (sent first unless the request has `think:false`).
    pub fn with_thinking(content: impl Into<String>, thinking: impl Into<String>) -> Reply {
        Reply::full(content).thinking(thinking)
    }

    /// HTTP status with a raw body.
    pub fn status(code: u16, body: impl Into<String>) -> Reply {
        Reply::Status {
            code,
            body: body.into(),
        }
    }

    /// HTTP status with Ollama's error body `{"error":msg}`.
    pub fn error(code: u16, msg: &str) -> Reply {
        Reply::Status {
            code,
            body: json!({ "error": msg }).to_string(),
        }
    }

    pub fn drop_mid_stream(content_before: impl Into<String>) -> Reply {
        Reply::DropMidStream {
            content_before: content_before.into(),
        }
    }

    pub fn error_line(content_before: impl Into<String>, error: impl Into<String>) -> Reply {
        Reply::ErrorLine {
            content_before: content_before.into(),
            error: error.into(),
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

    pub fn thinking(self, thinking: impl Into<String>) -> Reply {
        self.map_full(|f| f.thinking = Some(thinking.into()))
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

    fn map_full(self, f: impl FnOnce(&mut FullReply)) -> Reply {
        let mut full = match self {
            Reply::Text(content) => FullReply::new(content),
            Reply::Full {
                content,
                thinking,
                token_chars,
                delay_per_token,
                first_byte_delay,
                split_utf8,
            } => FullReply {
                content,
                thinking,
                token_chars,
                delay_per_token,
                first_byte_delay,
                split_utf8,
            },
            other => return other,
        };
        f(&mut full);
        Reply::Full {
            content: full.content,
            thinking: full.thinking,
            token_chars: full.token_chars,
            delay_per_token: full.delay_per_token,
            first_byte_delay: full.first_byte_delay,
            split_utf8: full.split_utf8,
        }
    }
}

/// The content that [`Reply::Huge`] sends for `bytes` bytes (ASCII, deterministic).
pub fn huge_content(bytes: usize) -> String {
    const PATTERN: &str = "The quick brown fox jumps over the lazy dog 0123456789. ";
    let mut s = String::with_capacity(bytes + PATTERN.len());
    while s.len() < bytes {
        s.push_str(PATTERN);
    }
    s.truncate(bytes);
    s
}

/// Base64-encode bytes the way a client puts them in `images`.
pub fn encode_image(bytes: &[u8]) -> String {
    GO_STD_BASE64.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// The server's state (one mutex): transport, chat script, and what is Ollama's own.
pub struct State {
    net: Net,
    script: Script<ChatRequest, Reply>,
    models: Vec<String>,
    logprob: Option<f64>,
    legacy_not_found: bool,
    version: String,
    /// `capabilities` of every model in `/api/show`; None: the field is left out (older
    /// Ollama).
    capabilities: Option<Vec<String>>,
    residency: Residency,
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

/// Fake Ollama server. Dropping it closes the listener and every connection and stops its
/// tasks (and its runtime, for [`OllamaTestServer::start_in_thread`]).
///
/// The methods common to the fake servers (`url`, `push_reply`, `set_handler`, `requests`,
/// `chat_requests`, `wait_for_chats`, `stop_listening`, `resume_listening`, …) are in
/// `http.rs` ([`Server`]); the Ollama-specific ones are below.
pub type OllamaTestServer = Server<State>;

impl Server<State> {
    /// Start on the current tokio runtime (call inside a tokio runtime).
    pub async fn start(models: &[&str]) -> Self {
        Self::bind_here(State::new(models))
    }

    /// Start on a runtime of its own (one worker thread), for sync tests, tests that run
    /// a child process, or tests that block.
    pub fn start_in_thread(models: &[&str]) -> Self {
        Self::bind_in_thread("ollama-test-server", State::new(models))
    }

    /// Replace the model list (`/api/tags`, and which models `/api/chat` accepts).
    pub fn set_models(&self, models: &[&str]) {
        self.lock().models = models.iter().map(|m| m.to_string()).collect();
    }

    /// Report this log-probability for every content token of streamed replies when a
    /// request sends `"logprobs": true` (None, the default: like a server without them).
    pub fn set_logprob(&self, lp: Option<f64>) {
        self.lock().logprob = lp;
    }

    /// Use the older not-found wording `model "NAME" not found, try pulling it first`.
    pub fn set_legacy_not_found(&self, legacy: bool) {
        self.lock().legacy_not_found = legacy;
    }

    pub fn set_version(&self, version: &str) {
        self.lock().version = version.to_string();
    }

    /// What `/api/show` lists under `capabilities` (default `completion`, `vision`);
    /// None leaves the field out, as Ollama before 0.6.4 did.
    pub fn set_capabilities(&self, caps: Option<&[&str]>) {
        self.lock().capabilities = caps.map(|c| c.iter().map(|s| s.to_string()).collect());
    }

    /// What loading a model that is not in memory costs (default 0).
    pub fn set_load_time(&self, d: Duration) {
        self.lock().residency.load_time = d;
    }

    /// The `keep_alive` of requests that send none (Ollama's `OLLAMA_KEEP_ALIVE`, 5m).
    pub fn set_default_keep_alive(&self, session: Session) {
        self.lock().residency.default_session = session;
    }

    /// The loads performed so far, in order.
    pub fn loads(&self) -> Vec<LoadRecord> {
        self.lock().residency.loads.clone()
    }

    /// Loads of `model` so far.
    pub fn load_count(&self, model: &str) -> usize {
        let m = normalize_model(model);
        self.loads().iter().filter(|l| l.model == m).count()
    }

    /// Every chat and load request that reached a model, in order of arrival.
    pub fn served(&self) -> Vec<Served> {
        self.lock().residency.served.clone()
    }

    /// Load requests (`/api/chat` with no messages), in order.
    pub fn load_requests(&self) -> Vec<ChatRequest> {
        self.lock().residency.load_requests.clone()
    }

    /// Models in memory now (a model still loading included), sorted.
    pub fn loaded_models(&self) -> Vec<String> {
        let mut st = self.lock();
        st.residency.expire(Instant::now());
        let mut v: Vec<String> = st.residency.models.keys().cloned().collect();
        v.sort();
        v
    }

    /// Unload a model no request holds, as Ollama does when another model needs the memory
    /// (or after a restart). False when it is not loaded or busy.
    pub fn evict(&self, model: &str) -> bool {
        let mut st = self.lock();
        let m = normalize_model(model);
        st.residency.expire(Instant::now());
        if st.residency.models.get(&m).is_some_and(|r| r.active == 0) {
            st.residency.models.remove(&m);
            true
        } else {
            false
        }
    }
}

impl State {
    fn new(models: &[&str]) -> Self {
        State {
            net: Net::default(),
            script: Script::new(DEFAULT_TOKEN_CHARS),
            models: models.iter().map(|m| m.to_string()).collect(),
            logprob: None,
            legacy_not_found: false,
            version: DEFAULT_VERSION.to_string(),
            capabilities: Some(vec!["completion".into(), "vision".into()]),
            residency: Residency::new(),
        }
    }
}

fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// JSON text as Go's `encoding/json` writes it (HTML-safe escaping).
fn go_json(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Decode like Go's `base64.StdEncoding` (CR/LF ignored); the error is Go's message.
fn decode_go_base64(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=';
    if let Some(pos) = bytes
        .iter()
        .position(|&b| !is_b64(b) && b != b'\r' && b != b'\n')
    {
        return Err(format!("illegal base64 data at input byte {pos}"));
    }
    let cleaned: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    GO_STD_BASE64.decode(&cleaned).map_err(|_| {
        let pos = cleaned
            .iter()
            .position(|&b| b == b'=')
            .unwrap_or(cleaned.len() / 4 * 4);
        format!("illegal base64 data at input byte {pos}")
    })
}

/// Ollama treats `name` and `name:latest` as the same model.
fn normalize_model(name: &str) -> String {
    if name.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
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
    let route = req.path.split('?').next().unwrap_or_default().to_string();
    let head_only = req.method == "HEAD";
    let json_type = "application/json; charset=utf-8";
    let text_type = "text/plain; charset=utf-8";
    match (req.method.as_str(), route.as_str()) {
        ("GET" | "HEAD", "/") => {
            conn.write_fixed(200, text_type, b"Ollama is running", keep_alive, head_only)
                .await?;
        }
        ("GET" | "HEAD", "/api/version") => {
            let version = lock(shared).version.clone();
            let body = go_json(&json!({ "version": version }));
            conn.write_fixed(200, json_type, body.as_bytes(), keep_alive, head_only)
                .await?;
        }
        ("GET" | "HEAD", "/api/tags") => {
            let models = lock(shared).models.clone();
            let body = go_json(&tags_json(&models));
            conn.write_fixed(200, json_type, body.as_bytes(), keep_alive, head_only)
                .await?;
        }
        ("GET" | "HEAD", "/api/ps") => {
            let body = go_json(&ps_json(&mut lock(shared)));
            conn.write_fixed(200, json_type, body.as_bytes(), keep_alive, head_only)
                .await?;
        }
        ("POST", "/api/chat") => return handle_chat(shared, conn, req, keep_alive).await,
        ("POST", "/api/show") => {
            let name = serde_json::from_slice::<Value>(&req.body)
                .ok()
                .and_then(|v| v.get("model").or(v.get("name")).cloned())
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let (models, caps) = {
                let s = lock(shared);
                (s.models.clone(), s.capabilities.clone())
            };
            let known = models
                .iter()
                .any(|m| *m == name || *m == format!("{name}:latest"));
            if known {
                let mut v = json!({
                    "modelfile": "FROM x", "parameters": "", "template": "{{ .Prompt }}",
                    "details": {"format": "gguf", "family": "gemma3"},
                    "model_info": {}
                });
                if let Some(c) = caps {
                    v["capabilities"] = json!(c);
                }
                conn.write_fixed(
                    200,
                    json_type,
                    go_json(&v).as_bytes(),
                    keep_alive,
                    head_only,
                )
                .await?;
            } else {
                let body = go_json(&json!({ "error": format!("model '{name}' not found") }));
                conn.write_fixed(404, json_type, body.as_bytes(), keep_alive, head_only)
                    .await?;
            }
        }
        _ => {
            conn.write_fixed(404, text_type, b"404 page not found", keep_alive, head_only)
                .await?;
        }
    }
    Ok(true)
}

/// `/api/ps`: the models in memory. Like Ollama, a model loading or in use shows
/// `expires_at` as now + its keep_alive; one kept forever, ~292 years ahead.
fn ps_json(st: &mut State) -> Value {
    let now = Instant::now();
    st.residency.expire(now);
    let wall = chrono::Utc::now();
    let mut names: Vec<&String> = st.residency.models.keys().collect();
    names.sort();
    let list: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let r = &st.residency.models[name];
            let expires = match (r.expires, r.session) {
                (Some(t), _) => wall + chrono::Duration::from_std(t - now).unwrap_or_default(),
                (None, Session::For(d)) => wall + chrono::Duration::from_std(d).unwrap_or_default(),
                (None, Session::Forever) => wall + chrono::Duration::days(365 * 292),
            };
            json!({
                "name": name,
                "model": name,
                "size": 7_365_960_935u64,
                "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
                "details": {
                    "parent_model": "", "format": "gguf", "family": "gemma3",
                    "families": ["gemma3"], "parameter_size": "4.3B",
                    "quantization_level": "Q4_K_M"
                },
                "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "size_vram": 7_365_960_935u64,
                "context_length": 4096
            })
        })
        .collect();
    json!({ "models": list })
}

fn tags_json(models: &[String]) -> Value {
    let list: Vec<Value> = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let name = normalize_model(m);
            let tag = name.rsplit(':').next().unwrap_or("latest");
            let parameter_size = match tag {
                t if t.contains("26b") => "25.8B",
                t if t.contains("27b") => "27.4B",
                t if t.contains("12b") => "12.2B",
                t if t.contains("e2b") => "5.1B",
                t if t.contains("e4b") => "8.0B",
                _ => "4.3B",
            };
            let digest: String = format!("{:016x}", 0x5a17_u64 + i as u64 * 7919)
                .repeat(4)
                .chars()
                .take(64)
                .collect();
            json!({
                "name": name,
                "model": name,
                "modified_at": "2025-11-20T10:15:42.123456789+01:00",
                "size": 3_338_801_804u64 + i as u64 * 1_000_003,
                "digest": digest,
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "gemma3",
                    "families": ["gemma3"],
                    "parameter_size": parameter_size,
                    "quantization_level": "Q4_K_M"
                }
            })
        })
        .collect();
    json!({ "models": list })
}

fn parse_chat(raw: Value, headers: &[(String, String)]) -> ChatRequest {
    let model = raw
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let messages = raw
        .get("messages")
        .and_then(Value::as_array)
        .map(|msgs| {
            msgs.iter()
                .map(|m| ChatMessage {
                    role: m
                        .get("role")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    content: m
                        .get("content")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    images: m
                        .get("images")
                        .and_then(Value::as_array)
                        .map(|imgs| {
                            imgs.iter()
                                .map(|i| match i {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let stream = raw.get("stream").and_then(Value::as_bool).unwrap_or(true);
    let think = match raw.get("think") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(_)) => Some(true),
        _ => None,
    };
    let non_null = |k: &str| raw.get(k).filter(|v| !v.is_null()).cloned();
    ChatRequest {
        model,
        messages,
        stream,
        think,
        format: non_null("format"),
        options: non_null("options"),
        headers: headers.to_vec(),
        raw,
    }
}

async fn handle_chat(
    shared: &Shared,
    conn: &mut Conn,
    req: HttpRequest,
    keep_alive: bool,
) -> io::Result<bool> {
    let json_type = "application/json; charset=utf-8";
    let raw: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            let body = go_json(&json!({ "error": "invalid request body" }));
            conn.write_fixed(400, json_type, body.as_bytes(), keep_alive, false)
                .await?;
            return Ok(true);
        }
        Err(e) => {
            let msg = if req.body.is_empty() {
                "missing request body".to_string()
            } else {
                e.to_string()
            };
            let body = go_json(&json!({ "error": msg }));
            conn.write_fixed(400, json_type, body.as_bytes(), keep_alive, false)
                .await?;
            return Ok(true);
        }
    };
    let chat = parse_chat(raw, &req.headers);
    if chat.messages.is_empty() {
        return handle_load(shared, conn, chat, keep_alive).await;
    }
    http::record_chat(shared, &chat);

    // Validation in Ollama's order: JSON binding (base64 images) first, then the model.
    let bad_image = chat
        .messages
        .iter()
        .flat_map(|m| m.images.iter())
        .find_map(|img| decode_go_base64(img).err());
    if let Some(err) = bad_image {
        let body = go_json(&json!({ "error": err }));
        conn.write_fixed(400, json_type, body.as_bytes(), keep_alive, false)
            .await?;
        return Ok(true);
    }
    if chat.model.is_empty() {
        let body = go_json(&json!({ "error": "model is required" }));
        conn.write_fixed(400, json_type, body.as_bytes(), keep_alive, false)
            .await?;
        return Ok(true);
    }
    let (known, legacy, token_chars, token_delay) = {
        let st = lock(shared);
        let wanted = normalize_model(&chat.model);
        (
            st.models.iter().any(|m| normalize_model(m) == wanted),
            st.legacy_not_found,
            st.script.token_chars,
            st.script.token_delay,
        )
    };
    if !known {
        let msg = if legacy {
            format!("model \"{}\" not found, try pulling it first", chat.model)
        } else {
            format!("model '{}' not found", chat.model)
        };
        let body = go_json(&json!({ "error": msg }));
        conn.write_fixed(404, json_type, body.as_bytes(), keep_alive, false)
            .await?;
        return Ok(true);
    }

    let default_session = lock(shared).residency.default_session;
    let session = match parse_session(chat.raw.get("keep_alive"), default_session) {
        Ok(s) => s,
        Err(msg) => {
            let body = go_json(&json!({ "error": msg }));
            conn.write_fixed(400, json_type, body.as_bytes(), keep_alive, false)
                .await?;
            return Ok(true);
        }
    };

    let reply = http::next_reply(shared, &chat)
        .unwrap_or_else(|| Reply::Text(DEFAULT_REPLY_TEXT.to_string()));
    // The model is taken before the reply (a cold one loads first) and held until the
    // reply is sent or the connection goes.
    let ready_at = {
        let mut st = lock(shared);
        let record = st.net().recording;
        st.residency.acquire(&chat, session, false, record)
    };
    let _hold = Hold {
        shared: shared.clone(),
        model: chat.model.clone(),
    };
    tokio::time::sleep_until(ready_at.into()).await;
    let logprob = lock(shared)
        .logprob
        .filter(|_| chat.raw.get("logprobs") == Some(&Value::Bool(true)));
    let defaults = StreamDefaults {
        token_chars,
        token_delay,
        logprob,
    };
    send_reply(conn, &chat, reply, defaults, keep_alive).await
}

/// `/api/chat` with no messages: load the model (or unload it with `keep_alive: 0`) and
/// answer once it is in memory, as Ollama does.
async fn handle_load(
    shared: &Shared,
    conn: &mut Conn,
    chat: ChatRequest,
    keep_alive: bool,
) -> io::Result<bool> {
    let json_type = "application/json; charset=utf-8";
    if lock(shared).net().recording {
        lock(shared).residency.load_requests.push(chat.clone());
    }
    let fail = |code: u16, msg: String| (code, go_json(&json!({ "error": msg })));
    let (known, default_session) = {
        let st = lock(shared);
        let wanted = normalize_model(&chat.model);
        (
            st.models.iter().any(|m| normalize_model(m) == wanted),
            st.residency.default_session,
        )
    };
    let checked = if chat.model.is_empty() {
        Err(fail(400, "model is required".into()))
    } else if !known {
        Err(fail(404, format!("model '{}' not found", chat.model)))
    } else {
        parse_session(chat.raw.get("keep_alive"), default_session).map_err(|m| fail(400, m))
    };
    let session = match checked {
        Ok(s) => s,
        Err((code, body)) => {
            conn.write_fixed(code, json_type, body.as_bytes(), keep_alive, false)
                .await?;
            return Ok(true);
        }
    };
    let reason = if session == Session::For(Duration::ZERO) {
        let mut st = lock(shared);
        let m = normalize_model(&chat.model);
        if st.residency.models.get(&m).is_some_and(|r| r.active == 0) {
            st.residency.models.remove(&m);
        } else if let Some(r) = st.residency.models.get_mut(&m) {
            r.session = session;
        }
        "unload"
    } else {
        let ready_at = {
            let mut st = lock(shared);
            let record = st.net().recording;
            st.residency.acquire(&chat, session, true, record)
        };
        let hold = Hold {
            shared: shared.clone(),
            model: chat.model.clone(),
        };
        tokio::time::sleep_until(ready_at.into()).await;
        drop(hold);
        "load"
    };
    let body = go_json(&json!({
        "model": chat.model,
        "created_at": rfc3339_now(),
        "message": { "role": "assistant", "content": "" },
        "done_reason": reason,
        "done": true
    }));
    conn.write_fixed(200, json_type, body.as_bytes(), keep_alive, false)
        .await?;
    Ok(true)
}

#[derive(Clone, Copy)]
struct StreamDefaults {
    token_chars: usize,
    token_delay: Duration,
    /// Log-probability reported for every content token when the request asks for
    /// `logprobs` (Ollama 0.12.11+); None: the server does not support them.
    logprob: Option<f64>,
}

struct FullReply {
    content: String,
    thinking: Option<String>,
    token_chars: usize,
    delay_per_token: Duration,
    first_byte_delay: Duration,
    split_utf8: bool,
}

impl FullReply {
    fn new(content: String) -> Self {
        FullReply {
            content,
            thinking: None,
            token_chars: 0,
            delay_per_token: Duration::ZERO,
            first_byte_delay: Duration::ZERO,
            split_utf8: false,
        }
    }
}

fn chunk_json(model: &str, content: &str, thinking: Option<&str>) -> String {
    let mut message = json!({ "role": "assistant", "content": content });
    if let Some(t) = thinking {
        message["thinking"] = Value::String(t.to_string());
    }
    go_json(&json!({
        "model": model,
        "created_at": rfc3339_now(),
        "message": message,
        "done": false
    }))
}

fn prompt_tokens(chat: &ChatRequest) -> u64 {
    let chars: usize = chat
        .messages
        .iter()
        .map(|m| m.content.chars().count())
        .sum();
    let images: usize = chat.messages.iter().map(|m| m.images.len()).sum();
    (chars / 4 + images * 256 + 8) as u64
}

fn done_json(
    chat: &ChatRequest,
    content: &str,
    thinking: Option<&str>,
    eval_count: u64,
    started: Instant,
) -> String {
    let mut message = json!({ "role": "assistant", "content": content });
    if let Some(t) = thinking {
        message["thinking"] = Value::String(t.to_string());
    }
    let total = (started.elapsed().as_nanos() as u64).max(1_000_000);
    let load = total / 10;
    let prompt_eval = total / 5;
    go_json(&json!({
        "model": chat.model,
        "created_at": rfc3339_now(),
        "message": message,
        "done": true,
        "done_reason": "stop",
        "total_duration": total,
        "load_duration": load,
        "prompt_eval_count": prompt_tokens(chat),
        "prompt_eval_duration": prompt_eval,
        "eval_count": eval_count.max(1),
        "eval_duration": total.saturating_sub(load + prompt_eval).max(1)
    }))
}

async fn send_reply(
    conn: &mut Conn,
    chat: &ChatRequest,
    mut reply: Reply,
    defaults: StreamDefaults,
    keep_alive: bool,
) -> io::Result<bool> {
    let started = Instant::now();
    while let Reply::Delayed(d, inner) = reply {
        tokio::time::sleep(d).await;
        reply = *inner;
    }
    let json_type = "application/json; charset=utf-8";
    let ndjson = "application/x-ndjson";
    let model = chat.model.as_str();
    let plain_tokens = |s: &str| split_tokens(s, defaults.token_chars);

    match reply {
        Reply::Delayed(..) => unreachable!("delays unwrapped above"),
        Reply::Text(content) => {
            let mut full = FullReply::new(content);
            full.delay_per_token = defaults.token_delay;
            send_full(conn, chat, full, defaults, keep_alive, started).await
        }
        Reply::Full {
            content,
            thinking,
            token_chars,
            delay_per_token,
            first_byte_delay,
            split_utf8,
        } => {
            let full = FullReply {
                content,
                thinking,
                token_chars,
                delay_per_token,
                first_byte_delay,
                split_utf8,
            };
            send_full(conn, chat, full, defaults, keep_alive, started).await
        }
        Reply::Status { code, body } => {
            let ctype = if body.trim_start().starts_with('{') {
                json_type
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
                conn.write_head(200, ndjson, None, keep_alive).await?;
                for tok in plain_tokens(&content_before) {
                    conn.write_line(&chunk_json(model, &tok, None), false)
                        .await?;
                }
            } else {
                let body = done_json(chat, &content_before, None, 1, started);
                let cut = body.len() / 2;
                conn.write_head(200, json_type, Some(body.len()), keep_alive)
                    .await?;
                conn.stream.write_all(&body.as_bytes()[..cut]).await?;
                conn.stream.flush().await?;
            }
            // Give the client a moment to read what was sent, then vanish.
            tokio::time::sleep(CHUNK_GAP).await;
            Ok(false)
        }
        Reply::ErrorLine {
            content_before,
            error,
        } => {
            let err_line = go_json(&json!({ "error": error }));
            if chat.stream {
                conn.write_head(200, ndjson, None, keep_alive).await?;
                for tok in plain_tokens(&content_before) {
                    conn.write_line(&chunk_json(model, &tok, None), false)
                        .await?;
                }
                conn.write_line(&err_line, false).await?;
                conn.write_end().await?;
            } else {
                conn.write_fixed(500, json_type, err_line.as_bytes(), keep_alive, false)
                    .await?;
            }
            Ok(true)
        }
        Reply::Malformed { content_before } => {
            let bad = format!("{{\"model\":\"{model}\",\"mess");
            if chat.stream {
                conn.write_head(200, ndjson, None, keep_alive).await?;
                let tokens = plain_tokens(&content_before);
                for tok in &tokens {
                    conn.write_line(&chunk_json(model, tok, None), false)
                        .await?;
                }
                conn.write_line(&bad, false).await?;
                let done = done_json(chat, "", None, tokens.len() as u64, started);
                conn.write_line(&done, false).await?;
                conn.write_end().await?;
            } else {
                conn.write_fixed(200, json_type, bad.as_bytes(), keep_alive, false)
                    .await?;
            }
            Ok(true)
        }
        Reply::Huge { bytes } => {
            let content = huge_content(bytes);
            if chat.stream {
                conn.write_head(200, ndjson, None, keep_alive).await?;
                let mut count = 0u64;
                let mut rest = content.as_str();
                while !rest.is_empty() {
                    let (piece, tail) = rest.split_at(rest.len().min(HUGE_LINE_BYTES));
                    conn.write_line(&chunk_json(model, piece, None), false)
                        .await?;
                    count += 1;
                    rest = tail;
                }
                let done = done_json(chat, "", None, count, started);
                conn.write_line(&done, false).await?;
                conn.write_end().await?;
            } else {
                let count = (bytes / 4) as u64;
                let body = done_json(chat, &content, None, count, started);
                conn.write_fixed(200, json_type, body.as_bytes(), keep_alive, false)
                    .await?;
            }
            Ok(true)
        }
        Reply::RawChunks(chunks) => {
            conn.write_head(200, ndjson, None, keep_alive).await?;
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
    full: FullReply,
    defaults: StreamDefaults,
    keep_alive: bool,
    started: Instant,
) -> io::Result<bool> {
    let token_chars = if full.token_chars == 0 {
        defaults.token_chars
    } else {
        full.token_chars
    };
    let thinking = full
        .thinking
        .filter(|_| chat.think != Some(false))
        .filter(|t| !t.is_empty());
    let thinking_tokens = thinking
        .as_deref()
        .map(|t| split_tokens(t, token_chars))
        .unwrap_or_default();
    let content_tokens = split_tokens(&full.content, token_chars);
    let eval_count = (thinking_tokens.len() + content_tokens.len()) as u64;
    let model = chat.model.as_str();

    tokio::time::sleep(full.first_byte_delay).await;
    if !chat.stream {
        // Ollama generates everything, then answers once.
        tokio::time::sleep(full.delay_per_token * eval_count as u32).await;
        let body = done_json(
            chat,
            &full.content,
            thinking.as_deref(),
            eval_count,
            started,
        );
        conn.write_fixed(
            200,
            "application/json; charset=utf-8",
            body.as_bytes(),
            keep_alive,
            false,
        )
        .await?;
        return Ok(true);
    }

    conn.write_head(200, "application/x-ndjson", None, keep_alive)
        .await?;
    let gap = if full.split_utf8 {
        full.delay_per_token.max(CHUNK_GAP)
    } else {
        full.delay_per_token
    };
    let lines = thinking_tokens
        .iter()
        .map(|t| chunk_json(model, "", Some(t)))
        .chain(content_tokens.iter().map(|t| {
            let line = chunk_json(model, t, None);
            match defaults.logprob {
                Some(lp) => {
                    let mut v: Value = serde_json::from_str(&line).expect("own JSON");
                    v["logprobs"] = json!([{ "token": t, "logprob": lp, "bytes": t.as_bytes() }]);
                    go_json(&v)
                }
                None => line,
            }
        }));
    for line in lines {
        conn.write_line(&line, full.split_utf8).await?;
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    let done = done_json(chat, "", None, eval_count, started);
    conn.write_line(&done, full.split_utf8).await?;
    conn.write_end().await?;
    Ok(true)
}
