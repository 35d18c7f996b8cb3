//! What every task of the engine sees (the config, the way events go out, the stop, each
//! server's health), and waiting on a gate until it opens or the engine stops.

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

/// Wait until `rx` holds `want`, or the engine stops (returns false then).
pub(super) async fn wait_gate(
    shared: &Shared,
    rx: &mut watch::Receiver<bool>,
    want: bool,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        r = rx.wait_for(|v| *v == want) => r.is_ok() && !shared.stopping(),
        _ = stop.wait_for(|s| *s) => false,
    }
}
