//! Self-test of the fake Ollama server, with reqwest directly (not the project's client), so
//! the wire format other integration tests rely on is pinned here.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::ollama_server::{
    encode_image, huge_content, split_tokens, OllamaTestServer, Reply, DEFAULT_REPLY_TEXT,
};

const MODEL: &str = "gemma4:e2b";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

async fn post_chat(server: &OllamaTestServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/api/chat", server.url()))
        .json(&body)
        .send()
        .await
        .expect("send chat")
}

fn chat_body(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "Describe the frame." }] })
}

/// Parse an NDJSON body into objects, asserting every line is JSON.
fn ndjson_lines(body: &str) -> Vec<Value> {
    assert!(body.ends_with('\n'), "NDJSON body must end with a newline");
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
        .collect()
}

fn concat_field(lines: &[Value], field: &str) -> String {
    lines
        .iter()
        .filter_map(|l| l["message"][field].as_str())
        .collect()
}

fn assert_done_fields(last: &Value) {
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ] {
        assert!(last[k].as_u64().is_some_and(|n| n > 0), "{k} in {last}");
    }
}

#[tokio::test]
async fn streams_default_reply_as_ndjson_chunks_with_final_done() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    let resp = post_chat(&server, chat_body(MODEL)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");

    // Every NDJSON line arrives as its own HTTP chunk.
    let mut items = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(item) = stream.next().await {
        items.push(item.expect("stream item"));
    }
    let body: Vec<u8> = items.iter().flatten().copied().collect();
    let lines = ndjson_lines(std::str::from_utf8(&body).unwrap());
    let expected_tokens = split_tokens(DEFAULT_REPLY_TEXT, 4);
    assert_eq!(lines.len(), expected_tokens.len() + 1);
    assert!(
        items.len() >= 2,
        "expected several chunks, got {}",
        items.len()
    );

    let (last, chunks) = lines.split_last().unwrap();
    for (chunk, tok) in chunks.iter().zip(&expected_tokens) {
        assert_eq!(chunk["model"], MODEL);
        assert_eq!(chunk["done"], false);
        assert_eq!(chunk["message"]["role"], "assistant");
        assert_eq!(chunk["message"]["content"], tok.as_str());
        assert!(chunk["message"].get("thinking").is_none());
        let created = chunk["created_at"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(created).expect("RFC3339 created_at");
    }
    assert_eq!(concat_field(&lines, "content"), DEFAULT_REPLY_TEXT);
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["model"], MODEL);
    assert_done_fields(last);
}

