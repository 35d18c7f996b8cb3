//! What can go wrong talking to a model server, each with a hint a user can act on.

use crate::event::Role;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// Nothing listens there (connection refused).
    Refused { url: String },
    /// DNS failure, unreachable host, TLS failure and the like.
    Connect { url: String, message: String },
    /// The whole call took longer than `timeout_secs`.
    Timeout { secs: u64 },
    /// HTTP 404 for the model: not pulled on that server.
    ModelNotFound { model: String, url: String },
    /// An OpenAI-compatible server does not serve that model name.
    NotServed { model: String, url: String },
    /// Any other HTTP error status, with the server's message.
    Http { status: u16, message: String },
    /// An `{"error": …}` line inside a 200 stream (model runner failures).
    Server { message: String },
    /// The stream ended without `done: true`: the answer is incomplete.
    Incomplete { received_chars: usize },
    /// A line that is not the JSON Ollama sends.
    Malformed { message: String },
    /// The request could not be built (bad header value and such).
    Request { message: String },
    /// The model answered that it cannot take images (a text-only model).
    NoVision { model: String, message: String },
    /// `kind = "ollama"` points at a server that speaks the OpenAI-compatible API.
    WrongProtocol { url: String },
}

/// An HTTP 500/400 whose message says the model takes no images (llama.cpp: `image input
/// is not supported`; Ollama: `… does not support images`).
pub fn says_no_vision(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("image") || m.contains("vision") || m.contains("multimodal"))
        && (m.contains("not supported")
            || m.contains("does not support")
            || m.contains("unsupported"))
}

/// `reason — hint`, without the hint when the reason already says it.
pub fn with_hint(reason: &str, hint: &str) -> String {
    if hint.is_empty() || reason.contains(hint) {
        reason.to_string()
    } else {
        format!("{reason} — {hint}")
    }
}

impl ModelError {
    /// The server says the model takes no image input (found before any call).
    pub fn text_only_model(model: &str) -> ModelError {
        ModelError::NoVision {
            model: model.to_string(),
            message: "the server lists no image input for it".into(),
        }
    }

    /// Worth trying again soon (for the teacher): server overload or a passing failure.
    pub fn is_transient(&self) -> bool {
        match self {
            ModelError::Http { status, message } => {
                matches!(status, 500 | 502 | 503 | 504 | 429) && !says_no_vision(message)
            }
            ModelError::Server { .. } | ModelError::Incomplete { .. } => true,
            _ => false,
        }
    }

    /// Trying again will fail the same way until someone changes the config or the
    /// server: back off (capped) and say what to fix, instead of retrying every frame.
    pub fn is_permanent(&self) -> bool {
        match self {
            ModelError::ModelNotFound { .. }
            | ModelError::NotServed { .. }
            | ModelError::NoVision { .. }
            | ModelError::WrongProtocol { .. }
            | ModelError::Request { .. } => true,
            ModelError::Http { status, message } => {
                matches!(status, 400 | 401 | 403 | 404 | 405 | 413 | 415 | 422 | 501)
                    || says_no_vision(message)
            }
            _ => false,
        }
    }

    /// The server answers but has no such model: no point retrying soon.
    pub fn is_missing_model(&self) -> bool {
        matches!(
            self,
            ModelError::ModelNotFound { .. } | ModelError::NotServed { .. }
        )
    }

    /// The server cannot be reached at all (health goes offline).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ModelError::Refused { .. } | ModelError::Connect { .. }
        )
    }

    /// What to do about it, for the status bar and `check`.
    pub fn hint(&self, role: Role, model: &str) -> String {
        match self {
            ModelError::Refused { .. } | ModelError::Connect { .. } => match role {
                Role::Student => {
                    "start it: `ollama serve`, then `ollama pull ".to_string() + model + "`"
                }
                Role::Teacher => "on the teacher machine run Ollama with OLLAMA_HOST=0.0.0.0 \
                     (it listens on 127.0.0.1 only by default) and check the host in config.toml"
                    .to_string(),
            },
            ModelError::ModelNotFound { model, .. } => format!("run: ollama pull {model}"),
            ModelError::NotServed { .. } => {
                "check the model name: GET /v1/models on that server lists what it serves".into()
            }
            ModelError::Timeout { .. } => {
                "the model is slow or stuck; raise timeout_secs or use a smaller model".into()
            }
            ModelError::Http { status: 401, .. } | ModelError::Http { status: 403, .. } => {
                "check api_key / headers for this host in config.toml".into()
            }
            ModelError::NoVision { .. } => format!(
                "use a vision model as {role}.model (Ollama: `ollama show {model}` lists \
                 `vision` under Capabilities), or set {role}.text_only = true to try the \
                 pipeline without images"
            ),
            ModelError::WrongProtocol { .. } => {
                format!("set kind = \"openai\" under [{role}] in config.toml")
            }
            ModelError::Http {
                status: 400 | 422, ..
            } => "the server refused the request; check the model and its settings in config.toml"
                .into(),
            _ => String::new(),
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Refused { url } => write!(f, "connection refused ({url})"),
            ModelError::Connect { url, message } => write!(f, "cannot connect to {url}: {message}"),
            ModelError::Timeout { secs } => write!(f, "no complete answer within {secs} s"),
            ModelError::NotServed { model, url } => {
                write!(f, "model {model} is not served by {url}")
            }
            ModelError::ModelNotFound { model, url } => {
                write!(
                    f,
                    "model {model} not found on {url} — run: ollama pull {model}"
                )
            }
            ModelError::Http { status, message } => {
                if message.is_empty() {
                    write!(f, "HTTP {status}")
                } else {
                    write!(f, "HTTP {status}: {message}")
                }
            }
            ModelError::Server { message } => write!(f, "server error: {message}"),
            ModelError::Incomplete { received_chars } => write!(
                f,
                "the stream ended before the answer was complete ({received_chars} chars received)"
            ),
            ModelError::Malformed { message } => write!(f, "malformed reply: {message}"),
            ModelError::Request { message } => write!(f, "bad request: {message}"),
            ModelError::NoVision { model, message } => {
                write!(f, "model {model} cannot take images ({message})")
            }
            ModelError::WrongProtocol { url } => {
                write!(f, "{url} speaks the OpenAI-compatible API, not Ollama's")
            }
        }
    }
}

impl std::error::Error for ModelError {}
