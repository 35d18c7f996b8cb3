//! Server health: a gate per server that callers wait on, and the health shown to faces
//! (`monitor.rs` probes the servers).

use super::emitter::Emitter;
use crate::event::{Event, Health, Role};
use crate::model::ModelError;
use std::sync::Mutex;
use tokio::sync::{watch, Notify};

/// One server's reachability: a gate the callers wait on, and the last health shown.
pub(super) struct HealthGate {
    role: Role,
    pub(super) online: watch::Sender<bool>,
    shown: Mutex<Health>,
    pub(super) recheck: Notify,
    /// A call failed permanently (see `ModelError::is_permanent`): the server is
    /// reachable, so the health check would call it ok; keep showing the failure until a
    /// call succeeds.
    failing: std::sync::atomic::AtomicBool,
}

impl HealthGate {
    pub(super) fn new(role: Role) -> Self {
        HealthGate {
            role,
            online: watch::channel(true).0,
            shown: Mutex::new(Health::Unknown),
            recheck: Notify::new(),
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A call failed permanently: show why and the fix, but leave the gate open (the
    /// caller backs off itself).
    pub(super) fn failing(&self, emitter: &Emitter, error: &ModelError, model: &str) {
        self.failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.show(emitter, offline_health(self.role, error, model));
    }

    /// What the health check found: a reachable server does not hide a permanent failure.
    pub(super) fn probed(&self, emitter: &Emitter, health: Health) {
        let reachable = matches!(health, Health::Ok { .. } | Health::Slow { .. });
        if reachable && self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            self.online.send_replace(true);
            return;
        }
        self.set(emitter, health);
    }

    /// Show a health state if it differs in kind or reason from the last one shown.
    pub(super) fn set(&self, emitter: &Emitter, health: Health) {
        let online = matches!(health, Health::Ok { .. } | Health::Slow { .. });
        if online {
            self.failing
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        self.online.send_replace(online);
        self.show(emitter, health);
    }

    /// Emit `health` if it differs in kind or reason from the last one shown.
    fn show(&self, emitter: &Emitter, health: Health) {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        let same = match (&*shown, &health) {
            (Health::Ok { .. }, Health::Ok { .. }) | (Health::Slow { .. }, Health::Slow { .. }) => {
                true
            }
            (a, b) => a == b,
        };
        if !same {
            *shown = health.clone();
            drop(shown);
            emitter.emit(Event::Health {
                role: self.role,
                health,
            });
        }
    }

    pub(super) fn offline(&self, emitter: &Emitter, error: &ModelError, model: &str) {
        self.set(emitter, offline_health(self.role, error, model));
        self.recheck.notify_one();
    }
}

fn offline_health(role: Role, error: &ModelError, model: &str) -> Health {
    Health::Offline {
        reason: error.to_string(),
        hint: error.hint(role, model),
    }
}

/// Ollama lists `gemma4:latest` for a model pulled as `gemma4`.
pub fn model_listed(models: &[String], model: &str) -> bool {
    models
        .iter()
        .any(|m| m == model || (!model.contains(':') && *m == format!("{model}:latest")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_matching() {
        let m = vec!["gemma4:e2b".to_string(), "llava:latest".to_string()];
        assert!(model_listed(&m, "gemma4:e2b"));
        assert!(model_listed(&m, "llava"));
        assert!(!model_listed(&m, "gemma4:26b"));
    }
}
