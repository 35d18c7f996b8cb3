//! Self-test of the fake OpenAI-compatible server, with reqwest directly (not the project's
//! client), so the wire format other integration tests rely on is pinned here.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::openai_server::{
    image_data_url, split_tokens, OpenAiTestServer, Reply, DEFAULT_REPLY_TEXT,
};

const MODEL: &str = "google/gemma-3-27b-it";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

async fn post_chat(server: &OpenAiTestServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&body)
        .send()
        .await
        .expect("send chat")
}

fn chat_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{ "role": "user", "content": "Describe the frame." }],
        "stream": stream
    })
}

/// Split an SSE body into the `data:` payloads of its events, asserting the framing.
fn sse_data(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "SSE body must end with a blank line"
    );
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("event without data: {e:?}"))
                .to_string()
        })
        .collect()
}

fn content_of(events: &[String]) -> String {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

#[tokio::test]
async fn streams_default_reply_as_sse_events_then_done() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    let resp = post_chat(&server, chat_body(MODEL, true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");

    // Every event arrives as its own HTTP chunk.
    let mut chunks = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        chunks.push(String::from_utf8(c.unwrap().to_vec()).unwrap());
    }
    for c in &chunks {
        assert!(c.starts_with("data: ") && c.ends_with("\n\n"), "{c:?}");
    }
    let events = sse_data(&chunks.concat());
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(content_of(&events), DEFAULT_REPLY_TEXT);
    // role chunk + one per token + final chunk + [DONE]
    let tokens = split_tokens(DEFAULT_REPLY_TEXT, 4);
    assert_eq!(events.len(), tokens.len() + 3);
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], tokens.len() as u64);
    assert_eq!(last["model"], MODEL);
}

#[tokio::test]
async fn non_streaming_reply_is_one_completion_object() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::json(&json!({"agrees": true})));
    // `stream` absent means false.
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}]});
    let resp = post_chat(&server, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], r#"{"agrees":true}"#);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(!server.chat_requests()[0].stream);
}

#[tokio::test]
async fn records_parts_images_response_format_and_headers() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    let jpeg = [0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let body = json!({
        "model": MODEL,
        "stream": false,
        "temperature": 0.5,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": image_data_url("image/jpeg", &jpeg)}}
            ]}
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": {"type": "object"}}}
    });
    let resp = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let chats = server.chat_requests();
    let c = &chats[0];
    assert_eq!(c.model, MODEL);
    assert_eq!(c.temperature, Some(0.5));
    assert_eq!(c.first_text("system").as_deref(), Some("Be brief."));
    assert!(c.messages[0].content_is_string);
    assert_eq!(c.last_text("user").as_deref(), Some("What is here?"));
    assert!(!c.messages[1].content_is_string);
    assert_eq!(c.messages[1].images[0].mime, "image/jpeg");
    assert_eq!(c.all_images(), vec![jpeg.to_vec()]);
    assert_eq!(c.json_schema(), Some(&json!({"type": "object"})));
    assert_eq!(c.header("AUTHORIZATION"), Some("Bearer sk-test"));
}

#[tokio::test]
async fn bad_image_is_400_and_unknown_model_404() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,@@@"}}
    ]}]});
    let resp = post_chat(&server, body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid image URL"));

    let resp = post_chat(&server, chat_body("nope", true)).await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "The model `nope` does not exist.");
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(server.chat_count(), 2);
}

#[tokio::test]
async fn models_list_and_api_key() {
    let server = OpenAiTestServer::start(&[MODEL, "other"]).await;
    let v: Value = client()
        .get(format!("{}/v1/models", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [MODEL, "other"]);

    server.set_api_key(Some("sk-1"));
    let url = format!("{}/v1/models", server.url());
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    let wrong = client().get(&url).bearer_auth("sk-2").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = client().get(&url).bearer_auth("sk-1").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // Other paths: FastAPI's 404.
    let resp = client()
        .get(format!("{}/api/tags", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn split_utf8_cuts_chunks_inside_characters() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    let text = "café 20°C 🔥 ok";
    server.push_reply(Reply::text(text).split_utf8());
    let resp = post_chat(&server, chat_body(MODEL, true)).await;
    let mut raw = Vec::new();
    let mut split_inside = 0;
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        if std::str::from_utf8(&c).is_err() {
            split_inside += 1;
        }
        raw.extend_from_slice(&c);
    }
    assert!(split_inside > 0, "no chunk ended inside a character");
    let events = sse_data(&String::from_utf8(raw).unwrap());
    assert_eq!(content_of(&events), text);
}

#[tokio::test]
async fn error_event_malformed_and_drop() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::error_event("A c", "CUDA out of memory"));
    let body = post_chat(&server, chat_body(MODEL, true))
        .await
        .text()
        .await
        .unwrap();
    let events = sse_data(&body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let err: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(err["error"]["message"], "CUDA out of memory");
    assert_eq!(content_of(&events[..events.len() - 2]), "A c");

    server.push_reply(Reply::malformed("A"));
    let body = post_chat(&server, chat_body(MODEL, true))
        .await
        .text()
        .await
        .unwrap();
    let events = sse_data(&body);
    assert!(events
        .iter()
        .any(|e| serde_json::from_str::<Value>(e).is_err() && e != "[DONE]"));

    server.push_reply(Reply::drop_mid_stream("A cat"));
    let resp = post_chat(&server, chat_body(MODEL, true)).await;
    assert_eq!(resp.status(), 200);
    let mut s = resp.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(c) = s.next().await {
        match c {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "a dropped chunked body must be an error");
    assert!(!String::from_utf8_lossy(&got).contains("[DONE]"));

    server.push_reply(Reply::error(503, "overloaded"));
    let resp = post_chat(&server, chat_body(MODEL, false)).await;
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "overloaded");
}

#[tokio::test]
async fn hang_never_answers_and_handler_sees_the_request() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::Hang);
    let fut = post_chat(&server, chat_body(MODEL, true));
    assert!(tokio::time::timeout(Duration::from_millis(300), fut)
        .await
        .is_err());

    server.set_handler(|c| Reply::text(format!("echo {}", c.last_text("user").unwrap())));
    let v: Value = post_chat(&server, chat_body(MODEL, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo Describe the frame."
    );
    assert!(server.wait_for_chats(2, Duration::from_secs(1)).await);
}

#[test]
fn start_in_thread_serves_blocking_callers() {
    let server = OpenAiTestServer::start_in_thread(&[MODEL]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        client()
            .get(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    server.stop_listening();
    let err = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/health", server.url()))
            .send()
            .await
    });
    assert!(err.is_err());
}
