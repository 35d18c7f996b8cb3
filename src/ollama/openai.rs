//! The OpenAI-compatible chat API (vLLM, llama.cpp's `llama-server`, LM Studio, …).
//!
//! `POST {base}/v1/chat/completions`, streamed as server-sent events (`data: {json}` lines,
//! events separated by a blank line, `data: [DONE]` at the end) or answered as one JSON
//! object; `GET {base}/v1/models` lists the models. Bytes are joined by [`LineReader`]
//! before any decoding, so a chunk that splits a UTF-8 character loses nothing.
//!
//! Neither function applies a whole-call timeout of its own (`list_models` excepted, which
//! is bounded at [`LIST_TIMEOUT_SECS`]): the caller wraps `chat` in its `timeout_secs`, as
//! `ModelClient::chat` does for the Ollama path. Authorization and extra headers are the
//! reqwest client's default headers.

use super::client::{
    map_send_error, read_capped, send_json, ChatReply, ChatRequest, ConfidenceMeter, LineReader,
};
use super::error::ModelError;
use crate::config::HostConfig;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

/// `list_models` gives up after this long.
pub const LIST_TIMEOUT_SECS: u64 = 15;
/// Error bodies are read up to this many bytes.
const ERROR_BODY_BYTES: usize = 16 * 1024;
/// A non-streamed reply body may be this much larger than the reply cap (JSON around the
/// content, escaping) before it counts as malformed.
const BODY_SLACK_BYTES: usize = 1024 * 1024;

/// `{base}/v1/{path}`; a base that already ends in `/v1` (as OpenAI SDKs write it) is
/// not doubled.
fn endpoint(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/{path}")
}

/// The base URL as shown in errors.
fn display_base(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}

/// The MIME type of a base64 image, from its first bytes (frames are JPEG; PNG is kept).
fn image_mime(b64: &str) -> &'static str {
    if b64.starts_with("iVBORw0KGgo") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

/// The JSON body of one `/v1/chat/completions` call.
pub fn chat_body(cfg: &HostConfig, req: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(2);
    if let Some(s) = req.system.as_deref().filter(|s| !s.trim().is_empty()) {
        messages.push(json!({"role": "system", "content": s}));
    }
    let user_content = if req.images.is_empty() {
        // Plain string content: every server takes it, some older ones only that.
        Value::String(req.user.clone())
    } else {
        let mut parts = vec![json!({"type": "text", "text": req.user})];
        parts.extend(req.images.iter().map(|img| {
            json!({
                "type": "image_url",
                "image_url": {"url": format!("data:{};base64,{img}", image_mime(img))}
            })
        }));
        Value::Array(parts)
    };
    messages.push(json!({"role": "user", "content": user_content}));
    let mut body = json!({
        "model": cfg.model,
        "messages": messages,
        "stream": req.stream,
    });
    if let Some(t) = req.temperature(cfg) {
        body["temperature"] = json!(t);
    }
    if let Some(seed) = req.sampling.seed {
        body["seed"] = json!(seed);
    }
    if let Some(n) = req.max_tokens(cfg) {
        body["max_tokens"] = json!(n);
    }
    if cfg.logprobs {
        // llama.cpp and vLLM send per-token log-probabilities; the measured confidence
        // is their mean probability (as on Ollama).
        body["logprobs"] = json!(true);
        body["top_logprobs"] = json!(1);
    }
    if !cfg.think {
        // How llama.cpp's server and vLLM switch thinking off for templates that have it
        // (Qwen 3, Gemma 4 and others); a template without the switch ignores it.
        body["chat_template_kwargs"] = json!({"enable_thinking": false});
    }
    match &req.format {
        Some(schema @ Value::Object(_)) => {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": schema, "strict": false}
            });
        }
        Some(Value::String(s)) if s == "json" => {
            body["response_format"] = json!({"type": "json_object"});
        }
        _ => {}
    }
    body
}

