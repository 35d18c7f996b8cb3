//! The engine: frames → student → policy → teacher → events. No terminal code here.
//! PLACEHOLDER: the orchestration is being written; the handle below is the contract.

use crate::event::{Command, Event};
use tokio::sync::mpsc;

/// What a face holds: the engine's events, a way to send it commands, and its task.
pub struct EngineHandle {
    pub events: mpsc::UnboundedReceiver<Event>,
    pub commands: mpsc::UnboundedSender<Command>,
    pub task: tokio::task::JoinHandle<()>,
}
