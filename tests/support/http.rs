//! HTTP/1.1 plumbing shared by the in-process fake model servers (`ollama_server.rs`,
//! `openai_server.rs`): listener and connection control (stop/resume listening like a killed
//! server), keep-alive, request parsing (chunked or fixed bodies, `Expect: 100-continue`),
//! chunked and fixed-length writing, request recording.
//!
//! Each server declares it as its own child module, `#[path = "http.rs"] mod http;` (a path
//! relative to the server file's directory), so a server file stays includable on its own from
//! a bench with `#[path = "../tests/support/ollama_server.rs"] mod ollama_server;`.
//! This file is self-contained too: no `super::`.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Handle, Runtime};
use tokio::task::AbortHandle;

/// Pause between HTTP chunks where chunk boundaries matter (split UTF-8, raw chunks), so TCP
/// does not coalesce them before the client reads.
pub const CHUNK_GAP: Duration = Duration::from_millis(5);

const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------------------------

/// One HTTP request as received (any path).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Request target as sent, query string included.
    pub path: String,
    /// Header names as sent (compare case-insensitively, or use [`RecordedRequest::header`]).
    pub headers: Vec<(String, String)>,
    /// Body after de-chunking.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// First header with this name, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Split text into tokens of `n` characters (at least 1), as the servers stream them.
pub fn split_tokens(text: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

// ---------------------------------------------------------------------------------------------
// Server state and control
// ---------------------------------------------------------------------------------------------

/// A server's state: its own fields plus the transport part ([`Net`]) and the chat script
/// ([`Script`]), behind one mutex.
pub trait Service: Send + Sized + 'static {
    /// A decoded chat request.
    type Chat: Clone + Send + 'static;
    /// What the server does with one chat request.
    type Reply: Send + 'static;

    fn net(&mut self) -> &mut Net;

    fn script(&mut self) -> &mut Script<Self::Chat, Self::Reply>;

    /// Answer one request (already recorded); Ok(true) when the connection may serve another.
    fn handle<'a>(
        shared: &'a Arc<Mutex<Self>>,
        conn: &'a mut Conn,
        req: HttpRequest,
        keep_alive: bool,
    ) -> impl Future<Output = io::Result<bool>> + Send + 'a;
}

/// Transport state of one server.
pub struct Net {
    /// All requests, in order of arrival (while `recording`).
    pub requests: Vec<RecordedRequest>,
    /// `false`: every response carries `Connection: close` and the connection is closed.
    pub keep_alive: bool,
    /// Keep requests for inspection (off for long soak runs, so memory stays flat).
    pub recording: bool,
    /// TCP connections accepted so far.
    pub accepted: usize,
    /// Bumped by every stop and every (re)listen; an accept task serves only its generation.
    generation: u64,
    listener: Option<ListenerCtl>,
    conns: HashMap<u64, ConnCtl>,
    next_conn: u64,
}

impl Default for Net {
    fn default() -> Self {
        Net {
            requests: Vec::new(),
            keep_alive: true,
            recording: true,
            accepted: 0,
            generation: 0,
            listener: None,
            conns: HashMap::new(),
            next_conn: 0,
        }
    }
}

/// Computes the reply to a chat when no scripted reply is queued.
pub type Handler<C, R> = Arc<dyn Fn(&C) -> R + Send + Sync + 'static>;

/// How a server answers chats: scripted replies, a handler, the chats seen, token settings.
pub struct Script<C, R> {
    /// Replies for the next chats, consumed before the handler.
    pub queue: VecDeque<R>,
    pub handler: Option<Handler<C, R>>,
    /// Chats whose body was a JSON object (valid or not), in order (while recording).
    pub chats: Vec<C>,
    /// Characters per streamed token of a plain text reply.
    pub token_chars: usize,
    /// Delay between tokens of a plain text reply.
    pub token_delay: Duration,
}

impl<C, R> Script<C, R> {
    pub fn new(token_chars: usize) -> Self {
        Script {
            queue: VecDeque::new(),
            handler: None,
            chats: Vec::new(),
            token_chars,
            token_delay: Duration::ZERO,
        }
    }
}

/// Keep this chat for inspection (when recording).
pub fn record_chat<S: Service>(shared: &Arc<Mutex<S>>, chat: &S::Chat) {
    let mut st = lock(shared);
    if st.net().recording {
        st.script().chats.push(chat.clone());
    }
}

/// The scripted reply for `chat`: the queue first, then the handler (called outside the
/// lock); None when there is neither.
pub fn next_reply<S: Service>(shared: &Arc<Mutex<S>>, chat: &S::Chat) -> Option<S::Reply> {
    let handler = {
        let mut st = lock(shared);
        let script = st.script();
        if let Some(r) = script.queue.pop_front() {
            return Some(r);
        }
        script.handler.clone()
    };
    handler.map(|h| h(chat))
}