#[tokio::test]
async fn stream_false_returns_one_json_object() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::json(&json!({"verdict": "ok", "note": "a<b & c>d"})));
    let mut body = chat_body(MODEL);
    body["stream"] = json!(false);
    let resp = post_chat(&server, body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let text = resp.text().await.unwrap();
    assert_eq!(text.lines().count(), 1);
    // Go's encoding/json escapes HTML characters.
    assert!(
        text.contains("\\u003c") && text.contains("\\u0026"),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_done_fields(&v);
    let content: Value = serde_json::from_str(v["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"verdict": "ok", "note": "a<b & c>d"}));
    assert!(!server.chat_requests()[0].stream);
}

#[tokio::test]
async fn thinking_streams_first_by_default_and_not_with_think_false() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    let reply = Reply::with_thinking("It is a cat.", "Let me look closely.");
    server.push_reply(reply.clone());
    server.push_reply(reply.clone());
    server.push_reply(reply);

    let text = post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    let lines = ndjson_lines(&text);
    assert_eq!(concat_field(&lines, "thinking"), "Let me look closely.");
    assert_eq!(concat_field(&lines, "content"), "It is a cat.");
    let first_content = lines
        .iter()
        .position(|l| l["message"]["content"] != "")
        .unwrap();
    let last_thinking = lines
        .iter()
        .rposition(|l| l["message"].get("thinking").is_some())
        .unwrap();
    assert!(last_thinking < first_content, "thinking must come first");
    assert_eq!(lines[0]["message"]["content"], "");

    let mut body = chat_body(MODEL);
    body["think"] = json!(false);
    let text = post_chat(&server, body.clone()).await.text().await.unwrap();
    assert!(!text.contains("thinking"), "{text}");
    assert_eq!(
        concat_field(&ndjson_lines(&text), "content"),
        "It is a cat."
    );

    body["stream"] = json!(false);
    body.as_object_mut().unwrap().remove("think");
    let v: Value = post_chat(&server, body).await.json().await.unwrap();
    assert_eq!(v["message"]["thinking"], "Let me look closely.");
    assert_eq!(v["message"]["content"], "It is a cat.");

    let chats = server.chat_requests();
    assert_eq!(chats[0].think, None);
    assert_eq!(chats[1].think, Some(false));
}

#[tokio::test]
async fn unknown_model_is_404_with_ollama_error_body() {
    let server = OllamaTestServer::start(&["gemma3"]).await;
    let resp = post_chat(&server, chat_body("nope:1b")).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"error":"model 'nope:1b' not found"}"#
    );

    server.set_legacy_not_found(true);
    let resp = post_chat(&server, chat_body("nope:1b")).await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"],
        "model \"nope:1b\" not found, try pulling it first"
    );

    // `gemma3` and `gemma3:latest` are the same model; set_models changes the list.
    assert_eq!(
        post_chat(&server, chat_body("gemma3:latest"))
            .await
            .status(),
        200
    );
    server.set_models(&["other"]);
    assert_eq!(post_chat(&server, chat_body("gemma3")).await.status(), 404);
    // A rejected request does not consume a scripted reply.
    server.push_reply(Reply::text("kept"));
    assert_eq!(post_chat(&server, chat_body("gemma3")).await.status(), 404);
    assert_eq!(server.pending_replies(), 1);
}

