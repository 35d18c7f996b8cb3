//! `gemmaedge_tui::model::openai` against the fake OpenAI-compatible server: streaming,
//! the teacher's JSON verdict through `response_format`, images as data URLs, the bearer
//! header, and the faults a real server shows.

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use gemmaedge_tui::config::HostConfig;
use gemmaedge_tui::model::openai;
use gemmaedge_tui::model::{ChatReply, ChatRequest, ModelError};
use gemmaedge_tui::policy::Reason;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::json;
use support::openai_server::{OpenAiTestServer, Reply};

const MODEL: &str = "google/gemma-3-27b-it";
const CAP: usize = 64 * 1024;

fn cfg(server: &OpenAiTestServer) -> HostConfig {
    HostConfig {
        host: server.url(),
        model: MODEL.into(),
        timeout_secs: 5,
        ..HostConfig::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn http_with_key(key: &str) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    let mut v = HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
    v.set_sensitive(true);
    headers.insert(AUTHORIZATION, v);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

fn describe(stream: bool) -> ChatRequest {
    ChatRequest {
        system: Some("You describe webcam frames.".into()),
        user: "Describe the frame.".into(),
        images: vec![],
        format: None,
        stream,
        sampling: Default::default(),
    }
}

/// The call, bounded the way `ModelClient::chat` bounds it.
async fn call(
    http: &reqwest::Client,
    server: &OpenAiTestServer,
    cfg: &HostConfig,
    req: &ChatRequest,
    tokens: &mut Vec<String>,
) -> Result<ChatReply, ModelError> {
    let secs = cfg.timeout_secs;
    let base = server.url();
    let mut on_token = |t: &str| tokens.push(t.to_string());
    let fut = openai::chat(http, &base, cfg, req, &mut on_token, CAP);
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(r) => r,
        Err(_) => Err(ModelError::Timeout { secs }),
    }
}

#[tokio::test]
async fn streams_tokens_with_utf8_split_across_chunks() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    let text = "Un café à 20°C 🔥, personne au bureau.\nCONFIDENCE: 0.8";
    server.push_reply(Reply::text(text).token_chars(3).split_utf8());
    let mut tokens = Vec::new();
    let r = call(
        &http(),
        &server,
        &cfg(&server),
        &describe(true),
        &mut tokens,
    )
    .await
    .unwrap();
    assert_eq!(r.content, text);
    assert_eq!(tokens.concat(), text);
    assert!(
        tokens.len() > 10,
        "tokens should arrive one by one: {tokens:?}"
    );
    assert_eq!(r.done_reason.as_deref(), Some("stop"));
    assert!(r.eval_count.is_some_and(|n| n > 0));
    assert!(!r.truncated);
    let sent = &server.chat_requests()[0];
    assert!(sent.stream);
    assert_eq!(sent.model, MODEL);
    assert_eq!(
        sent.first_text("system").as_deref(),
        Some("You describe webcam frames.")
    );
    assert!(sent.response_format.is_none());
}

#[tokio::test]
async fn verdict_request_carries_schema_and_image_and_reply_parses() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    let verdict = json!({
        "agrees": false, "safety_relevant": true,
        "summary": "A person on a ladder without a helmet.",
        "missed": ["no helmet"], "wrong": []
    });
    server.push_reply(Reply::json(&verdict));

    // A real JPEG, as the frame pipeline makes it.
    let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 8, y as u8 * 10, 77]));
    let jpeg = gemmaedge_tui::frame::prep::encode_jpeg(&img, 80).unwrap();
    let b64: Arc<str> = base64::engine::general_purpose::STANDARD
        .encode(&jpeg)
        .into();
    let req = gemmaedge_tui::roles::teacher::review_request(
        "A person at a desk.\nCONFIDENCE: 0.4",
        &[Reason::NoConfidence],
        b64,
    );
    let cfg = HostConfig {
        temperature: Some(0.2),
        ..cfg(&server)
    };
    let mut tokens = Vec::new();
    let r = call(&http(), &server, &cfg, &req, &mut tokens)
        .await
        .unwrap();
    let v = gemmaedge_tui::roles::teacher::parse_verdict(&r.content);
    assert_eq!(v.agrees, Some(false));
    assert_eq!(v.safety_relevant, Some(true));
    assert_eq!(v.missed, ["no helmet"]);
    assert_eq!(tokens.concat(), r.content);

    let sent = &server.chat_requests()[0];
    assert!(!sent.stream);
    assert_eq!(sent.temperature, Some(0.2f32 as f64));
    let rf = sent.response_format.as_ref().unwrap();
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["name"], "verdict");
    assert_eq!(rf["json_schema"]["strict"], false);
    assert_eq!(
        sent.json_schema(),
        Some(&gemmaedge_tui::roles::teacher::verdict_schema())
    );
    let user = sent.messages.iter().find(|m| m.role == "user").unwrap();
    assert!(user.text().contains("A person at a desk."));
    assert!(user.image_urls[0].starts_with("data:image/jpeg;base64,"));
    assert_eq!(user.images[0].mime, "image/jpeg");
    assert_eq!(user.images[0].bytes, jpeg);
    let decoded = image::load_from_memory(&user.images[0].bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (32, 24));
}