/// One chat call. `on_token` sees each piece of content as it arrives (once, whole, when
/// not streaming). Replies longer than `max_reply_bytes` are cut with a note and
/// `truncated: true`. Not bounded in time: the caller applies `cfg.timeout_secs`.
pub async fn chat(
    http: &reqwest::Client,
    base: &str,
    cfg: &HostConfig,
    req: &ChatRequest,
    on_token: &mut (dyn FnMut(&str) + Send),
    max_reply_bytes: usize,
) -> Result<ChatReply, ModelError> {
    let url = endpoint(base, "chat/completions");
    let resp = send_json(http, &url, &chat_body(cfg, req))
        .await
        .map_err(|e| map_send_error(e, &display_base(base), cfg.timeout_secs))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let body = read_capped(resp, ERROR_BODY_BYTES).await;
        return Err(status_error(status, &body, &cfg.model, base));
    }
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if is_sse {
        read_sse(resp, cfg.timeout_secs, on_token, max_reply_bytes).await
    } else {
        read_whole(resp, cfg.timeout_secs, on_token, max_reply_bytes).await
    }
}

async fn read_sse(
    resp: reqwest::Response,
    timeout_secs: u64,
    on_token: &mut (dyn FnMut(&str) + Send),
    max_reply_bytes: usize,
) -> Result<ChatReply, ModelError> {
    let mut stream = resp.bytes_stream();
    let mut sse = SseChat::new(max_reply_bytes);
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) if e.is_timeout() => return Err(ModelError::Timeout { secs: timeout_secs }),
            // The connection broke mid-stream: whatever came is not an answer.
            Err(_) => return Err(sse.incomplete()),
        };
        if sse.push(&chunk, on_token)? == Flow::Stop {
            return Ok(sse.finish());
        }
    }
    sse.end_of_stream(on_token)
}

async fn read_whole(
    resp: reqwest::Response,
    timeout_secs: u64,
    on_token: &mut (dyn FnMut(&str) + Send),
    max_reply_bytes: usize,
) -> Result<ChatReply, ModelError> {
    let limit = max_reply_bytes
        .saturating_mul(2)
        .saturating_add(BODY_SLACK_BYTES);
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => body.extend_from_slice(&c),
            Err(e) if e.is_timeout() => return Err(ModelError::Timeout { secs: timeout_secs }),
            Err(_) => return Err(ModelError::Incomplete { received_chars: 0 }),
        }
        if body.len() > limit {
            return Err(ModelError::Malformed {
                message: format!("reply body longer than {} KiB", limit / 1024),
            });
        }
    }
    parse_whole(&body, on_token, max_reply_bytes)
}

/// A non-streamed `chat.completion` object.
fn parse_whole(
    body: &[u8],
    on_token: &mut (dyn FnMut(&str) + Send),
    max_reply_bytes: usize,
) -> Result<ChatReply, ModelError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ModelError::Malformed {
        message: format!(
            "{e} in reply {:?}",
            crate::sanitize::for_screen(&String::from_utf8_lossy(body), 80)
        ),
    })?;
    if let Some(message) = error_message(&v) {
        return Err(ModelError::Server { message });
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| ModelError::Malformed {
            message: "no choices in the reply".into(),
        })?;
    let mut acc = Accumulator::new(max_reply_bytes);
    acc.logprobs(choice);
    let message = choice.get("message");
    if let Some(r) = message.and_then(reasoning_text) {
        acc.reply.thinking_chars += r.chars().count();
    }
    if let Some(c) = message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
    {
        acc.push_content(c, on_token);
    }
    acc.reply.done_reason = finish_reason(choice);
    acc.reply.eval_count = completion_tokens(&v);
    Ok(acc.finish())
}

/// HTTP error status: 404 is a missing model, anything else keeps the server's message.
fn status_error(status: u16, body: &[u8], model: &str, base: &str) -> ModelError {
    if status == 404 {
        return ModelError::ModelNotFound {
            model: model.to_string(),
            url: display_base(base),
        };
    }
    let message = body_message(body);
    if super::error::says_no_vision(&message) {
        return ModelError::NoVision {
            model: model.to_string(),
            message,
        };
    }
    ModelError::Http { status, message }
}

/// The message of an error body: OpenAI's `{"error":{"message":…}}`, `{"error":"…"}`,
/// vLLM's older top-level `{"object":"error","message":…}`, or the text itself.
fn body_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| error_message(&v))
        .unwrap_or_else(|| crate::sanitize::for_screen(String::from_utf8_lossy(body).trim(), 300));
    crate::sanitize::for_screen(&message, 300)
}

