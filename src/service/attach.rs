//! How a face gets its engine: attached to the service that answers on the socket, or
//! (when none does, or `--standalone`) a hub of its own in this process. Both ends look
//! the same to the console: batches of service messages in, requests out.

use super::client::{attach, AttachError, Remote};
use super::hub::{Hub, Link};
use super::protocol::{ClientMsg, ServerMsg, ServiceInfo};
use crate::config::Config;
use crate::engine::EngineOptions;
use std::path::{Path, PathBuf};
use tokio::task::JoinHandle;

/// The console's end of an engine.
pub enum EngineLink {
    /// Attached to `gemmaedge-tui serve`.
    Attached(Remote),
    /// The engine runs in this process.
    Local {
        link: Link,
        hub: Hub,
        task: JoinHandle<()>,
    },
}

/// Why a face has no engine.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Attach(AttachError),
    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),
}

/// Attach to the service on `socket` when one answers; otherwise run the engine here.
/// A service that answers but refuses (another version, another user) is an error: a
/// second engine would fight it for the camera and the student.
pub async fn open(
    config: &Config,
    socket: &Path,
    standalone: bool,
    client: &str,
    options: EngineOptions,
) -> Result<EngineLink, OpenError> {
    if !standalone {
        match attach(socket, client, config.service.group.as_deref()).await {
            Ok(remote) => return Ok(EngineLink::Attached(remote)),
            Err(AttachError::NoService(_)) => {}
            Err(e) => return Err(OpenError::Attach(e)),
        }
    }
    let (hub, task) = Hub::start(config.clone(), options)?;
    let link = hub.connect(client);
    Ok(EngineLink::Local { link, hub, task })
}

/// A service answering on `socket`, for faces that need one (`eval` through the
/// service); `Ok(None)` when nothing listens.
pub async fn attach_if_running(
    socket: &Path,
    client: &str,
    group: Option<&str>,
) -> Result<Option<Remote>, AttachError> {
    match attach(socket, client, group).await {
        Ok(r) => Ok(Some(r)),
        Err(AttachError::NoService(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl EngineLink {
    /// The next messages; `None` when the engine (or the connection) is gone.
    pub async fn recv(&mut self) -> Option<Vec<ServerMsg>> {
        match self {
            EngineLink::Attached(r) => r.recv().await.map(|m| vec![m]),
            EngineLink::Local { link, .. } => link.recv().await,
        }
    }

    /// What is waiting now, without blocking.
    pub fn try_recv(&mut self) -> Option<Vec<ServerMsg>> {
        match self {
            EngineLink::Attached(r) => r.try_recv().map(|m| vec![m]),
            EngineLink::Local { link, .. } => link.try_recv(),
        }
    }

    /// False when the engine (or the connection) is gone.
    pub fn send(&self, msg: ClientMsg) -> bool {
        match self {
            EngineLink::Attached(r) => r.send(msg),
            EngineLink::Local { link, .. } => link.send(msg),
        }
    }

    /// The service this console is attached to (None: the engine runs here).
    pub fn attached(&self) -> Option<(&ServiceInfo, &PathBuf)> {
        match self {
            EngineLink::Attached(r) => Some((&r.info, &r.path)),
            EngineLink::Local { .. } => None,
        }
    }

    /// Leave: an attached console just closes; a local engine is stopped (the log
    /// flushed, a running upskill cancelled).
    pub async fn close(self) {
        match self {
            EngineLink::Attached(r) => drop(r),
            EngineLink::Local { link, hub, task } => {
                drop(link);
                hub.shutdown().await;
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
            }
        }
    }
}