#[tokio::test]
async fn json_format_string_becomes_json_object() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::text("{}"));
    let req = ChatRequest {
        format: Some(json!("json")),
        ..describe(false)
    };
    call(&http(), &server, &cfg(&server), &req, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(
        server.chat_requests()[0].response_format,
        Some(json!({"type": "json_object"}))
    );
}

#[tokio::test]
async fn bearer_key_from_default_headers_is_sent() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.set_api_key(Some("sk-local-123"));
    let cfg = cfg(&server);
    // Without the key: 401 with the server's message.
    let e = call(&http(), &server, &cfg, &describe(true), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ModelError::Http {
            status: 401,
            message: "Unauthorized".into()
        }
    );
    let client = http_with_key("sk-local-123");
    let r = call(&client, &server, &cfg, &describe(true), &mut Vec::new())
        .await
        .unwrap();
    assert!(!r.content.is_empty());
    let last = server.chat_requests().pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer sk-local-123"));
    let models = openai::list_models(&client, &server.url()).await.unwrap();
    assert_eq!(models, [MODEL]);
    assert!(matches!(
        openai::list_models(&http(), &server.url()).await,
        Err(ModelError::Http { status: 401, .. })
    ));
}

#[tokio::test]
async fn list_models_reads_ids() {
    let server = OpenAiTestServer::start(&[MODEL, "Qwen/Qwen2.5-VL-7B-Instruct"]).await;
    let models = openai::list_models(&http(), &server.url()).await.unwrap();
    assert_eq!(models, [MODEL, "Qwen/Qwen2.5-VL-7B-Instruct"]);
    // A base URL written with `/v1/` works too.
    let with_v1 = format!("{}/v1/", server.url());
    assert_eq!(
        openai::list_models(&http(), &with_v1).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    let server = OpenAiTestServer::start(&["other"]).await;
    let e = call(
        &http(),
        &server,
        &cfg(&server),
        &describe(true),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        ModelError::ModelNotFound {
            model: MODEL.into(),
            url: server.url()
        }
    );
}

#[tokio::test]
async fn error_event_is_server_error() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::error_event("A ca", "CUDA out of memory"));
    let mut tokens = Vec::new();
    let e = call(
        &http(),
        &server,
        &cfg(&server),
        &describe(true),
        &mut tokens,
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        ModelError::Server {
            message: "CUDA out of memory".into()
        }
    );
    assert_eq!(tokens.concat(), "A ca");
    assert!(e.is_transient());
    // Not streaming: the 500 with the error object.
    server.push_reply(Reply::error_event("", "CUDA out of memory"));
    let e = call(
        &http(),
        &server,
        &cfg(&server),
        &describe(false),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        ModelError::Http {
            status: 500,
            message: "CUDA out of memory".into()
        }
    );
}

#[tokio::test]
async fn dropped_stream_is_incomplete() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::drop_mid_stream("A person at"));
    let e = call(
        &http(),
        &server,
        &cfg(&server),
        &describe(true),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e, ModelError::Incomplete { received_chars: 11 });
    server.push_reply(Reply::drop_mid_stream("A person at"));
    let e = call(
        &http(),
        &server,
        &cfg(&server),
        &describe(false),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ModelError::Incomplete { .. }), "{e:?}");
}

#[tokio::test]
async fn malformed_event_is_malformed() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::malformed("A"));
    let e = call(
        &http(),
        &server,
        &cfg(&server),
        &describe(true),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ModelError::Malformed { .. }), "{e:?}");
}

#[tokio::test]
async fn hang_ends_at_the_callers_timeout() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::Hang);
    let cfg = HostConfig {
        timeout_secs: 1,
        ..cfg(&server)
    };
    let started = std::time::Instant::now();
    let e = call(&http(), &server, &cfg, &describe(true), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e, ModelError::Timeout { secs: 1 });
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(950) && took < Duration::from_secs(3));
}

#[tokio::test]
async fn long_reply_is_cut_at_the_cap() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::text("é".repeat(3000)).token_chars(100));
    let mut tokens = Vec::new();
    let r = openai::chat(
        &http(),
        &server.url(),
        &cfg(&server),
        &describe(true),
        &mut |t: &str| tokens.push(t.to_string()),
        2048,
    )
    .await
    .unwrap();
    assert!(r.truncated);
    assert!(r.content.ends_with("\n[reply cut at 2 KiB]"));
    assert_eq!(tokens.concat().len(), 2048);
}

#[tokio::test]
async fn refused_connection_is_refused() {
    let server = OpenAiTestServer::start(&[MODEL]).await;
    server.set_keep_alive(false);
    let cfg = cfg(&server);
    server.stop_listening();
    let e = call(&http(), &server, &cfg, &describe(true), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e, ModelError::Refused { url: server.url() });
}