#[tokio::test]
async fn tags_version_root_and_unknown_path() {
    let server = OllamaTestServer::start(&[MODEL, "gemma4:26b", "llava"]).await;
    let c = client();
    let tags: Value = c
        .get(format!("{}/api/tags", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = tags["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, [MODEL, "gemma4:26b", "llava:latest"]);
    for m in models {
        assert_eq!(m["model"], m["name"]);
        assert!(m["size"].as_u64().unwrap() > 0);
        assert_eq!(m["digest"].as_str().unwrap().len(), 64);
        chrono::DateTime::parse_from_rfc3339(m["modified_at"].as_str().unwrap()).unwrap();
        assert_eq!(m["details"]["format"], "gguf");
        assert_eq!(m["details"]["family"], "gemma3");
        assert_eq!(m["details"]["quantization_level"], "Q4_K_M");
        assert!(m["details"]["parameter_size"].is_string());
    }

    let version = c
        .get(format!("{}/api/version", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(version, r#"{"version":"0.12.11"}"#);

    let root = c.get(server.url()).send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.text().await.unwrap(), "Ollama is running");

    let missing = c
        .get(format!("{}/api/nope?x=1", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "404 page not found");
    // GET on the chat route is not a route either.
    let get_chat = c
        .get(format!("{}/api/chat", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(get_chat.status(), 404);

    let reqs = server.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/tags",
            "/api/version",
            "/",
            "/api/nope?x=1",
            "/api/chat"
        ]
    );
    assert!(server.chat_requests().is_empty());
}

#[tokio::test]
async fn split_utf8_breaks_chunks_inside_multibyte_characters() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    let text = "Café at 21°C 🌡️ — naïve 日本";
    server.push_reply(Reply::full(text).token_chars(3).split_utf8());
    let resp = post_chat(&server, chat_body(MODEL)).await;
    let mut items = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(item) = stream.next().await {
        items.push(item.expect("stream item"));
    }
    let broken = items
        .iter()
        .filter(|i| std::str::from_utf8(i).is_err())
        .count();
    assert!(
        broken >= 3,
        "only {broken} of {} items break a character",
        items.len()
    );
    let body: Vec<u8> = items.iter().flatten().copied().collect();
    let lines = ndjson_lines(std::str::from_utf8(&body).expect("concatenation is UTF-8"));
    assert_eq!(concat_field(&lines, "content"), text);
    assert_done_fields(lines.last().unwrap());
}

#[tokio::test]
async fn stop_listening_refuses_connections_and_resume_serves_same_port() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    let port = server.port();
    let c = client();
    let url = format!("{}/api/version", server.url());
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);

    server.stop_listening();
    assert!(!server.is_listening());
    // A fresh connection is refused.
    let err = client().get(&url).send().await.expect_err("server is down");
    assert!(err.is_connect(), "expected a connect error, got {err:?}");
    // The old client still holds a pooled keep-alive connection that the server closed: like
    // with a killed Ollama, its next request fails (connect error, or hyper's IncompleteMessage
    // if the client had not noticed the close yet), and the one after is refused.
    let err = c.get(&url).send().await.expect_err("server is down");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let err = c.get(&url).send().await.expect_err("server is down");
    assert!(err.is_connect(), "expected a connect error, got {err:?}");

    server.resume_listening();
    assert_eq!(server.port(), port);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    let resp = post_chat(&server, chat_body(MODEL)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("\"done\":true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keep_alive_stop_is_always_a_connect_error() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    server.set_keep_alive(false);
    let c = client();
    let url = format!("{}/", server.url());
    for _ in 0..3 {
        assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
        server.stop_listening();
        let err = c.get(&url).send().await.expect_err("server is down");
        assert!(err.is_connect(), "{err:?}");
        server.resume_listening();
    }
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
}

#[test]
fn sync_server_refuses_after_stop_and_drop() {
    let server = OllamaTestServer::start_in_thread(&[MODEL]);
    let addr = ("127.0.0.1", server.port());
    assert!(std::net::TcpStream::connect(addr).is_ok());
    server.stop_listening();
    let err = std::net::TcpStream::connect(addr).expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    server.resume_listening();
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(server);
    let err = std::net::TcpStream::connect(addr).expect_err("refused after drop");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn hang_makes_client_timeout_fire() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    server.push_reply(Reply::Hang);
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = c
        .post(format!("{}/api/chat", server.url()))
        .json(&chat_body(MODEL))
        .send()
        .await
        .expect_err("must time out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The request was still recorded, and the server keeps serving others.
    assert_eq!(server.chat_requests().len(), 1);
    assert_eq!(post_chat(&server, chat_body(MODEL)).await.status(), 200);
}

#[tokio::test]
async fn dropping_the_server_ends_hanging_requests() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    server.set_handler(|_| Reply::Hang);
    let url = format!("{}/api/chat", server.url());
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&chat_body(MODEL))
            .send()
            .await
    });
    assert!(server.wait_for_chats(1, Duration::from_secs(2)).await);
    drop(server);
    let result = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .expect("request must end once the server is dropped")
        .unwrap();
    assert!(result.is_err());
}

#[tokio::test]
async fn records_requests_with_headers_and_decoded_images() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    let image: Vec<u8> = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 1, 2, 250];
    let body = json!({
        "model": MODEL,
        "messages": [
            { "role": "system", "content": "You watch a camera." },
            { "role": "user", "content": "What is here?", "images": [encode_image(&image)] }
        ],
        "stream": false,
        "format": { "type": "object" },
        "options": { "temperature": 0.1 },
        "keep_alive": "10m"
    });
    let resp = client()
        .post(format!("{}/api/chat", server.url()))
        .header("X-Test", "yes")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(server.wait_for_chats(1, Duration::from_secs(1)).await);

    let chats = server.chat_requests();
    assert_eq!(chats.len(), 1);
    let chat = &chats[0];
    assert_eq!(chat.model, MODEL);
    assert_eq!(chat.messages.len(), 2);
    assert_eq!(chat.first_content("system"), Some("You watch a camera."));
    assert_eq!(chat.messages[1].role, "user");
    assert_eq!(chat.messages[1].decoded_images(), vec![image.clone()]);
    assert_eq!(chat.all_images(), vec![image]);
    assert_eq!(chat.format, Some(json!({ "type": "object" })));
    assert_eq!(chat.options, Some(json!({ "temperature": 0.1 })));
    assert_eq!(chat.raw["keep_alive"], "10m");
    assert_eq!(chat.header("x-test"), Some("yes"));
    assert_eq!(chat.header("CONTENT-TYPE"), Some("application/json"));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/api/chat");
    assert_eq!(reqs[0].body_json().unwrap(), body);
}

