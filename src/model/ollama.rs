//! Ollama's wire format: `/api/chat` read as NDJSON by our own line reader, the load
//! request (a chat with no messages), and the small endpoints (`/api/tags`, `/api/show`,
//! `/api/version`, `/api/ps`) read with a size cap. Every chat carries the host's
//! `keep_alive`.
//!
//! ollama-rs is not used: its stream decoded each network chunk with `String::from_utf8`
//! (dropping a chunk that splits a multi-byte character) and `eprintln!`ed lines it could
//! not parse (stderr is the console's screen). `chat` applies no whole-call timeout of its
//! own: `ModelClient::chat` bounds it at the host's `timeout_secs`.

use super::error::{says_no_vision, ModelError};
use super::request::{ChatReply, ChatRequest};
use super::stream::{
    map_send_error, read_capped, send_json, within, CappedReply, Flow, LineReader, ERROR_BODY_BYTES,
};
use crate::config::HostConfig;
use futures_util::StreamExt;
use serde::Deserialize;

/// `/api/tags` and `/api/ps` replies are read up to this many bytes (a few hundred models).
pub(crate) const LIST_BODY_BYTES: usize = 4 * 1024 * 1024;
/// `/api/show` carries the model's template, parameters and licence.
const SHOW_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Small JSON endpoints (tags, show, version, ps) give up after this long.
const LIST_TIMEOUT_SECS: u64 = 15;

/// The JSON body of one `/api/chat` call.
pub fn chat_body(cfg: &HostConfig, req: &ChatRequest) -> serde_json::Value {
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
        "model": cfg.model,
        "messages": messages,
        "stream": req.stream,
        "think": cfg.think,
    });
    let mut options = serde_json::Map::new();
    if let Some(t) = req.temperature(cfg) {
        options.insert("temperature".into(), serde_json::json!(t));
    }
    if let Some(seed) = req.sampling.seed {
        options.insert("seed".into(), serde_json::json!(seed));
    }
    if let Some(n) = req.max_tokens(cfg) {
        options.insert("num_predict".into(), serde_json::json!(n));
    }
    if !options.is_empty() {
        body["options"] = serde_json::Value::Object(options);
    }
    if let Some(f) = &req.format {
        body["format"] = f.clone();
    }
    if cfg.logprobs {
        body["logprobs"] = serde_json::Value::Bool(true);
    }
    if let Some(ka) = cfg.keep_alive.wire() {
        body["keep_alive"] = ka;
    }
    body
}

/// One `/api/chat` call, read line by line. Replies longer than `max_reply_bytes` are cut
/// with a note. Not bounded in time: the caller applies `cfg.timeout_secs`.
pub async fn chat(
    http: &reqwest::Client,
    base: &str,
    cfg: &HostConfig,
    req: &ChatRequest,
    on_token: &mut (dyn FnMut(&str) + Send),
    max_reply_bytes: usize,
) -> Result<ChatReply, ModelError> {
    let url = format!("{base}/api/chat");
    let resp = send_json(http, &url, &chat_body(cfg, req))
        .await
        .map_err(|e| map_send_error(e, base, cfg.timeout_secs))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(error_of(status.as_u16(), resp, cfg, base).await);
    }
    let mut stream = resp.bytes_stream();
    let mut reader = LineReader::default();
    let mut acc = NdjsonReply::new(max_reply_bytes);
    loop {
        let chunk = match stream.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                if e.is_timeout() {
                    return Err(ModelError::Timeout {
                        secs: cfg.timeout_secs,
                    });
                }
                // The connection broke mid-stream: whatever came is not an answer.
                return Err(acc.reply.incomplete());
            }
            None => break,
        };
        reader.push(&chunk)?;
        while let Some(line) = reader.next_line() {
            if acc.feed(&line, on_token)? == Flow::Stop {
                return Ok(acc.reply.finish());
            }
        }
    }
    if let Some(rest) = reader.remainder() {
        if acc.feed(&rest, on_token)? == Flow::Stop {
            return Ok(acc.reply.finish());
        }
    }
    Err(acc.reply.incomplete())
}

