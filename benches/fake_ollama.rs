//! A fake Ollama in its own process, so `benches/whole_program.sh` can measure the
//! engine's CPU without the server's. Not a benchmark.
//!
//! ```text
//! cargo bench --bench fake_ollama -- serve [DELAY_MS]
//! ```
//!
//! Serves `tests/support/ollama_server.rs` (the real wire format: streamed NDJSON,
//! `/api/tags` listing `gemma4:e2b` and `gemma4:26b`) on 127.0.0.1 at an ephemeral port,
//! prints `PORT=<n>`, and runs until killed. Every `/api/chat` gets the server's default
//! answer (`A person at a desk.` / `CONFIDENCE: 0.9`, streamed 4 characters per chunk)
//! after DELAY_MS milliseconds (default 0). Requests are not recorded, so memory stays flat.

#[path = "../tests/support/ollama_server.rs"]
mod ollama_server;

use ollama_server::{OllamaTestServer, Reply, DEFAULT_REPLY_TEXT};
use std::io::Write;
use std::time::Duration;

fn main() {
    // `cargo bench` passes `--bench` (and maybe criterion options): only `serve` serves.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) != Some("serve") {
        println!("fake_ollama: usage: serve [DELAY_MS] (see benches/whole_program.sh)");
        return;
    }
    let delay = match args.get(1).map(|d| d.parse::<u64>()) {
        None => Duration::ZERO,
        Some(Ok(ms)) => Duration::from_millis(ms),
        Some(Err(_)) => {
            eprintln!("fake_ollama: DELAY_MS must be a whole number of milliseconds");
            std::process::exit(2);
        }
    };
    let server = OllamaTestServer::start_in_thread(&["gemma4:e2b", "gemma4:26b"]);
    server.set_recording(false);
    if !delay.is_zero() {
        server.set_handler(move |_| Reply::text(DEFAULT_REPLY_TEXT).after(delay));
    }
    println!("PORT={}", server.port());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