#[tokio::test]
async fn invalid_images_get_ollamas_base64_error() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    for (image, byte) in [("data:image/jpeg;base64,/9j/4AAQ", 4), ("abc!", 3)] {
        let body = json!({
            "model": MODEL,
            "messages": [{ "role": "user", "content": "x", "images": [image] }]
        });
        let resp = post_chat(&server, body).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.text().await.unwrap(),
            format!(r#"{{"error":"illegal base64 data at input byte {byte}"}}"#)
        );
    }
    // Image errors come before the model check, like Ollama's JSON binding.
    let body = json!({
        "model": "missing",
        "messages": [{ "role": "user", "content": "x", "images": ["data:,"] }]
    });
    assert_eq!(post_chat(&server, body).await.status(), 400);
}

#[tokio::test]
async fn queue_then_handler_then_default() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    let ask = |s: &OllamaTestServer| {
        let url = format!("{}/api/chat", s.url());
        async move {
            let mut body = chat_body(MODEL);
            body["stream"] = json!(false);
            let v: Value = client()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["message"]["content"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(ask(&server).await, DEFAULT_REPLY_TEXT);
    server.set_handler(|req| Reply::text(format!("echo {}", req.messages.len())));
    server.push_reply(Reply::text("first"));
    server.push_reply(Reply::text("second"));
    assert_eq!(ask(&server).await, "first");
    assert_eq!(ask(&server).await, "second");
    assert_eq!(ask(&server).await, "echo 1");
    server.clear_handler();
    assert_eq!(ask(&server).await, DEFAULT_REPLY_TEXT);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    let c = client();
    for _ in 0..3 {
        let text = c
            .post(format!("{}/api/chat", server.url()))
            .json(&chat_body(MODEL))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("\"done\":true"));
    }
    assert_eq!(server.accepted_connections(), 1);

    server.set_keep_alive(false);
    for _ in 0..2 {
        let resp = c.get(server.url()).send().await.unwrap();
        assert_eq!(resp.headers()["connection"], "close");
        resp.text().await.unwrap();
    }
    // The first of these still rode the pooled connection, which is closed after it.
    assert_eq!(server.accepted_connections(), 2);
    for _ in 0..2 {
        c.get(server.url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    assert_eq!(server.accepted_connections(), 4);
}

#[tokio::test]
async fn fault_replies() {
    let server = OllamaTestServer::start(&[MODEL]).await;

    // Status
    server.push_reply(Reply::error(500, "boom"));
    let resp = post_chat(&server, chat_body(MODEL)).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), r#"{"error":"boom"}"#);
    server.push_reply(Reply::status(503, "busy"));
    assert_eq!(post_chat(&server, chat_body(MODEL)).await.status(), 503);

    // DropMidStream: some chunks arrive, then the body fails.
    server.push_reply(Reply::drop_mid_stream("partial answer"));
    let resp = post_chat(&server, chat_body(MODEL)).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "body must end with an error");
    let text = String::from_utf8(got).unwrap();
    assert!(!text.contains("\"done\":true"));
    assert_eq!(
        concat_field(&ndjson_lines(&text), "content"),
        "partial answer"
    );

    // ErrorLine: clean end, last line is the error.
    server.push_reply(Reply::error_line("so far", "model runner crashed"));
    let text = post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    let lines = ndjson_lines(&text);
    assert_eq!(
        lines.last().unwrap(),
        &json!({"error": "model runner crashed"})
    );
    assert_eq!(concat_field(&lines, "content"), "so far");

    // Malformed: one non-JSON line, then the done line.
    server.push_reply(Reply::malformed("ok"));
    let text = post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .collect();
    assert_eq!(bad, [format!(r#"{{"model":"{MODEL}","mess"#)]);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_done_fields(&last);

    // Huge
    server.push_reply(Reply::Huge { bytes: 100_000 });
    let text = post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    let lines = ndjson_lines(&text);
    assert!(lines.len() > 10);
    assert_eq!(concat_field(&lines, "content"), huge_content(100_000));

    // RawChunks: exact bytes, a line split across chunks.
    server.push_reply(Reply::RawChunks(vec![
        b"{\"a\":".to_vec(),
        b"1}\n{\"b\"".to_vec(),
        b":2}\n".to_vec(),
    ]));
    let resp = post_chat(&server, chat_body(MODEL)).await;
    let mut items = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(item) = stream.next().await {
        items.push(item.unwrap().to_vec());
    }
    assert_eq!(items.concat(), b"{\"a\":1}\n{\"b\":2}\n");
    assert!(items.len() >= 3, "{items:?}");

    // Delayed
    server.push_reply(Reply::text("late").after(Duration::from_millis(150)));
    let started = std::time::Instant::now();
    let text = post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(concat_field(&ndjson_lines(&text), "content"), "late");
}

#[test]
fn raw_socket_keep_alive_and_chunked_request_body() {
    let server = OllamaTestServer::start_in_thread(&[MODEL]);
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    let body = chat_body(MODEL).to_string();
    let (a, b) = body.split_at(10);
    let req = format!(
        "POST /api/chat HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n\
         GET /api/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        a.len(),
        b.len()
    );
    sock.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Transfer-Encoding: chunked\r\n"));
    assert!(out.contains("\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with(r#"{"version":"0.12.11"}"#), "{out}");

    assert!(server.wait_for_chats_blocking(1, Duration::from_secs(2)));
    assert_eq!(server.chat_requests()[0].model, MODEL);
    assert_eq!(server.requests()[0].body, body.as_bytes());
    assert_eq!(server.accepted_connections(), 1);
}

#[test]
fn wait_for_chats_blocking_times_out_and_succeeds() {
    let server = OllamaTestServer::start_in_thread(&[MODEL]);
    assert!(!server.wait_for_chats_blocking(1, Duration::from_millis(50)));
    let url = format!("{}/api/chat", server.url());
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            client()
                .post(url)
                .json(&chat_body(MODEL))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    });
    assert!(server.wait_for_chats_blocking(1, Duration::from_secs(5)));
    assert!(t.join().unwrap().contains("\"done\":true"));
}

// ---------------------------------------------------------------------------------------------
// Model residency: loads, keep_alive, /api/ps
// ---------------------------------------------------------------------------------------------

async fn ps_names(server: &OllamaTestServer) -> Vec<String> {
    let v: Value = client()
        .get(format!("{}/api/ps", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m["expires_at"].as_str().is_some(), "{m}");
            m["name"].as_str().unwrap().to_string()
        })
        .collect()
}

fn with_keep_alive(mut body: Value, ka: Value) -> Value {
    body["keep_alive"] = ka;
    body
}

#[tokio::test]
async fn a_cold_model_costs_the_load_time_once_and_loads_are_counted() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    server.set_load_time(Duration::from_millis(300));
    assert!(ps_names(&server).await.is_empty());
    let began = std::time::Instant::now();
    let r = post_chat(
        &server,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "a"}], "stream": false}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        began.elapsed() >= Duration::from_millis(300),
        "the load came first"
    );
    post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(server.load_count(MODEL), 1);
    let served = server.served();
    assert_eq!(served.len(), 2);
    assert!(served[0].cold && !served[1].cold, "{served:?}");
    assert_eq!(ps_names(&server).await, vec![MODEL.to_string()]);
    // Requests that arrive during a load wait for that same load.
    assert!(server.evict(MODEL));
    let (a, b) = tokio::join!(
        post_chat(&server, chat_body(MODEL)),
        post_chat(&server, chat_body(MODEL))
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert_eq!(server.load_count(MODEL), 2);
    assert!(server.served()[2..].iter().all(|s| s.cold));
}