/// Load the model without asking anything: a chat with no messages, answered
/// `done_reason: "load"` once the model is in memory, with the host's `keep_alive`. Not
/// bounded in time: the caller applies `cfg.timeout_secs`.
pub async fn load(http: &reqwest::Client, base: &str, cfg: &HostConfig) -> Result<(), ModelError> {
    let mut body = serde_json::json!({
        "model": cfg.model,
        "messages": [],
        "stream": false,
    });
    if let Some(ka) = cfg.keep_alive.wire() {
        body["keep_alive"] = ka;
    }
    let url = format!("{base}/api/chat");
    let resp = send_json(http, &url, &body)
        .await
        .map_err(|e| map_send_error(e, base, cfg.timeout_secs))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(error_of(status, resp, cfg, base).await);
    }
    let bytes = read_capped(resp, ERROR_BODY_BYTES).await;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ModelError::Malformed {
            message: format!("load reply: {e}"),
        })?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(ModelError::Server {
            message: crate::reading::sanitize::for_screen(e, 500),
        });
    }
    Ok(())
}

/// GET (or POST with `body`) a small JSON endpoint of Ollama's API, read capped and
/// bounded in time.
pub(crate) async fn small_json(
    http: &reqwest::Client,
    base: &str,
    cfg: &HostConfig,
    path: &str,
    body: Option<serde_json::Value>,
    cap: usize,
) -> Result<serde_json::Value, ModelError> {
    let url = format!("{base}{path}");
    let secs = cfg.timeout_secs.min(LIST_TIMEOUT_SECS);
    within(secs, async {
        let req = match &body {
            Some(b) => http.post(&url).json(b),
            None => http.get(&url),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| map_send_error(e, base, cfg.timeout_secs))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(error_of(status, resp, cfg, base).await);
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
                crate::reading::sanitize::for_screen(&String::from_utf8_lossy(&bytes), 80)
            ),
        })
    })
    .await
}

/// Model names the server has (`/api/tags`), read capped.
pub async fn list_models(
    http: &reqwest::Client,
    base: &str,
    cfg: &HostConfig,
) -> Result<Vec<String>, ModelError> {
    let v = small_json(http, base, cfg, "/api/tags", None, LIST_BODY_BYTES).await?;
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
        .map(|n| crate::reading::sanitize::for_screen(n, 200))
        .collect())
}

/// Whether the model takes images, from `/api/show` capabilities (None when the server
/// does not say).
pub async fn vision(
    http: &reqwest::Client,
    base: &str,
    cfg: &HostConfig,
) -> Result<Option<bool>, ModelError> {
    let body = serde_json::json!({"model": cfg.model});
    let v = small_json(http, base, cfg, "/api/show", Some(body), SHOW_BODY_BYTES).await?;
    Ok(show_vision(&v))
}

/// The server's Ollama version (`/api/version`).
pub async fn version(
    http: &reqwest::Client,
    base: &str,
    cfg: &HostConfig,
) -> Result<String, ModelError> {
    let v = small_json(http, base, cfg, "/api/version", None, 16 * 1024).await?;
    v.get("version")
        .and_then(|s| s.as_str())
        .map(|s| crate::reading::sanitize::for_screen(s, 40))
        .ok_or_else(|| ModelError::Malformed {
            message: "no version in /api/version reply".into(),
        })
}

