//! `ModelClient`: one model on one server, whichever protocol the host speaks. It holds
//! the HTTP client (headers, connect timeout), bounds every call in time, stands a note in
//! for the images of a `text_only` host, tracks the model's load state on Ollama, and hands
//! the wire work to `ollama` or `openai` (which never import it back).

use super::error::ModelError;
use super::load::{ps_lists, LoadTracker};
use super::request::{ChatReply, ChatRequest, MAX_REPLY_BYTES};
use super::stream::within;
use super::{ollama, openai};
use crate::config::{HostConfig, HostKind};
use crate::event::Role;
use crate::model::scheduler::{Priority, Scheduler};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to wait for a TCP connection before calling a host unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A streamed answer cut by the whole-call timeout keeps the text that did arrive, marked
/// as cut (`timed_out`); with nothing arrived it stays a timeout.
fn keep_what_arrived(
    result: Result<ChatReply, ModelError>,
    arrived: String,
) -> Result<ChatReply, ModelError> {
    match result {
        Err(ModelError::Timeout { secs }) if !arrived.trim().is_empty() => Ok(ChatReply {
            content: format!("{arrived}\n{}", timeout_mark(secs)),
            timed_out: Some(secs),
            ..ChatReply::default()
        }),
        other => other,
    }
}

/// The line that ends an answer cut by the timeout.
pub fn timeout_mark(secs: u64) -> String {
    format!("[answer cut by the {secs} s timeout]")
}

/// A client for one model on one server.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    /// Base URL without a trailing slash.
    base: String,
    config: HostConfig,
    role: Role,
    /// The model's load state on an Ollama server, shared by the clones of this client.
    load: Arc<LoadTracker>,
    /// The scheduler every chat call of this client waits for, and at what priority
    /// (live monitoring first; eval and upskill fill the gaps). None: no waiting.
    gate: Option<(Scheduler, Priority)>,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No headers here: they may hold secrets.
        write!(
            f,
            "ModelClient({} {} @ {})",
            self.role, self.config.model, self.base
        )
    }
}

