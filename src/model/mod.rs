//! Talking to model servers: the `ModelClient` (`client.rs`) over Ollama's wire format
//! (`ollama.rs`) or the OpenAI-compatible one (`openai/`), the request and reply they
//! share (`request.rs`), the stream plumbing under both (`stream.rs`), load state and errors;
//! who may call a model next (`scheduler.rs`) and how long to wait after a failure (`backoff.rs`,
//! also used by the camera reopen and the MQTT reconnect).

pub mod backoff;
pub mod client;
pub mod error;
pub mod load;
pub mod ollama;
pub mod openai;
pub mod request;
pub mod scheduler;
pub mod stream;

pub use client::ModelClient;
pub use error::ModelError;
pub use request::{ChatReply, ChatRequest, Sampling};