/// An error status's body, read capped, as a `ModelError`.
async fn error_of(
    status: u16,
    resp: reqwest::Response,
    cfg: &HostConfig,
    base: &str,
) -> ModelError {
    let body = read_capped(resp, ERROR_BODY_BYTES).await;
    status_error(status, &body, &cfg.model, base)
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
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

/// `capabilities` of an `/api/show` reply: contains `vision` or not; None when the
/// server (older Ollama) sends no capabilities.
pub fn show_vision(show: &serde_json::Value) -> Option<bool> {
    let caps = show.get("capabilities")?.as_array()?;
    Some(caps.iter().any(|c| c.as_str() == Some("vision")))
}

/// An HTTP error status from an Ollama endpoint. A 404 is a missing model, unless the
/// body is shaped like another protocol's error (Ollama's `error` is a string; the
/// OpenAI-compatible servers send an object, FastAPI ones `detail`): then the host
/// speaks the OpenAI-compatible API and `kind` is wrong.
pub fn status_error(status: u16, body: &[u8], model: &str, base: &str) -> ModelError {
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
    let message = crate::reading::sanitize::for_screen(&message, 300);
    if status == 404 {
        // Ollama's wording differs between versions; the status code does not.
        return ModelError::ModelNotFound {
            model: model.to_string(),
            url: base.to_string(),
        };
    }
    if says_no_vision(&message) {
        return ModelError::NoVision {
            model: model.to_string(),
            message,
        };
    }
    ModelError::Http { status, message }
}

/// An `/api/chat` reply read from its NDJSON lines.
struct NdjsonReply {
    reply: CappedReply,
}

impl NdjsonReply {
    fn new(cap: usize) -> Self {
        NdjsonReply {
            reply: CappedReply::new(cap),
        }
    }

    /// One line; `Stop` at `done: true` or when the reply cap is reached.
    fn feed(
        &mut self,
        line: &[u8],
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Flow, ModelError> {
        let parsed: WireLine = serde_json::from_slice(line).map_err(|e| ModelError::Malformed {
            message: format!(
                "{e} in line {:?}",
                crate::reading::sanitize::for_screen(&String::from_utf8_lossy(line), 80)
            ),
        })?;
        if let Some(err) = parsed.error {
            return Err(ModelError::Server {
                message: crate::reading::sanitize::for_screen(&err, 500),
            });
        }
        if let Some(lps) = parsed.logprobs {
            for lp in lps {
                self.reply.meter.token(&lp.token, lp.logprob);
            }
        }
        if let Some(m) = parsed.message {
            if let Some(t) = m.thinking {
                self.reply.reply.thinking_chars += t.chars().count();
            }
            if let Some(c) = m.content {
                if self.reply.push_content(&c, on_token) == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        if parsed.done == Some(true) {
            self.reply.reply.done_reason = parsed.done_reason;
            self.reply.reply.eval_count = parsed.eval_count;
            self.reply.reply.prompt_tokens = parsed.prompt_eval_count;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(lines: &[&str], cap: usize) -> Result<ChatReply, ModelError> {
        let mut acc = NdjsonReply::new(cap);
        let mut tokens = Vec::new();
        for l in lines {
            if acc.feed(l.as_bytes(), &mut |t: &str| tokens.push(t.to_string()))? == Flow::Stop {
                return Ok(acc.reply.finish());
            }
        }
        Err(ModelError::Incomplete {
            received_chars: acc.reply.content.len(),
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
            assert_eq!(chat_body(&cfg, &req).get("keep_alive").cloned(), wire);
        }
    }

    #[test]
    fn thinking_is_not_content() {
        let r = feed_all(
            &[
                r#"{"message":{"role":"assistant","content":"","thinking":"hmm"}, "done":false}"#,
                r#"{"message":{"role":"assistant","content":"A cat."}, "done":false}"#,
                r#"{"message":{"role":"assistant","content":""}, "done":true, "done_reason":"stop","eval_count":5,"prompt_eval_count":270}"#,
            ],
            1000,
        )
        .unwrap();
        assert_eq!(r.content, "A cat.");
        assert_eq!(r.thinking_chars, 3);
        assert_eq!(r.eval_count, Some(5));
        assert_eq!(r.prompt_tokens, Some(270));
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