#[tokio::test]
async fn an_empty_chat_loads_the_model_and_is_not_a_chat() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    server.set_load_time(Duration::from_millis(200));
    let r = post_chat(
        &server,
        json!({"model": MODEL, "messages": [], "keep_alive": "10m"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["done_reason"], "load");
    assert_eq!(v["done"], true);
    assert_eq!(server.chat_count(), 0, "a load is not a chat");
    assert_eq!(server.load_requests().len(), 1);
    assert!(server.loads()[0].by_load_request);
    assert_eq!(ps_names(&server).await, vec![MODEL.to_string()]);
    // The chat after it finds the model loaded.
    post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(server.load_count(MODEL), 1);
    assert!(!server.served()[1].cold);
    // keep_alive 0 unloads.
    let v: Value = post_chat(
        &server,
        json!({"model": MODEL, "messages": [], "keep_alive": 0}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["done_reason"], "unload");
    assert!(ps_names(&server).await.is_empty());
    // Unknown model: 404 as for a chat; a keep_alive Go cannot parse: 400.
    let r = post_chat(&server, json!({"model": "nope:1b", "messages": []})).await;
    assert_eq!(r.status(), 404);
    let r = post_chat(
        &server,
        json!({"model": MODEL, "messages": [], "keep_alive": "5"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_chat(&server, with_keep_alive(chat_body(MODEL), json!("5 min"))).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn keep_alive_runs_from_the_end_of_the_last_request() {
    let server = OllamaTestServer::start(&[MODEL]).await;
    // A request in progress holds the model however short its keep_alive.
    server.push_reply(Reply::Hang);
    let c = client();
    let url = format!("{}/api/chat", server.url());
    let body = with_keep_alive(chat_body(MODEL), json!("200ms"));
    let hanging = tokio::spawn(async move { c.post(url).json(&body).send().await });
    assert!(server.wait_for_chats(1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        ps_names(&server).await,
        vec![MODEL.to_string()],
        "held while in use"
    );
    hanging.abort();
    let _ = hanging.await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        ps_names(&server).await.is_empty(),
        "unloaded 200 ms after the request ended"
    );
    // Seconds as a number; 0 = unload right after; negative = never.
    post_chat(&server, with_keep_alive(chat_body(MODEL), json!(0)))
        .await
        .text()
        .await
        .unwrap();
    assert!(ps_names(&server).await.is_empty());
    post_chat(&server, with_keep_alive(chat_body(MODEL), json!(-1)))
        .await
        .text()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ps_names(&server).await, vec![MODEL.to_string()]);
    // No keep_alive: the server default.
    server.set_default_keep_alive(support::ollama_server::Session::For(Duration::from_millis(
        100,
    )));
    post_chat(&server, chat_body(MODEL))
        .await
        .text()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ps_names(&server).await.is_empty());
    assert_eq!(server.load_count(MODEL), 3);
    let sent: Vec<Option<Value>> = server.served().into_iter().map(|s| s.keep_alive).collect();
    assert_eq!(
        sent,
        vec![Some(json!("200ms")), Some(json!(0)), Some(json!(-1)), None]
    );
}