struct ListenerCtl {
    /// Duplicate of the listening socket's fd: shutting it down closes the socket for the
    /// accept task too, synchronously.
    ctl: OwnedFd,
    task: Option<AbortHandle>,
}

struct ConnCtl {
    ctl: std::net::TcpStream,
    task: Option<AbortHandle>,
}

pub fn lock<S>(shared: &Arc<Mutex<S>>) -> MutexGuard<'_, S> {
    // A panicking handler must not poison every later call.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fake model server (each server file names it, e.g. `OllamaTestServer`). Dropping it
/// closes the listener and every connection and stops its tasks (and its runtime, when it was
/// started with `start_in_thread`).
pub struct Server<S: Service> {
    shared: Arc<Mutex<S>>,
    port: u16,
    handle: Handle,
    runtime: Option<Runtime>,
}

impl<S: Service> Server<S> {
    /// Listen on an ephemeral port of 127.0.0.1 and serve on `handle`.
    pub(super) fn bind(handle: Handle, runtime: Option<Runtime>, state: S) -> Self {
        let shared = Arc::new(Mutex::new(state));
        let port = listen(&shared, &handle, 0).expect("bind test server on 127.0.0.1");
        Server {
            shared,
            port,
            handle,
            runtime,
        }
    }

    /// Listen on the current tokio runtime (call inside a tokio runtime).
    pub(super) fn bind_here(state: S) -> Self {
        Self::bind(Handle::current(), None, state)
    }

