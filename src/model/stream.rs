//! The stream plumbing both wire formats share: sending a JSON body (with its one retry on
//! a stale connection), send errors as `ModelError`s, capped body reads, the line reader
//! that joins bytes before decoding, and the capped reply with its measured confidence.

use super::error::ModelError;
use super::request::ChatReply;
use futures_util::StreamExt;
use std::time::Duration;

/// One stream line longer than this is a malformed stream.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Error bodies are read up to this many bytes.
pub(crate) const ERROR_BODY_BYTES: usize = 16 * 1024;

/// Run `fut` for at most `secs`; past that, `ModelError::Timeout`.
pub(crate) async fn within<T>(
    secs: u64,
    fut: impl std::future::Future<Output = Result<T, ModelError>>,
) -> Result<T, ModelError> {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(r) => r,
        Err(_) => Err(ModelError::Timeout { secs }),
    }
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

/// Whether a reader goes on after a piece of the reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Reply content under a byte cap, with the measured confidence of its tokens.
pub(crate) struct CappedReply {
    pub(crate) content: String,
    cap: usize,
    pub(crate) reply: ChatReply,
    pub(crate) meter: ConfidenceMeter,
}

impl CappedReply {
    pub(crate) fn new(cap: usize) -> Self {
        CappedReply {
            content: String::new(),
            cap,
            reply: ChatReply::default(),
            meter: ConfidenceMeter::default(),
        }
    }

    /// Add content; `Stop` once the cap is reached (the rest is cut).
    pub(crate) fn push_content(
        &mut self,
        c: &str,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Flow {
        if c.is_empty() {
            return Flow::Continue;
        }
        let room = self.cap.saturating_sub(self.content.len());
        if c.len() > room {
            let mut cut = room;
            while !c.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut > 0 {
                self.content.push_str(&c[..cut]);
                on_token(&c[..cut]);
            }
            self.reply.truncated = true;
            return Flow::Stop;
        }
        self.content.push_str(c);
        on_token(c);
        Flow::Continue
    }

    /// The stream ended before the answer did.
    pub(crate) fn incomplete(&self) -> ModelError {
        ModelError::Incomplete {
            received_chars: self.content.chars().count(),
        }
    }

    pub(crate) fn finish(mut self) -> ChatReply {
        if self.reply.truncated {
            self.content
                .push_str(&format!("\n[reply cut at {} KiB]", self.cap.div_ceil(1024)));
        }
        self.reply.measured_confidence = self.meter.value();
        self.reply.content = self.content;
        self.reply
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