impl ModelClient {
    pub fn new(config: &HostConfig, role: Role) -> Result<Self, ModelError> {
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| ModelError::Request {
                message: format!("{role}.headers: invalid header name {k:?}"),
            })?;
            let mut value = HeaderValue::from_str(v).map_err(|_| ModelError::Request {
                message: format!("{role}.headers: invalid value for header {k:?}"),
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(key) = config.api_key.as_deref().filter(|k| !k.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                ModelError::Request {
                    message: format!("{role}.api_key holds characters not allowed in a header"),
                }
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ModelError::Request {
                message: e.to_string(),
            })?;
        Ok(ModelClient {
            http,
            base: config.host.trim_end_matches('/').to_string(),
            config: config.clone(),
            role,
            load: Arc::new(LoadTracker::default()),
            gate: None,
        })
    }

    /// This client, with its chat calls taking turns on `scheduler` at `priority`.
    pub fn with_gate(mut self, scheduler: Scheduler, priority: Priority) -> Self {
        self.gate = Some((scheduler, priority));
        self
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    pub fn host(&self) -> &str {
        &self.base
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// What this client knows about its model's load state (Ollama hosts; on an
    /// OpenAI-compatible host it stays `Unknown`).
    pub fn load_state(&self) -> &LoadTracker {
        &self.load
    }

    /// Send one chat call; `on_token` sees each piece of content as it arrives.
    /// The whole call, connect to `done`, is bounded by `timeout_secs`.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        on_token: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ChatReply, ModelError> {
        let stripped;
        let req = if self.config.text_only && !req.images.is_empty() {
            stripped = req.without_images();
            &stripped
        } else {
            req
        };
        // Our turn first; the time waiting for it is not the server's (no timeout here).
        let _turn = match &self.gate {
            Some((scheduler, priority)) => Some(scheduler.acquire(*priority).await),
            None => None,
        };
        let (http, base, cfg) = (&self.http, self.base.as_str(), &self.config);
        // What streamed in, kept here too: a timeout drops the reader with its text.
        let mut arrived = String::new();
        let mut tee = |t: &str| {
            if arrived.len() < MAX_REPLY_BYTES {
                arrived.push_str(t);
            }
            on_token(t);
        };
        match cfg.kind {
            HostKind::Ollama => {
                let call = self.load.begin();
                let result = within(
                    cfg.timeout_secs,
                    ollama::chat(http, base, cfg, req, &mut tee, MAX_REPLY_BYTES),
                )
                .await;
                if result.is_ok() {
                    call.succeeded();
                }
                keep_what_arrived(result, arrived)
            }
            HostKind::Openai => {
                let result = within(
                    cfg.timeout_secs,
                    openai::chat(http, base, cfg, req, &mut tee, MAX_REPLY_BYTES),
                )
                .await;
                keep_what_arrived(result, arrived).map_err(|e| self.in_host_terms(e))
            }
        }
    }

    /// Load the model without asking anything (Ollama: a chat with no messages, answered
    /// `done_reason: "load"` once the model is in memory), with this host's `keep_alive`.
    /// Bounded by `timeout_secs`: a cold start of a big model takes minutes. Not for
    /// OpenAI-compatible hosts (they say nothing about loading): Ok without a call.
    pub async fn load(&self) -> Result<(), ModelError> {
        if self.config.kind == HostKind::Openai {
            return Ok(());
        }
        let call = self.load.begin();
        let result = within(
            self.config.timeout_secs,
            ollama::load(&self.http, &self.base, &self.config),
        )
        .await;
        if result.is_ok() {
            call.succeeded();
        }
        result
    }

    /// Is the model in the server's memory now (Ollama `/api/ps`)? Updates
    /// [`ModelClient::load_state`]. None on OpenAI-compatible hosts (they do not say).
    pub async fn loaded(&self) -> Result<Option<bool>, ModelError> {
        if self.config.kind == HostKind::Openai {
            return Ok(None);
        }
        let asked_at = Instant::now();
        let v = ollama::small_json(
            &self.http,
            &self.base,
            &self.config,
            "/api/ps",
            None,
            ollama::LIST_BODY_BYTES,
        )
        .await?;
        let listed = ps_lists(&v, &self.config.model).ok_or_else(|| ModelError::Malformed {
            message: "/api/ps: no models list".into(),
        })?;
        self.load.observe(listed, asked_at);
        Ok(Some(listed))
    }

    /// "No such model" in this host's own terms.
    pub fn missing_model_error(&self) -> ModelError {
        let (model, url) = (self.config.model.clone(), self.base.clone());
        match self.config.kind {
            HostKind::Ollama => ModelError::ModelNotFound { model, url },
            HostKind::Openai => ModelError::NotServed { model, url },
        }
    }

    fn in_host_terms(&self, e: ModelError) -> ModelError {
        match e {
            ModelError::ModelNotFound { .. } => self.missing_model_error(),
            other => other,
        }
    }

    /// Model names the server has (`/api/tags`, or `/v1/models`), read capped.
    pub async fn list_models(&self) -> Result<Vec<String>, ModelError> {
        match self.config.kind {
            HostKind::Ollama => ollama::list_models(&self.http, &self.base, &self.config).await,
            HostKind::Openai => openai::list_models(&self.http, &self.base).await,
        }
    }

    /// Whether the model takes images: `Some(true)` / `Some(false)` when the server says
    /// (Ollama `/api/show` capabilities; llama.cpp `/props` modalities or `/v1/models`
    /// input modalities), `None` when it does not say.
    pub async fn vision(&self) -> Result<Option<bool>, ModelError> {
        match self.config.kind {
            HostKind::Ollama => ollama::vision(&self.http, &self.base, &self.config)
                .await
                .map_err(|e| self.in_host_terms(e)),
            HostKind::Openai => openai::vision(&self.http, &self.base, &self.config.model).await,
        }
    }

    /// The server's Ollama version (`/api/version`).
    pub async fn version(&self) -> Result<String, ModelError> {
        match self.config.kind {
            HostKind::Ollama => ollama::version(&self.http, &self.base, &self.config).await,
            HostKind::Openai => Ok("an OpenAI-compatible server".into()),
        }
    }
}