    /// Listen on a runtime of its own (one worker thread), for sync tests, tests that run a
    /// child process, or tests that block.
    pub(super) fn bind_in_thread(thread_name: &str, state: S) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .expect("build test server runtime");
        let handle = runtime.handle().clone();
        Self::bind(handle, Some(runtime), state)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.shared)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queue a reply for the next chat request that passes validation (FIFO, consumed before
    /// the handler).
    pub fn push_reply(&self, r: S::Reply) {
        self.lock().script().queue.push_back(r);
    }

    /// Number of queued replies not consumed yet.
    pub fn pending_replies(&self) -> usize {
        self.lock().script().queue.len()
    }

    /// Reply used when the queue is empty.
    pub fn set_handler(&self, f: impl Fn(&S::Chat) -> S::Reply + Send + Sync + 'static) {
        self.lock().script().handler = Some(Arc::new(f));
    }

    /// Back to the server's default reply (`DEFAULT_REPLY_TEXT`) when the queue is empty.
    pub fn clear_handler(&self) {
        self.lock().script().handler = None;
    }

    /// Characters per streamed token for `Reply::Text` (and `Full` with `token_chars: 0`).
    pub fn set_token_chars(&self, n: usize) {
        self.lock().script().token_chars = n.max(1);
    }

    /// Delay between tokens for `Reply::Text`.
    pub fn set_token_delay(&self, d: Duration) {
        self.lock().script().token_delay = d;
    }

    /// `false`: every response carries `Connection: close` and the connection is closed.
    pub fn set_keep_alive(&self, keep_alive: bool) {
        self.lock().net().keep_alive = keep_alive;
    }

    /// All requests, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().net().requests.clone()
    }

    /// All chat requests whose body was a JSON object (valid or not), in order.
    pub fn chat_requests(&self) -> Vec<S::Chat> {
        self.lock().script().chats.clone()
    }

    pub fn chat_count(&self) -> usize {
        self.lock().script().chats.len()
    }

    /// Keep (default) or stop keeping requests; a soak run turns it off.
    pub fn set_recording(&self, on: bool) {
        self.lock().net().recording = on;
    }

    /// Forget recorded requests.
    pub fn clear_requests(&self) {
        let mut st = self.lock();
        st.net().requests.clear();
        st.script().chats.clear();
    }

    /// TCP connections accepted so far (keep-alive reuse shows as fewer connections).
    pub fn accepted_connections(&self) -> usize {
        self.lock().net().accepted
    }

    /// Wait until at least `n` chat requests arrived; `false` on timeout.
    pub async fn wait_for_chats(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.chat_count() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Blocking variant of [`Server::wait_for_chats`]. Do not call it on the thread of a
    /// current-thread runtime that runs this server (use `start_in_thread`).
    pub fn wait_for_chats_blocking(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.chat_count() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stop like a killed server: the listening socket is closed at once (new connections
    /// get ECONNREFUSED) and every open connection is shut down (streams in flight end
    /// abruptly, hanging requests fail, idle keep-alive connections see EOF).
    ///
    /// As with a real restart, a client that still pools an idle keep-alive connection may
    /// fail its next request with a connection-closed error (hyper `IncompleteMessage`)
    /// instead of a connect error, when it had not yet noticed the close (typical on a
    /// current-thread runtime); the request after that is refused. Call
    /// `set_keep_alive(false)` before the first request to get ECONNREFUSED every time.
    pub fn stop_listening(&self) {
        shutdown_everything(&self.shared);
    }

    /// Listen again on the same port. No-op if already listening.
    pub fn resume_listening(&self) {
        if self.is_listening() {
            return;
        }
        let port = listen(&self.shared, &self.handle, self.port).expect("re-bind test server port");
        debug_assert_eq!(port, self.port);
    }

    pub fn is_listening(&self) -> bool {
        self.lock().net().listener.is_some()
    }
}

impl<S: Service> Drop for Server<S> {
    fn drop(&mut self) {
        shutdown_everything(&self.shared);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn shutdown_everything<S: Service>(shared: &Arc<Mutex<S>>) {
    let (listener, conns) = {
        let mut st = lock(shared);
        let net = st.net();
        net.generation += 1;
        (net.listener.take(), std::mem::take(&mut net.conns))
    };
    if let Some(l) = listener {
        // shutdown(2) on a listening TCP socket moves it to CLOSE at once: pending and new
        // connections are refused, the accept task wakes with an error. std has no shutdown
        // on TcpListener; the call is the same syscall on the same socket.
        let _ = std::net::TcpStream::from(l.ctl).shutdown(Shutdown::Both);
        if let Some(t) = l.task {
            t.abort();
        }
    }
    for (_, c) in conns {
        let _ = c.ctl.shutdown(Shutdown::Both);
        if let Some(t) = c.task {
            t.abort();
        }
    }
}

fn bind_port(port: u16) -> io::Result<std::net::TcpListener> {
    // Re-binding a port just closed can race with the old socket's teardown: retry briefly.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return Ok(l),
            Err(e) if port != 0 && e.kind() == io::ErrorKind::AddrInUse => {
                if Instant::now() >= deadline {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn listen<S: Service>(shared: &Arc<Mutex<S>>, handle: &Handle, port: u16) -> io::Result<u16> {
    let std_listener = bind_port(port)?;
    std_listener.set_nonblocking(true)?;
    let port = std_listener.local_addr()?.port();
    let ctl = std_listener.as_fd().try_clone_to_owned()?;
    let listener = {
        let _guard = handle.enter();
        TcpListener::from_std(std_listener)?
    };
    let mut st = lock(shared);
    let net = st.net();
    net.generation += 1;
    let generation = net.generation;
    let task = handle.spawn(accept_loop(shared.clone(), listener, generation));
    net.listener = Some(ListenerCtl {
        ctl,
        task: Some(task.abort_handle()),
    });
    Ok(port)
}

async fn accept_loop<S: Service>(shared: Arc<Mutex<S>>, listener: TcpListener, generation: u64) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if !register_connection(&shared, stream, generation) {
                    return;
                }
            }
            Err(_) => {
                if lock(&shared).net().generation != generation {
                    return;
                }
                // Transient (EMFILE, ECONNABORTED, …): back off a little.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Returns false when this accept loop is stale (server stopped meanwhile).
fn register_connection<S: Service>(
    shared: &Arc<Mutex<S>>,
    stream: TcpStream,
    generation: u64,
) -> bool {
    let _ = stream.set_nodelay(true);
    let ctl = match stream.as_fd().try_clone_to_owned() {
        Ok(fd) => std::net::TcpStream::from(fd),
        Err(_) => return true, // drop this connection, keep accepting
    };
    let mut st = lock(shared);
    let net = st.net();
    if net.generation != generation {
        let _ = ctl.shutdown(Shutdown::Both);
        return false;
    }
    net.accepted += 1;
    let id = net.next_conn;
    net.next_conn += 1;
    net.conns.insert(id, ConnCtl { ctl, task: None });
    let task = tokio::spawn(serve_connection(shared.clone(), stream, id));
    if let Some(c) = net.conns.get_mut(&id) {
        c.task = Some(task.abort_handle());
    }
    true
}

/// Removes the connection's control entry when its task ends (normally or aborted).
struct ConnGuard<S: Service> {
    shared: Arc<Mutex<S>>,
    id: u64,
}

impl<S: Service> Drop for ConnGuard<S> {
    fn drop(&mut self) {
        lock(&self.shared).net().conns.remove(&self.id);
    }
}

async fn serve_connection<S: Service>(shared: Arc<Mutex<S>>, stream: TcpStream, id: u64) {
    let _guard = ConnGuard {
        shared: shared.clone(),
        id,
    };
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    loop {
        let req = match conn.read_request().await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(_) => {
                let _ = conn
                    .write_fixed(
                        400,
                        "text/plain; charset=utf-8",
                        b"400 Bad Request",
                        false,
                        false,
                    )
                    .await;
                return;
            }
        };
        let client_keep_alive = if req.version.eq_ignore_ascii_case("HTTP/1.0") {
            header_has_token(&req.headers, "connection", "keep-alive")
        } else {
            !header_has_token(&req.headers, "connection", "close")
        };
        let keep_alive = {
            let mut st = lock(&shared);
            let net = st.net();
            if net.recording {
                net.requests.push(RecordedRequest {
                    method: req.method.clone(),
                    path: req.path.clone(),
                    headers: req.headers.clone(),
                    body: req.body.clone(),
                });
            }
            client_keep_alive && net.keep_alive
        };
        match S::handle(&shared, &mut conn, req, keep_alive).await {
            Ok(true) if keep_alive => continue,
            _ => {
                let _ = conn.stream.shutdown().await;
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
// ---------------------------------------------------------------------------------------------

/// One accepted connection: the socket and the bytes read but not parsed yet.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Conn {
    /// Read more bytes into the buffer; Ok(false) on EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n > 0)
    }

    async fn read_exact_buf(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).take(pos).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Next request on this connection; Ok(None) when the client closed it cleanly.
    async fn read_request(&mut self) -> io::Result<Option<HttpRequest>> {
        let head_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(invalid("request head too large"));
            }
            if !self.fill().await? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_end + 4).collect();
        let head = String::from_utf8_lossy(&head[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split_whitespace();
        let (method, path, version) = match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(p), Some(v)) => (m.to_string(), p.to_string(), v.to_string()),
            _ => return Err(invalid("bad request line")),
        };
        let mut headers = Vec::new();
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        if header_has_token(&headers, "expect", "100-continue") {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        let body = if header_has_token(&headers, "transfer-encoding", "chunked") {
            self.read_chunked_body().await?
        } else if let Some(len) = find_header(&headers, "content-length") {
            let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
            if len > MAX_BODY_BYTES {
                return Err(invalid("body too large"));
            }
            self.read_exact_buf(len).await?
        } else {
            Vec::new()
        };
        Ok(Some(HttpRequest {
            method,
            path,
            version,
            headers,
            body,
        }))
    }

    async fn read_chunked_body(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers until the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err(invalid("body too large"));
            }
            let data = self.read_exact_buf(size).await?;
            body.extend_from_slice(&data);
            if !self.read_line().await?.is_empty() {
                return Err(invalid("missing CRLF after chunk"));
            }
        }
    }

    pub async fn write_head(
        &mut self,
        code: u16,
        content_type: &str,
        length: Option<usize>,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nDate: {}\r\n",
            code,
            reason(code),
            content_type,
            http_date()
        );
        match length {
            Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
            None => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.flush().await
    }

    pub async fn write_fixed(
        &mut self,
        code: u16,
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
        head_only: bool,
    ) -> io::Result<()> {
        self.write_head(code, content_type, Some(body.len()), keep_alive)
            .await?;
        if !head_only {
            self.stream.write_all(body).await?;
        }
        self.stream.flush().await
    }

    /// One HTTP chunk (non-empty), flushed.
    pub async fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(data.len() + 16);
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        self.stream.write_all(&out).await?;
        self.stream.flush().await
    }

    /// One line (newline added) as one chunk, or (split_utf8) as several chunks cut inside
    /// multi-byte characters.
    pub async fn write_line(&mut self, line: &str, split_utf8: bool) -> io::Result<()> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        if !split_utf8 {
            return self.write_chunk(&bytes).await;
        }
        let pieces = split_inside_chars(&bytes);
        let count = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            self.write_chunk(piece).await?;
            if i + 1 < count {
                tokio::time::sleep(CHUNK_GAP).await;
            }
        }
        Ok(())
    }

    pub async fn write_end(&mut self) -> io::Result<()> {
        self.stream.write_all(b"0\r\n\r\n").await?;
        self.stream.flush().await
    }
}

/// Cut `bytes` (UTF-8) into pieces so that each multi-byte character is split after its
/// first byte.
fn split_inside_chars(bytes: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // Lead byte of a multi-byte sequence: cut right after it.
        if b >= 0xC0 {
            pieces.push(&bytes[start..i + 1]);
            start = i + 1;
        }
    }
    pieces.push(&bytes[start..]);
    pieces
}

fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn http_date() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}
