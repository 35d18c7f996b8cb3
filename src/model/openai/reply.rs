//! Reading what an OpenAI-compatible server answers: a whole `chat.completion` object,
//! the fields of a chunk (error, reasoning, finish reason, usage, log-probabilities) and
//! an HTTP error status with the server's message.

use crate::model::error::{says_no_vision, ModelError};
use crate::model::request::ChatReply;
use crate::model::stream::CappedReply;
use serde_json::Value;

/// The base URL as shown in errors.
pub(super) fn display_base(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}

/// A non-streamed `chat.completion` object.
pub(super) fn parse_whole(
    body: &[u8],
    on_token: &mut (dyn FnMut(&str) + Send),
    max_reply_bytes: usize,
) -> Result<ChatReply, ModelError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ModelError::Malformed {
        message: format!(
            "{e} in reply {:?}",
            crate::reading::sanitize::for_screen(&String::from_utf8_lossy(body), 80)
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
    let mut acc = CappedReply::new(max_reply_bytes);
    logprobs(&mut acc, choice);
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
pub(super) fn status_error(status: u16, body: &[u8], model: &str, base: &str) -> ModelError {
    if status == 404 {
        return ModelError::ModelNotFound {
            model: model.to_string(),
            url: display_base(base),
        };
    }
    let message = body_message(body);
    if says_no_vision(&message) {
        return ModelError::NoVision {
            model: model.to_string(),
            message,
        };
    }
    ModelError::Http { status, message }
}

/// The message of an error body: OpenAI's `{"error":{"message":…}}`, `{"error":"…"}`,
/// vLLM's older top-level `{"object":"error","message":…}`, or the text itself.
pub(super) fn body_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| error_message(&v))
        .unwrap_or_else(|| {
            crate::reading::sanitize::for_screen(String::from_utf8_lossy(body).trim(), 300)
        });
    crate::reading::sanitize::for_screen(&message, 300)
}

/// The error a JSON object reports, if it is an error object.
pub(super) fn error_message(v: &Value) -> Option<String> {
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
    Some(crate::reading::sanitize::for_screen(&text, 500))
}

pub(super) fn reasoning_text(msg: &Value) -> Option<&str> {
    msg.get("reasoning_content")
        .or_else(|| msg.get("reasoning"))
        .and_then(Value::as_str)
}

pub(super) fn finish_reason(choice: &Value) -> Option<String> {
    choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(String::from)
}

pub(super) fn completion_tokens(v: &Value) -> Option<u64> {
    v.get("usage")
        .and_then(|u| u.get("completion_tokens"))
        .and_then(Value::as_u64)
}

/// `choices[0].logprobs.content[]` of a chunk or a whole reply: `{token, logprob}`.
pub(super) fn logprobs(acc: &mut CappedReply, choice: &Value) {
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
            acc.meter.token(token, lp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
