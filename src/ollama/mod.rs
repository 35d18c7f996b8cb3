//! Talking to Ollama: chat (streamed NDJSON), model list, version.

pub mod client;
pub mod error;
pub mod load;
pub mod openai;

pub use client::{ChatReply, ChatRequest, ModelClient, Sampling};
pub use error::ModelError;
