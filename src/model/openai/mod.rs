//! The OpenAI-compatible chat API (vLLM, llama.cpp's `llama-server`, LM Studio, …).
//!
//! `POST {base}/v1/chat/completions`, streamed as server-sent events (`data: {json}` lines,
//! events separated by a blank line, `data: [DONE]` at the end) or answered as one JSON
//! object; `GET {base}/v1/models` lists the models. Bytes are joined by the line reader
//! before any decoding, so a chunk that splits a UTF-8 character loses nothing.
//!
//! Neither function applies a whole-call timeout of its own (`list_models` excepted, which
//! is bounded at [`LIST_TIMEOUT_SECS`]): the caller wraps `chat` in its `timeout_secs`, as
//! `ModelClient::chat` does for the Ollama path. Authorization and extra headers are the
//! reqwest client's default headers.

mod body;
mod reply;
mod sse;

pub use body::chat_body;

use super::error::ModelError;
use super::request::{ChatReply, ChatRequest};
use super::stream::{map_send_error, read_capped, send_json, within, Flow, ERROR_BODY_BYTES};
use crate::config::HostConfig;
use futures_util::StreamExt;
use reply::{body_message, display_base, parse_whole, status_error};
use serde_json::Value;
use sse::SseChat;

/// `list_models` gives up after this long.
pub const LIST_TIMEOUT_SECS: u64 = 15;
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
    within(secs, fut).await
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
    within(secs, fut).await
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
        .map(|id| crate::reading::sanitize::for_screen(id, 200))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