/// The error a JSON object reports, if it is an error object.
fn error_message(v: &Value) -> Option<String> {
    let text = match v.get("error") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(e @ Value::Object(_)) => Some(
            e.get("message")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| e.to_string()),
        ),
        Some(Value::Null) | None => {
            if v.get("object").and_then(Value::as_str) == Some("error") {
                Some(
                    v.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                        .to_string(),
                )
            } else {
                None
            }
        }
        Some(other) => Some(other.to_string()),
    }?;
    Some(crate::sanitize::for_screen(&text, 500))
}

fn reasoning_text(msg: &Value) -> Option<&str> {
    msg.get("reasoning_content")
        .or_else(|| msg.get("reasoning"))
        .and_then(Value::as_str)
}

fn finish_reason(choice: &Value) -> Option<String> {
    choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(String::from)
}

fn completion_tokens(v: &Value) -> Option<u64> {
    v.get("usage")
        .and_then(|u| u.get("completion_tokens"))
        .and_then(Value::as_u64)
}

/// Model ids the server serves (`GET {base}/v1/models` → `data[].id`).
pub async fn list_models(http: &reqwest::Client, base: &str) -> Result<Vec<String>, ModelError> {
    let secs = LIST_TIMEOUT_SECS;
    let fut = async {
        let resp = http
            .get(endpoint(base, "models"))
            .send()
            .await
            .map_err(|e| map_send_error(e, &display_base(base), secs))?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, 4 * 1024 * 1024).await;
        if !(200..300).contains(&status) {
            return Err(ModelError::Http {
                status,
                message: body_message(&body),
            });
        }
        parse_models(&body)
    };
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(r) => r,
        Err(_) => Err(ModelError::Timeout { secs }),
    }
}

/// Whether the model takes images, as far as the server says: llama.cpp's `/props`
/// (`modalities.vision`), else `/v1/models` (`architecture.input_modalities` or
/// `input_modalities` of the model's entry). None when neither says.
pub async fn vision(
    http: &reqwest::Client,
    base: &str,
    model: &str,
) -> Result<Option<bool>, ModelError> {
    let secs = LIST_TIMEOUT_SECS;
    let get = |url: String| async move {
        let resp = http
            .get(url)
            .send()
            .await
            .map_err(|e| map_send_error(e, &display_base(base), secs))?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, 4 * 1024 * 1024).await;
        Ok::<_, ModelError>((status, body))
    };
    let fut = async {
        let root = display_base(base);
        let root = root.strip_suffix("/v1").unwrap_or(&root).to_string();
        let (status, body) = get(format!("{root}/props")).await?;
        if status == 200 {
            if let Some(v) = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| props_vision(&v))
            {
                return Ok(Some(v));
            }
        }
        let (status, body) = get(endpoint(base, "models")).await?;
        if status != 200 {
            return Ok(None);
        }
        Ok(serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| models_vision(&v, model)))
    };
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(r) => r,
        Err(_) => Err(ModelError::Timeout { secs }),
    }
}

/// llama.cpp's `/props`: `{"modalities": {"vision": bool, …}}`.
pub fn props_vision(props: &Value) -> Option<bool> {
    props.get("modalities")?.get("vision")?.as_bool()
}

/// `/v1/models`: the entry for `model` (or the only entry, as llama.cpp serves one model
/// under any name) and its input modalities.
pub fn models_vision(models: &Value, model: &str) -> Option<bool> {
    let data = models.get("data")?.as_array()?;
    let entry = data
        .iter()
        .find(|m| {
            m.get("id").and_then(Value::as_str) == Some(model)
                || m.get("aliases")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(model)))
        })
        .or(if data.len() == 1 { data.first() } else { None })?;
    let modalities = entry
        .get("architecture")
        .and_then(|a| a.get("input_modalities"))
        .or_else(|| entry.get("input_modalities"))?
        .as_array()?;
    Some(
        modalities
            .iter()
            .any(|m| matches!(m.as_str(), Some("image") | Some("vision"))),
    )
}

fn parse_models(body: &[u8]) -> Result<Vec<String>, ModelError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ModelError::Malformed {
        message: format!("/v1/models: {e}"),
    })?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ModelError::Malformed {
            message: "/v1/models: no data list".into(),
        })?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(|id| crate::sanitize::for_screen(id, 200))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Streaming: server-sent events
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Reply content under a byte cap.
struct Accumulator {
    content: String,
    cap: usize,
    reply: ChatReply,
    meter: ConfidenceMeter,
}

