//! What every task of the engine sees: the config, the way events go out, the stop, and
//! each server's health.

use super::emitter::Emitter;
use super::health::HealthGate;
use crate::config::Config;
use std::sync::Arc;
use tokio::sync::watch;

/// What every task of the engine sees: the config, the way events go out, the stop, and
/// each server's health.
pub(super) struct Shared {
    pub(super) config: Config,
    pub(super) emitter: Arc<Emitter>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) student_health: HealthGate,
    pub(super) teacher_health: HealthGate,
}

impl Shared {
    pub(super) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}
