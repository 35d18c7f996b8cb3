//! What a frame costs a real multimodal server at each `max_side`: llama.cpp's server (the
//! real-model tier's `xllamacpp`) with the tiny random-weight Gemma 3 of
//! `tests/real_model/tiny_gemma3/`.
//!
//! ```text
//! cargo bench --bench image_cost [-- RUNS]      # default 5 calls per row, median
//! cargo bench --profile dev --bench image_cost  # no optimised build: prep not timed
//! ```
//!
//! For a 1920x1080 webcam frame (YUYV 4:2:2, the turbo path) and a 1920x1296 photo (JPEG
//! 4:2:0 q90 in, as a file), at each `max_side`: our prep time (decode, downscale, JPEG,
//! base64), the JPEG's size, the prompt tokens the server counts with the frame, and the
//! server's time for the image: its prompt time (image encode + prefill,
//! `timings.prompt_ms`) and the whole call (plus the upload and the image decode), each
//! minus the same short question without the image. Prompt caching is off so every call
//! encodes its image. First, the tokens of the student's real request with and without a
//! frame.

#[allow(dead_code)]
#[path = "../tests/support/real_server.rs"]
mod real_server;

use gemmaedge_tui::config::{FrameConfig, HostConfig, HostKind};
use gemmaedge_tui::frame::{prep, RawImage};
use gemmaedge_tui::model::openai::chat_body;
use gemmaedge_tui::model::ChatRequest;
use gemmaedge_tui::roles::student;
use serde_json::Value;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn webcam_frame(w: u32, h: u32) -> RawImage {
    let mut data = Vec::with_capacity((w * h * 2) as usize);
    for y in 0..h {
        for x in (0..w).step_by(2) {
            let luma = |x: u32| (16 + (x * 219 / w + y * 60 / h) % 220) as u8;
            let block = ((x / 80 + y / 60) % 2) as u8;
            data.extend_from_slice(&[luma(x), 90 + block * 70, luma(x + 1), 160 - block * 60]);
        }
    }
    RawImage::Yuyv {
        width: w,
        height: h,
        data: data.into(),
    }
}

fn photo_jpeg() -> RawImage {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(root.join("eval/images/motorcycle_left.png")).unwrap();
    let img = prep::decode_rgb(&bytes).unwrap();
    let big = image::imageops::resize(&img, 1920, 1296, image::imageops::FilterType::Triangle);
    RawImage::Encoded(prep::encode_jpeg(&big, 90).unwrap().into())
}

/// One call without prompt caching: (prompt tokens, server prompt ms, wall ms).
async fn call(http: &reqwest::Client, url: &str, mut body: Value) -> (u64, f64, f64) {
    body["cache_prompt"] = Value::Bool(false);
    let began = Instant::now();
    let v: Value = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wall = began.elapsed().as_secs_f64() * 1000.0;
    let tokens = v["usage"]["prompt_tokens"]
        .as_u64()
        .unwrap_or_else(|| panic!("{v}"));
    (tokens, v["timings"]["prompt_ms"].as_f64().unwrap(), wall)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let Some(tier) = real_server::tier() else {
        return;
    };
    let (model, mmproj) = real_server::tiny_gemma3();
    let server = real_server::start(&tier, &model, Some(&mmproj), "tinygemma3", 1, 1);
    let cfg = HostConfig {
        host: server.url.clone(),
        model: "tinygemma3".into(),
        kind: HostKind::Openai,
        max_tokens: 1,
        ..HostConfig::default()
    };
    let skill = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("skills/skill.txt"),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();

    // The student's own request: what the image adds to it.
    let sample = prep::prepare(&photo_jpeg(), &FrameConfig::default()).unwrap();
    let mut with = student::frame_request(&skill, sample.base64);
    with.stream = false;
    let mut without = with.clone();
    without.images.clear();
    let (t_with, _, _) = rt.block_on(call(&http, &server.url, chat_body(&cfg, &with)));
    let (t_without, _, _) = rt.block_on(call(&http, &server.url, chat_body(&cfg, &without)));
    assert_eq!(
        t_with - t_without,
        real_server::GEMMA3_IMAGE_TOKENS + real_server::GEMMA3_IMAGE_MARKERS
    );
    println!(
        "the student's request (skill, contract, task): {t_without} prompt tokens, \
         {t_with} with a frame"
    );
    // Timing with a short question, so the image is most of the prompt.
    let short = ChatRequest {
        user: "What is in this image?".into(),
        ..ChatRequest::default()
    };
    let base: Vec<_> = (0..runs)
        .map(|_| rt.block_on(call(&http, &server.url, chat_body(&cfg, &short))))
        .collect();
    let base_tokens = base[0].0;
    let base_prompt = median(base.iter().map(|r| r.1).collect());
    let base_wall = median(base.iter().map(|r| r.2).collect());
    println!(
        "a short question without an image: {base_tokens} prompt tokens, \
         server prompt {base_prompt:.1} ms, call {base_wall:.1} ms (median of {runs})"
    );
    println!("| frame | max_side | sent | JPEG | prep ms | prompt tokens (+image) | server prompt ms (+image) | call ms (+image) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, raw) in [
        ("webcam 1920x1080 YUYV", webcam_frame(1920, 1080)),
        ("photo 1920x1296 JPEG", photo_jpeg()),
    ] {
        for max_side in [256, 512, 768, 1024] {
            let fc = FrameConfig {
                max_side,
                ..FrameConfig::default()
            };
            let mut prep_ms = Vec::new();
            let mut frame = None;
            for _ in 0..runs {
                let t = Instant::now();
                frame = Some(prep::prepare(&raw, &fc).unwrap());
                prep_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let frame = frame.unwrap();
            let mut req = short.clone();
            req.images = vec![frame.base64.clone()];
            let rows: Vec<_> = (0..runs)
                .map(|_| rt.block_on(call(&http, &server.url, chat_body(&cfg, &req))))
                .collect();
            let tokens = rows[0].0;
            assert!(rows.iter().all(|r| r.0 == tokens));
            let prompt = median(rows.iter().map(|r| r.1).collect());
            let wall = median(rows.iter().map(|r| r.2).collect());
            println!(
                "| {name} | {max_side} | {}x{} | {:.1} KiB | {} | {tokens} (+{}) | {prompt:.1} (+{:.1}) | {wall:.1} (+{:.1}) |",
                frame.width,
                frame.height,
                frame.jpeg.len() as f64 / 1024.0,
                if cfg!(debug_assertions) {
                    "(debug)".to_string()
                } else {
                    format!("{:.1}", median(prep_ms))
                },
                tokens - base_tokens,
                prompt - base_prompt,
                wall - base_wall,
            );
        }
    }
}