impl Accumulator {
    fn new(cap: usize) -> Self {
        Accumulator {
            content: String::new(),
            cap,
            reply: ChatReply::default(),
            meter: ConfidenceMeter::default(),
        }
    }

    /// `choices[0].logprobs.content[]` of a chunk or a whole reply: `{token, logprob}`.
    fn logprobs(&mut self, choice: &Value) {
        let Some(items) = choice
            .get("logprobs")
            .and_then(|l| l.get("content"))
            .and_then(Value::as_array)
        else {
            return;
        };
        for item in items {
            if let (Some(token), Some(lp)) = (
                item.get("token").and_then(Value::as_str),
                item.get("logprob").and_then(Value::as_f64),
            ) {
                self.meter.token(token, lp);
            }
        }
    }

    /// Add content; `Stop` once the cap is reached (the rest is cut).
    fn push_content(&mut self, c: &str, on_token: &mut (dyn FnMut(&str) + Send)) -> Flow {
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

/// A chat reply read from SSE bytes as they arrive.
struct SseChat {
    lines: LineReader,
    /// `data:` lines of the event being read, joined with `\n`.
    data: Option<String>,
    acc: Accumulator,
    /// A choice carried a `finish_reason`: the answer is whole even without `[DONE]`.
    finished: bool,
}

impl SseChat {
    fn new(cap: usize) -> Self {
        SseChat {
            lines: LineReader::default(),
            data: None,
            acc: Accumulator::new(cap),
            finished: false,
        }
    }

    fn incomplete(&self) -> ModelError {
        ModelError::Incomplete {
            received_chars: self.acc.content.chars().count(),
        }
    }

    /// Feed one network chunk; `Stop` at `[DONE]` or when the reply cap is reached.
    fn push(
        &mut self,
        bytes: &[u8],
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        self.lines.push(bytes)?;
        while let Some(line) = self.lines.next_line_keep_blank() {
            if self.line(&line, on_token)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// One SSE line (without its line ending).
    fn line(
        &mut self,
        line: &[u8],
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        if line.is_empty() {
            return self.dispatch(on_token);
        }
        if line[0] == b':' {
            return Ok(Flow::Continue); // comment (keep-alive)
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field != b"data" {
            return Ok(Flow::Continue); // event:, id:, retry: and unknown fields
        }
        let value = String::from_utf8_lossy(value);
        if value.trim() == "[DONE]" {
            // Whatever the pending event says, the stream ends here.
            self.dispatch(on_token)?;
            return Ok(Flow::Stop);
        }
        match &mut self.data {
            Some(d) => {
                d.push('\n');
                d.push_str(&value);
            }
            None => self.data = Some(value.into_owned()),
        }
        Ok(Flow::Continue)
    }

    /// The event is complete: handle its data.
    fn dispatch(&mut self, on_token: &mut (dyn FnMut(&str) + Send)) -> Result<Flow, ModelError> {
        let Some(data) = self.data.take() else {
            return Ok(Flow::Continue);
        };
        // Some servers put several JSON objects in one event (no blank line between
        // `data:` lines); read them in turn.
        for value in serde_json::Deserializer::from_str(&data).into_iter::<Value>() {
            let v = value.map_err(|e| ModelError::Malformed {
                message: format!("{e} in event {:?}", crate::sanitize::for_screen(&data, 80)),
            })?;
            if self.chunk(&v, on_token)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// One `chat.completion.chunk` object.
    fn chunk(
        &mut self,
        v: &Value,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        if let Some(message) = error_message(v) {
            return Err(ModelError::Server { message });
        }
        if let Some(n) = completion_tokens(v) {
            self.acc.reply.eval_count = Some(n);
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(Flow::Continue); // a usage-only chunk
        };
        self.acc.logprobs(choice);
        if let Some(delta) = choice.get("delta") {
            if let Some(r) = reasoning_text(delta) {
                self.acc.reply.thinking_chars += r.chars().count();
            }
            if let Some(c) = delta.get("content").and_then(Value::as_str) {
                if self.acc.push_content(c, on_token) == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        if let Some(reason) = finish_reason(choice) {
            self.acc.reply.done_reason = Some(reason);
            self.finished = true;
        }
        Ok(Flow::Continue)
    }

    /// The body ended. Without `[DONE]`, the answer counts only if a choice finished.
    fn end_of_stream(
        mut self,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatReply, ModelError> {
        // A last line without its newline: `data: [DONE]` is honoured, a cut line is not.
        if let Some(rest) = self.lines.remainder() {
            let rest = String::from_utf8_lossy(&rest);
            if rest.trim() == "data: [DONE]" || rest.trim() == "data:[DONE]" {
                return match self.dispatch(on_token) {
                    Ok(_) => Ok(self.finish()),
                    Err(ModelError::Malformed { .. }) => Err(self.incomplete()),
                    Err(e) => Err(e),
                };
            }
        }
        // An event whose closing blank line never came.
        match self.dispatch(on_token) {
            Ok(Flow::Stop) => return Ok(self.finish()),
            Ok(Flow::Continue) => {}
            Err(ModelError::Malformed { .. }) => return Err(self.incomplete()),
            Err(e) => return Err(e),
        }
        if self.finished {
            Ok(self.finish())
        } else {
            Err(self.incomplete())
        }
    }

    fn finish(self) -> ChatReply {
        self.acc.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn chunk(content: &str) -> String {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]
        });
        format!("data: {v}\n\n")
    }

    fn finish_chunk(reason: &str, tokens: u64) -> String {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
        });
        format!("data: {v}\n\n")
    }

    const DONE: &str = "data: [DONE]\n\n";

    /// Feed the stream in the given pieces, then end it.
    fn run(pieces: &[&[u8]], cap: usize) -> (Result<ChatReply, ModelError>, Vec<String>) {
        let mut tokens = Vec::new();
        let mut sse = SseChat::new(cap);
        let mut on = |t: &str| tokens.push(t.to_string());
        for p in pieces {
            match sse.push(p, &mut on) {
                Ok(Flow::Stop) => {
                    let r = sse.finish();
                    return (Ok(r), tokens);
                }
                Ok(Flow::Continue) => {}
                Err(e) => return (Err(e), tokens),
            }
        }
        let r = sse.end_of_stream(&mut on);
        (r, tokens)
    }

    fn run_str(s: &str, cap: usize) -> (Result<ChatReply, ModelError>, Vec<String>) {
        run(&[s.as_bytes()], cap)
    }

    #[test]
    fn tokens_then_done() {
        let s = [
            chunk("A "),
            chunk("cat."),
            finish_chunk("stop", 2),
            DONE.into(),
        ]
        .concat();
        let (r, tokens) = run_str(&s, 1000);
        let r = r.unwrap();
        assert_eq!(r.content, "A cat.");
        assert_eq!(tokens, ["A ", "cat."]);
        assert_eq!(r.done_reason.as_deref(), Some("stop"));
        assert_eq!(r.eval_count, Some(2));
        assert!(!r.truncated);
    }

    #[test]
    fn events_split_anywhere_and_utf8_split_inside_characters() {
        let s = [
            chunk("café "),
            chunk("20°C 🔥"),
            finish_chunk("stop", 2),
            DONE.into(),
        ]
        .concat();
        let bytes = s.as_bytes();
        // One byte per network chunk: every event and every character is split.
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        let (r, tokens) = run(&pieces, 1000);
        assert_eq!(r.unwrap().content, "café 20°C 🔥");
        assert_eq!(tokens, ["café ", "20°C 🔥"]);
        // And in 7-byte pieces (cuts fall inside the multi-byte characters too).
        let pieces: Vec<&[u8]> = bytes.chunks(7).collect();
        assert_eq!(run(&pieces, 1000).0.unwrap().content, "café 20°C 🔥");
    }

    #[test]
    fn crlf_line_endings() {
        let s = [chunk("A"), chunk("B"), DONE.into()]
            .concat()
            .replace('\n', "\r\n");
        assert_eq!(run_str(&s, 1000).0.unwrap().content, "AB");
    }

    #[test]
    fn comments_event_and_id_lines_are_ignored() {
        let s = format!(
            ": keep-alive\n\nevent: message\nid: 1\nretry: 3000\n{}: ping\n{}{DONE}",
            chunk("A"),
            chunk("B")
        );
        let (r, tokens) = run_str(&s, 1000);
        assert_eq!(r.unwrap().content, "AB");
        assert_eq!(tokens, ["A", "B"]);
    }

    #[test]
    fn data_without_space_and_multi_line_data() {
        // `data:` without the space, and one JSON object spread over two data lines.
        let s = "data:{\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n\
                 data: {\"choices\":[{\"delta\":\n\
                 data: {\"content\":\"B\"}}]}\n\n\
                 data:[DONE]\n\n";
        assert_eq!(run_str(s, 1000).0.unwrap().content, "AB");
    }

    #[test]
    fn events_without_blank_lines_between_are_still_read() {
        let s = "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\
                 data: {\"choices\":[{\"delta\":{\"content\":\"B\"}}]}\n\
                 data: [DONE]\n";
        assert_eq!(run_str(s, 1000).0.unwrap().content, "AB");
    }

    #[test]
    fn done_stops_reading() {
        let s = [chunk("A"), DONE.into(), chunk("never")].concat();
        let (r, tokens) = run_str(&s, 1000);
        assert_eq!(r.unwrap().content, "A");
        assert_eq!(tokens, ["A"]);
    }

    #[test]
    fn done_without_trailing_newline_at_end() {
        let s = [chunk("A"), "data: [DONE]".into()].concat();
        assert_eq!(run_str(&s, 1000).0.unwrap().content, "A");
    }

    #[test]
    fn error_object_fails_the_call() {
        let err = json!({"error": {"message": "CUDA out of memory", "type": "server_error", "code": 500}});
        let s = [
            chunk("A c"),
            format!("event: error\ndata: {err}\n\n"),
            DONE.into(),
        ]
        .concat();
        assert_eq!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Server {
                message: "CUDA out of memory".into()
            }
        );
        // A plain string error and vLLM's older top-level error object.
        let s = "data: {\"error\":\"boom\"}\n\n";
        assert_eq!(
            run_str(s, 1000).0.unwrap_err(),
            ModelError::Server {
                message: "boom".into()
            }
        );
        let s = "data: {\"object\":\"error\",\"message\":\"bad\",\"code\":400}\n\n";
        assert_eq!(
            run_str(s, 1000).0.unwrap_err(),
            ModelError::Server {
                message: "bad".into()
            }
        );
    }

    #[test]
    fn missing_done_and_finish_reason_is_incomplete() {
        let s = [chunk("A "), chunk("ca")].concat();
        assert_eq!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Incomplete { received_chars: 4 }
        );
        // Cut in the middle of an event.
        let s = [chunk("A "), "data: {\"choices\":[{\"del".into()].concat();
        assert!(matches!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Incomplete { received_chars: 2 }
        ));
        // Nothing at all.
        assert!(matches!(
            run_str("", 1000).0.unwrap_err(),
            ModelError::Incomplete { received_chars: 0 }
        ));
    }

    #[test]
    fn finish_reason_without_done_is_complete() {
        let s = [chunk("A"), finish_chunk("length", 1)].concat();
        let r = run_str(&s, 1000).0.unwrap();
        assert_eq!(r.content, "A");
        assert_eq!(r.done_reason.as_deref(), Some("length"));
    }

    #[test]
    fn malformed_event_is_an_error() {
        let s = ["data: {\"choices\":[{\"del\n\n".to_string(), DONE.into()].concat();
        assert!(matches!(
            run_str(&s, 1000).0.unwrap_err(),
            ModelError::Malformed { .. }
        ));
    }

    #[test]
    fn reasoning_is_not_content() {
        let s = format!(
            "data: {}\n\n{}{DONE}",
            json!({"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}),
            chunk("A cat.")
        );
        let r = run_str(&s, 1000).0.unwrap();
        assert_eq!(r.content, "A cat.");
        assert_eq!(r.thinking_chars, 3);
    }

    #[test]
    fn huge_reply_is_cut_with_a_note() {
        let one = chunk(&"é".repeat(600));
        let s = one.repeat(10) + DONE;
        let (r, tokens) = run_str(&s, 1001);
        let r = r.unwrap();
        assert!(r.truncated);
        assert!(
            r.content.ends_with("\n[reply cut at 1 KiB]"),
            "{}",
            r.content
        );
        assert_eq!(tokens.concat().len(), 1000); // 1001 falls inside an 'é'
    }

    #[test]
    fn whole_reply_is_parsed_and_capped() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"agrees\":true}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 7, "total_tokens": 307}
        });
        let mut tokens = Vec::new();
        let r = parse_whole(
            body.to_string().as_bytes(),
            &mut |t: &str| tokens.push(t.to_string()),
            1000,
        )
        .unwrap();
        assert_eq!(r.content, "{\"agrees\":true}");
        assert_eq!(r.eval_count, Some(7));
        assert_eq!(r.done_reason.as_deref(), Some("stop"));
        assert_eq!(tokens, ["{\"agrees\":true}"]);
        let r = parse_whole(body.to_string().as_bytes(), &mut |_: &str| {}, 5).unwrap();
        assert!(r.truncated);
        assert_eq!(r.content, "{\"agr\n[reply cut at 1 KiB]");
        assert!(matches!(
            parse_whole(b"{\"choices\":[]}", &mut |_: &str| {}, 5),
            Err(ModelError::Malformed { .. })
        ));
        assert!(matches!(
            parse_whole(b"<html>", &mut |_: &str| {}, 5),
            Err(ModelError::Malformed { .. })
        ));
    }

    #[test]
    fn status_errors() {
        let body = br#"{"error":{"message":"The model `x` does not exist.","type":"invalid_request_error","code":"model_not_found"}}"#;
        assert_eq!(
            status_error(404, body, "x", "http://h:8000/"),
            ModelError::ModelNotFound {
                model: "x".into(),
                url: "http://h:8000".into()
            }
        );
        assert_eq!(
            status_error(401, br#"{"error":{"message":"Invalid API key"}}"#, "x", "b"),
            ModelError::Http {
                status: 401,
                message: "Invalid API key".into()
            }
        );
        assert_eq!(
            status_error(502, b"Bad gateway\n", "x", "b"),
            ModelError::Http {
                status: 502,
                message: "Bad gateway".into()
            }
        );
    }

    #[test]
    fn body_has_parts_images_and_response_format() {
        let cfg = HostConfig {
            model: "gemma-3-27b".into(),
            temperature: Some(0.25),
            ..HostConfig::default()
        };
        let req = ChatRequest {
            system: Some("Be brief.".into()),
            user: "What is here?".into(),
            images: vec![Arc::from("/9j/AAAA"), Arc::from("iVBORw0KGgoAAAA")],
            format: Some(json!({"type": "object"})),
            stream: true,
            sampling: Default::default(),
        };
        let b = chat_body(&cfg, &req);
        assert_eq!(b["model"], "gemma-3-27b");
        assert_eq!(b["stream"], true);
        assert_eq!(b["temperature"], 0.25);
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        let parts = &b["messages"][1]["content"];
        assert_eq!(parts[0], json!({"type": "text", "text": "What is here?"}));
        assert_eq!(
            parts[1]["image_url"]["url"],
            "data:image/jpeg;base64,/9j/AAAA"
        );
        assert_eq!(
            parts[2]["image_url"]["url"],
            "data:image/png;base64,iVBORw0KGgoAAAA"
        );
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(
            b["response_format"]["json_schema"]["schema"],
            json!({"type": "object"})
        );
        assert!(b.get("think").is_none() && b.get("options").is_none());

        let req = ChatRequest {
            user: "hi".into(),
            format: Some(json!("json")),
            ..ChatRequest::default()
        };
        let b = chat_body(&HostConfig::default(), &req);
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
        assert_eq!(b["messages"][0]["content"], "hi");
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        assert!(b.get("temperature").is_none());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("http://h:8000", "models"),
            "http://h:8000/v1/models"
        );
        assert_eq!(
            endpoint("http://h:8000/", "models"),
            "http://h:8000/v1/models"
        );
        assert_eq!(
            endpoint("http://h:8000/v1/", "chat/completions"),
            "http://h:8000/v1/chat/completions"
        );
    }

    #[test]
    fn models_list() {
        let body = br#"{"object":"list","data":[{"id":"a","object":"model"},{"id":"b"}]}"#;
        assert_eq!(parse_models(body).unwrap(), ["a", "b"]);
        assert!(matches!(
            parse_models(b"{}"),
            Err(ModelError::Malformed { .. })
        ));
    }
}
