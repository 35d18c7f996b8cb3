//! The JSON body of an OpenAI-compatible `/v1/chat/completions` call: messages with
//! image parts as data URLs, sampling, log-probabilities, thinking and the response format.

use crate::config::HostConfig;
use crate::model::request::ChatRequest;
use serde_json::{json, Value};

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
    if req.stream {
        // The token counts come in a last chunk only when asked for (OpenAI, vLLM,
        // llama.cpp): the prompt's count is what an image costs.
        body["stream_options"] = json!({"include_usage": true});
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
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
        assert!(b.get("stream_options").is_none(), "only asked of a stream");
    }
}
