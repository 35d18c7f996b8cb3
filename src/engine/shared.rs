//! What every task of the engine sees: the config, the way events go out, the stop, and
//! each server's health.

use super::emitter::Emitter;
use super::health::HealthGate;
use super::watches::EngineWatches;
use crate::config::Config;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// What every task of the engine sees: the config, the way events go out, the stop, and
/// each server's health.
pub(super) struct Shared {
    pub(super) config: Config,
    pub(super) emitter: Arc<Emitter>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) student_health: HealthGate,
    pub(super) teacher_health: HealthGate,
    /// The watches: their list and states (the student loop, the teacher worker, the
    /// verdict's effects and the commands all use them).
    pub(super) watches: Arc<Mutex<EngineWatches>>,
}

impl Shared {
    pub(super) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub(super) fn watches(&self) -> MutexGuard<'_, EngineWatches> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }
}
